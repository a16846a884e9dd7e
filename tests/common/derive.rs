//! Inputs for bad-input tests, made at test time from the shipped real files: subsets of real
//! footprint layers with one thing broken, rasters with their pixels replaced, LAS files with a
//! wrong header.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::Dataset;

use super::data;

/// The first rows of a real footprint layer: fields, CRS, and per row values and geometry.
pub struct Rows {
    pub fields: Vec<(String, OGRFieldType::Type)>,
    pub srs: Option<SpatialRef>,
    pub rows: Vec<(Vec<Option<FieldValue>>, Option<Geometry>)>,
}

impl Rows {
    pub fn field(&self, name: &str) -> usize {
        self.fields
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no field {name}"))
    }
}

/// The first `n` features of a shipped layer (`path` relative to data/cities).
pub fn read_rows(path: &str, layer: Option<&str>, n: usize) -> Rows {
    let ds = Dataset::open(data().join("cities").join(path)).unwrap();
    let mut layer = match layer {
        Some(l) => ds.layer_by_name(l).unwrap(),
        None => ds.layer(0).unwrap(),
    };
    let fields: Vec<(String, OGRFieldType::Type)> = layer
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    let srs = layer.spatial_ref();
    let rows = layer
        .features()
        .take(n)
        .map(|f| {
            let values = (0..fields.len()).map(|i| f.field(i).unwrap()).collect();
            (values, f.geometry().cloned())
        })
        .collect();
    Rows { fields, srs, rows }
}

/// Delft tile 5910 (attribute labels `h_70p`, ids `identificatie`): the first `n` buildings.
pub fn delft5910(n: usize) -> Rows {
    read_rows("delft-5910/footprints_DERIVED.gpkg", Some("footprints"), n)
}

/// Writes rows as a GeoPackage layer `footprints` (any geometry type).
pub fn write_gpkg(path: &Path, rows: &Rows) {
    let _ = std::fs::remove_file(path);
    let driver = gdal::DriverManager::get_driver_by_name("GPKG").unwrap();
    let mut ds = driver.create_vector_only(path).unwrap();
    let layer = ds
        .create_layer(LayerOptions {
            name: "footprints",
            srs: rows.srs.as_ref(),
            ty: OGRwkbGeometryType::wkbUnknown,
            options: None,
        })
        .unwrap();
    let defs: Vec<(&str, OGRFieldType::Type)> =
        rows.fields.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    layer.create_defn_fields(&defs).unwrap();
    for (values, geom) in &rows.rows {
        let mut f = gdal::vector::Feature::new(layer.defn()).unwrap();
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => f.set_field(i, v).unwrap(),
                None => f.set_field_null(i).unwrap(),
            }
        }
        if let Some(g) = geom {
            f.set_geometry(g.clone()).unwrap();
        }
        f.create(&layer).unwrap();
    }
}

/// A config for footprints in `file` (layer `footprints`) with attribute labels from `field`.
pub fn attribute_config(file: &str, id: &str, field: &str, extra_footprints: &str) -> String {
    format!(
        "name = \"derived\"\n[footprints]\npath = \"{file}\"\nlayer = \"footprints\"\nid = \"{id}\"\n{extra_footprints}\n[label]\nsource = \"attribute\"\nname = \"roof-p70\"\nfield = \"{field}\"\n"
    )
}

/// A copy of a real raster with every pixel of every band set to its nodata value.
pub fn all_nodata_copy(src: &Path, dst: &Path) -> PathBuf {
    let ds = Dataset::open(src).unwrap();
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let out = ds.create_copy(&driver, dst, &Default::default()).unwrap();
    let (w, h) = out.raster_size();
    for b in 1..=out.raster_count() {
        let mut band = out.rasterband(b).unwrap();
        let nodata = band.no_data_value().unwrap_or(-9999.0);
        band.set_no_data_value(Some(nodata)).unwrap();
        let mut buf = gdal::raster::Buffer::new((w, h), vec![nodata; w * h]);
        band.write((0, 0), (w, h), &mut buf).unwrap();
    }
    drop(out);
    dst.to_path_buf()
}

/// Writes the first `n` points of a real LAZ file as an uncompressed LAS file.
pub fn laz_to_las(src: &Path, dst: &Path, n: usize) {
    let mut reader = las::Reader::from_path(src).unwrap();
    let mut builder = las::Builder::from(reader.header().clone());
    builder.point_format.is_compressed = false;
    let header = builder.into_header().unwrap();
    let data = reader.read_points(n as u64).unwrap();
    let mut writer = las::Writer::from_path(dst, header).unwrap();
    writer.write_points(&data).unwrap();
    writer.close().unwrap();
}

/// Adds `extra` to the point count a LAS/LAZ header promises (legacy and LAS 1.4 fields).
pub fn inflate_point_count(path: &Path, extra: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    let minor = bytes[25];
    let legacy = u32::from_le_bytes(bytes[107..111].try_into().unwrap());
    if legacy > 0 {
        bytes[107..111].copy_from_slice(&(legacy + extra as u32).to_le_bytes());
    }
    if minor >= 4 {
        let n = u64::from_le_bytes(bytes[247..255].try_into().unwrap());
        bytes[247..255].copy_from_slice(&(n + extra).to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Files in a folder (names), to check that a failed run leaves it as it was.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
