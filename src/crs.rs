//! Coordinate reference systems, kept as WKT so tables and models can carry them between threads
//! and files; GDAL/OSR objects are made on demand.
//!
//! Every city is processed in one metric *working CRS*: the footprints' own CRS when it is
//! projected in metres and true to scale at the footprints (lengths off by at most
//! [`MAX_SCALE_ERROR`]), otherwise the UTM zone of the footprints' centre (WGS 84), so that areas,
//! distances and heights are all in true metres. "Projected in metres" alone is not enough: Web
//! Mercator's metres are 1.6 times too long at 52° N, and a UTM zone used two zones away
//! stretches lengths by half a per cent.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest length error (relative) a footprint CRS may make at the data and still be worked
/// in: 0.1 %, a metre in a kilometre. UTM stays under it within its zone (0.04 % short at the
/// central meridian, 0.1 % long at the zone's edge at the equator), as do national grids at home;
/// Web Mercator (62 % at 52° N) and a UTM zone two zones away (0.5 %) do not.
pub const MAX_SCALE_ERROR: f64 = 0.001;

/// A coordinate reference system as WKT plus a short label. Equality compares the definitions
/// (through OSR when the WKT texts differ), not the labels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Crs {
    /// Short label for tables and messages: `EPSG:28992` when known, else the CRS name.
    pub label: String,
    /// WKT2 definition.
    pub wkt: String,
}

impl PartialEq for Crs {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

impl Crs {
    /// Parses what a user may write: `EPSG:28992`, a WKT string, a PROJ string.
    pub fn from_user(definition: &str) -> Result<Crs> {
        let srs = SpatialRef::from_definition(definition.trim()).map_err(|_| {
            Error::crs(format!(
                "unknown CRS '{definition}': expected an authority code such as EPSG:27700, a WKT or a PROJ string"
            ))
        })?;
        Self::from_srs(&srs)
    }

    /// The CRS of an EPSG code, e.g. 4326 for WGS 84; an error for unknown codes.
    pub fn from_epsg(code: u32) -> Result<Crs> {
        let srs = SpatialRef::from_epsg(code)
            .map_err(|e| Error::crs(format!("unknown CRS EPSG:{code}: {e}")))?;
        Self::from_srs(&srs)
    }

    /// Parses WKT as found in files (WKT1, WKT2 or ESRI's `.prj` dialect).
    pub fn from_wkt(wkt: &str) -> Result<Crs> {
        let srs = SpatialRef::from_wkt(wkt)
            .or_else(|_| SpatialRef::from_esri(wkt))
            .map_err(|e| Error::crs(format!("unreadable WKT CRS: {e}")))?;
        Self::from_srs(&srs)
    }

    /// Wraps a GDAL/OSR object, labelled with its authority code when it has (or OSR can
    /// identify) one.
    pub fn from_srs(srs: &SpatialRef) -> Result<Crs> {
        let wkt = srs
            .to_wkt()
            .map_err(|e| Error::crs(format!("CRS cannot be written as WKT: {e}")))?;
        Ok(Crs {
            label: label_of(srs),
            wkt,
        })
    }

    /// The OSR object, always in traditional GIS axis order (x = easting/longitude).
    pub fn srs(&self) -> SpatialRef {
        let mut srs = SpatialRef::from_wkt(&self.wkt).expect("Crs holds WKT that OSR produced");
        srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        srs
    }

    /// The EPSG code when the label is one; `None` for CRSs known only by name.
    pub fn epsg(&self) -> Option<u32> {
        self.label
            .strip_prefix("EPSG:")
            .and_then(|c| c.parse().ok())
    }

    /// True for longitude/latitude CRSs, where coordinates are degrees, not metres.
    pub fn is_geographic(&self) -> bool {
        self.srs().is_geographic()
    }

    /// Metres per unit of the horizontal axes (1 for metres, 0.3048 for international feet).
    pub fn linear_unit_m(&self) -> f64 {
        let srs = self.srs();
        if srs.is_geographic() {
            1.0
        } else {
            srs.linear_units()
        }
    }

    /// Metres per unit of the vertical axis: the vertical CRS unit of a compound CRS, else the
    /// horizontal unit (LAS files in US feet use feet for z too), else metres.
    pub fn vertical_unit_m(&self) -> f64 {
        let srs = self.srs();
        if srs.is_compound() {
            if let Some(unit) = target_linear_units(&srs, "VERT_CS") {
                return unit;
            }
        }
        self.linear_unit_m()
    }

