//! Rasters through GDAL: any band count and data type, with nodata, scale and offset applied on
//! read so every later stage sees physical values (reflectance, metres) and NaN for no data.

use std::path::{Path, PathBuf};

use gdal::raster::GdalDataType;
use gdal::{Dataset, DatasetOptions, GdalOpenFlags, Metadata};

use crate::crs::Crs;
use crate::error::{AtFile, Error, FileKind, Result};

/// What the header says about one band; `scale` and `offset` may be replaced by the city config
/// before reading (Landsat files carry none).
#[derive(Clone, Debug)]
pub struct BandInfo {
    /// 1-based, as in GDAL.
    pub index: usize,
    /// GDAL's name of the stored type, e.g. `Int16`, for messages.
    pub data_type: String,
    /// Stored value meaning "no data" (read as NaN); `None` when the band declares none.
    pub nodata: Option<f64>,
    /// Multiplier from stored to physical values (1 when the file has none).
    pub scale: f64,
    /// Added after scaling (0 when the file has none).
    pub offset: f64,
    /// The band's description in the file, possibly empty.
    pub description: String,
}

/// An open raster with its georeferencing checked; read through [`Raster::read_window`].
pub struct Raster {
    /// The file (named in errors).
    pub path: PathBuf,
    /// The open GDAL dataset.
    pub dataset: Dataset,
    /// The raster's CRS (or the override); `None` when the file has none and none was given.
    pub crs: Option<Crs>,
    /// GDAL geotransform: origin x, pixel width, row rotation, origin y, column rotation, pixel height.
    pub geo_transform: [f64; 6],
    /// Columns of pixels.
    pub width: usize,
    /// Rows of pixels.
    pub height: usize,
    /// One entry per band, in band order (at least one).
    pub bands: Vec<BandInfo>,
}

/// Opens a raster; `crs_override` replaces a missing or wrong CRS.
pub fn open_raster(path: &Path, crs_override: Option<&str>) -> Result<Raster> {
    crate::io::gdal_setup::init();
    if !path.exists() {
        return Err(Error::of(FileKind::Raster, path, "does not exist"));
    }
    let dataset = Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_RASTER,
            ..Default::default()
        },
    )
    .map_err(|e| {
        Error::of(
            FileKind::Raster,
            path,
            format!("cannot open as a raster: {e}"),
        )
    })?;
    let crs = match crs_override {
        Some(def) => Some(Crs::from_user(def).at_kind(FileKind::Raster, path)?),
        None => dataset
            .spatial_ref()
            .ok()
            .map(|s| Crs::from_srs(&s))
            .transpose()
            .at_kind(FileKind::Raster, path)?,
    };
    let geo_transform = dataset.geo_transform().map_err(|_| {
        Error::of(
            FileKind::Raster,
            path,
            "has no georeferencing (geotransform or world file)",
        )
    })?;
    let (width, height) = dataset.raster_size();
    let count = dataset.raster_count();
    if count == 0 {
        return Err(Error::of(FileKind::Raster, path, "has no raster bands"));
    }
    let mut bands = Vec::with_capacity(count);
    for i in 1..=count {
        let b = dataset.rasterband(i).at_kind(FileKind::Raster, path)?;
        bands.push(BandInfo {
            index: i,
            data_type: format!("{}", b.band_type()),
            nodata: b.no_data_value(),
            scale: b.scale().unwrap_or(1.0),
            offset: b.offset().unwrap_or(0.0),
            description: b.description().unwrap_or_default(),
        });
    }
    Ok(Raster {
        path: path.to_path_buf(),
        dataset,
        crs,
        geo_transform,
        width,
        height,
        bands,
    })
}

impl Raster {
    /// Reads a window of one band (1-based) as physical values: nodata → NaN, then
    /// `value * scale + offset`. Row-major, `w * h` values.
    pub fn read_window(
        &self,
        band: usize,
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
    ) -> Result<Vec<f64>> {
        let info = &self.bands[band - 1];
        let b = self
            .dataset
            .rasterband(band)
            .at_kind(FileKind::Raster, &self.path)?;
        let buf = b
            .read_as::<f64>((x0 as isize, y0 as isize), (w, h), (w, h), None)
            .map_err(|e| {
                Error::of(
                    FileKind::Raster,
                    &self.path,
                    format!("cannot read band {band}: {e}"),
                )
            })?;
        let (_, data) = buf.into_shape_and_vec();
        let is_float = matches!(b.band_type(), GdalDataType::Float32 | GdalDataType::Float64);
        Ok(data
            .into_iter()
            .map(|v| {
                let nodata = info
                    .nodata
                    .is_some_and(|nd| v == nd || (is_float && nd.is_nan() && v.is_nan()));
                if nodata || !v.is_finite() {
                    f64::NAN
                } else {
                    v * info.scale + info.offset
                }
            })
            .collect())
    }

    /// Pixel size (width, height) in CRS units.
    pub fn pixel_size(&self) -> (f64, f64) {
        (self.geo_transform[1].abs(), self.geo_transform[5].abs())
    }

    /// Whether the geotransform is north-up without rotation.
    pub fn is_axis_aligned(&self) -> bool {
        self.geo_transform[2] == 0.0 && self.geo_transform[4] == 0.0
    }
}
