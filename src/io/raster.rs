//! Rasters through GDAL: any band count and data type, with nodata, scale and offset applied on
//! read so every later stage sees physical values (reflectance, metres) and NaN for no data.

use std::path::{Path, PathBuf};

use gdal::raster::GdalDataType;
use gdal::{Dataset, DatasetOptions, GdalOpenFlags, Metadata};

use crate::crs::Crs;
use crate::error::{AtFile, Error, FileKind, Result};

#[derive(Clone, Debug)]
pub struct BandInfo {
    /// 1-based, as in GDAL.
    pub index: usize,
    pub data_type: String,
    pub nodata: Option<f64>,
    pub scale: f64,
    pub offset: f64,
    pub description: String,
}

pub struct Raster {
    pub path: PathBuf,
    pub dataset: Dataset,
    pub crs: Option<Crs>,
    /// GDAL geotransform: origin x, pixel width, row rotation, origin y, column rotation, pixel height.
    pub geo_transform: [f64; 6],
    pub width: usize,
    pub height: usize,
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