    /// True when projected with metre axes, i.e. usable as a working CRS as is.
    pub fn is_metric_projected(&self) -> bool {
        let srs = self.srs();
        srs.is_projected() && (srs.linear_units() - 1.0).abs() < 1e-12
    }

    /// Same definition (identical WKT, or OSR judges them equal); what `==` uses.
    pub fn same_as(&self, other: &Crs) -> bool {
        self.wkt == other.wkt || self.srs() == other.srs()
    }

    /// The CRS all of `crss` share, else WGS 84 (EPSG:4326): how tables mixing cities say
    /// where their geometry is.
    pub fn common_or_wgs84<'a>(crss: impl IntoIterator<Item = &'a Crs>) -> Result<Crs> {
        let mut it = crss.into_iter();
        match it.next() {
            Some(first) if it.all(|c| c.same_as(first)) => Ok(first.clone()),
            _ => Crs::from_epsg(4326),
        }
    }

    /// The WGS 84 UTM zone containing a longitude/latitude.
    pub fn utm_for(lon: f64, lat: f64) -> Result<Crs> {
        let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
        let code = if lat >= 0.0 { 32600 } else { 32700 } + zone;
        Crs::from_epsg(code)
    }

    /// The working CRS for data in this CRS: itself when projected in metres and true to scale
    /// at `centre` (given in this CRS; see [`Crs::scale_error_at`]), else the UTM zone of
    /// `centre`, with one line saying why when a metric CRS was passed over.
    pub fn working_for(&self, centre: (f64, f64)) -> Result<Crs> {
        let (crs, note) = self.working_for_noted(centre)?;
        if let Some(n) = note {
            tracing::warn!("{n}");
        }
        Ok(crs)
    }

    /// [`Crs::working_for`], the line saying why a metric CRS was passed over returned rather
    /// than logged, so a caller can say it once the data are known to be read (a wrong CRS is
    /// refused with one error line, not a warning and an error).
    pub fn working_for_noted(&self, centre: (f64, f64)) -> Result<(Crs, Option<String>)> {
        let wgs84 = Crs::from_epsg(4326)?;
        let to_wgs84 = |crs: &Crs| -> Result<(f64, f64)> {
            let t = Transform::new(crs, &wgs84)?;
            let (mut x, mut y) = ([centre.0], [centre.1]);
            t.apply(&mut x, &mut y)?;
            Ok((x[0], y[0]))
        };
        if !self.is_metric_projected() {
            let (lon, lat) = to_wgs84(self)?;
            return Ok((Crs::utm_for(lon, lat)?, None));
        }
        // A CRS PROJ cannot take to WGS 84 (a local grid) is kept: nothing can be checked.
        let error = match self.scale_error_at(centre) {
            Ok(e) => e,
            Err(_) => return Ok((self.clone(), None)),
        };
        if error <= MAX_SCALE_ERROR {
            return Ok((self.clone(), None));
        }
        let (lon, lat) = to_wgs84(self)?;
        let utm = Crs::utm_for(lon, lat)?;
        let note = format!(
            "{} distorts lengths by {:.2} % at the footprints ({lon:.3}, {lat:.3}): working in {} instead, so areas and distances are true metres",
            self.label,
            error * 100.0,
            utm.label
        );
        Ok((utm, Some(note)))
    }

    /// How far a length measured in this (projected) CRS at `centre` (in its coordinates) is
    /// stretched or shrunk against the geodesic length on the WGS 84 ellipsoid, along the worse
    /// axis, as `max(k, 1/k) − 1` for a scale factor `k`: 0.62 for Web Mercator at 52° N
    /// (lengths 1.62 times too long), ~0.0004 in the middle of a UTM zone.
    ///
    /// ```
    /// use roofline::crs::Crs;
    /// // Rotterdam in Web Mercator and in the Dutch grid.
    /// let mercator = Crs::from_epsg(3857)?;
    /// let e = mercator.scale_error_at((496_000.0, 6_786_000.0))?;
    /// assert!((e - 0.62).abs() < 0.01, "{e}");
    /// let rd = Crs::from_epsg(28992)?;
    /// assert!(rd.scale_error_at((91_000.0, 437_000.0))? < 0.0005);
    /// # Ok::<(), roofline::Error>(())
    /// ```
    pub fn scale_error_at(&self, centre: (f64, f64)) -> Result<f64> {
        use geo::{Distance, Geodesic, Point};
        let step = 100.0 / self.linear_unit_m();
        let t = Transform::new(self, &Crs::from_epsg(4326)?)?;
        let mut x = [centre.0, centre.0 + step, centre.0];
        let mut y = [centre.1, centre.1, centre.1 + step];
        t.apply(&mut x, &mut y)?;
        let at = |i: usize| Point::new(x[i], y[i]);
        // How many times too long (or too short) a CRS metre is, less one.
        let stretch = |true_m: f64| {
            let r = 100.0 / true_m;
            r.max(1.0 / r) - 1.0
        };
        let east = stretch(Geodesic.distance(at(0), at(1)));
        let north = stretch(Geodesic.distance(at(0), at(2)));
        Ok(east.max(north))
    }

    /// The PROJJSON form, as GeoParquet metadata wants it.
    pub fn projjson(&self) -> Result<String> {
        self.srs().to_projjson().map_err(|e| {
            Error::crs(format!(
                "CRS {} cannot be written as PROJJSON: {e}",
                self.label
            ))
        })
    }
}

fn label_of(srs: &SpatialRef) -> String {
    let mut srs = srs.clone();
    if srs.auth_name().is_none() {
        let _ = srs.auto_identify_epsg();
    }
    match (srs.auth_name(), srs.auth_code()) {
        (Some(name), Ok(code)) => format!("{}:{code}", name.to_uppercase()),
        _ => srs.name().unwrap_or_else(|| "unnamed CRS".into()),
    }
}

fn target_linear_units(srs: &SpatialRef, target: &str) -> Option<f64> {
    let key = std::ffi::CString::new(target).ok()?;
    let mut name: *mut std::os::raw::c_char = std::ptr::null_mut();
    // SAFETY: OSRGetTargetLinearUnits reads the SRS handle and writes a borrowed name pointer.
    let v = unsafe { gdal_sys::OSRGetTargetLinearUnits(srs.to_c_hsrs(), key.as_ptr(), &mut name) };
    (v > 0.0).then_some(v)
}

/// A coordinate transformation that is skipped when both CRSs are the same.
pub struct Transform {
    inner: Option<CoordTransform>,
    from: String,
    to: String,
}

impl Transform {
    /// A transformation from `from` to `to`; an error when PROJ knows none.
    pub fn new(from: &Crs, to: &Crs) -> Result<Transform> {
        let inner = if from.same_as(to) {
            None
        } else {
            Some(CoordTransform::new(&from.srs(), &to.srs()).map_err(|e| {
                Error::crs(format!(
                    "no transformation from {} to {}: {e}",
                    from.label, to.label
                ))
            })?)
        };
        Ok(Transform {
            inner,
            from: from.label.clone(),
            to: to.label.clone(),
        })
    }

    /// True when both CRSs are the same and [`Transform::apply`] leaves coordinates as they are.
    pub fn is_identity(&self) -> bool {
        self.inner.is_none()
    }

    /// Transforms coordinates in place (x = easting/longitude, y = northing/latitude); an error
    /// when any point cannot be transformed.
    pub fn apply(&self, x: &mut [f64], y: &mut [f64]) -> Result<()> {
        match &self.inner {
            None => Ok(()),
            Some(ct) => ct.transform_coords(x, y, &mut []).map_err(|e| {
                Error::crs(format!(
                    "cannot transform from {} to {}: {e}",
                    self.from, self.to
                ))
            }),
        }
    }

    /// Transforms an axis-aligned box, densifying its edges so curved images are enclosed.
    pub fn apply_bounds(&self, b: [f64; 4]) -> Result<[f64; 4]> {
        match &self.inner {
            None => Ok(b),
            Some(ct) => ct.transform_bounds(&b, 21).map_err(|e| {
                Error::crs(format!(
                    "cannot transform bounds from {} to {}: {e}",
                    self.from, self.to
                ))
            }),
        }
    }

    /// The GDAL transformation for GDAL calls that take one (e.g. geometry transforms); `None`
    /// when the transformation is the identity.
    pub fn gdal(&self) -> Option<&CoordTransform> {
        self.inner.as_ref()
    }
}
