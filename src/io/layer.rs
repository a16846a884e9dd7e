//! A [`Table`]'s columns and rows into a GDAL vector layer: the one writer behind the file
//! formats GDAL writes and PostGIS tables, so both type and encode a row the same way.

use std::path::Path;

use gdal::vector::{FieldDefn, Geometry, LayerAccess, OGRFieldType, OGRwkbGeometryType, ToGdal};
use geo::MultiPolygon;

use crate::error::{Error, FileKind, Result};
use crate::io::table::{ColumnData, Table};

/// A footprint as a GDAL geometry.
pub(crate) fn gdal_geometry(mp: &MultiPolygon<f64>) -> Result<Geometry> {
    mp.to_gdal()
        .map_err(|e| Error::invalid(format!("cannot encode geometry: {e}")))
}

/// Adds one typed field per column to a new layer (booleans with OGR's boolean subtype;
/// Shapefile text fields at the format's maximum width).
pub(crate) fn add_fields(
    layer: &gdal::vector::Layer,
    table: &Table,
    shapefile: bool,
    path: &Path,
) -> Result<()> {
    let gerr = |e| gdal_write_error(path, e);
    for c in &table.columns {
        let ty = match c.data {
            ColumnData::F64(_) => OGRFieldType::OFTReal,
            ColumnData::I64(_) => OGRFieldType::OFTInteger64,
            ColumnData::Str(_) => OGRFieldType::OFTString,
            ColumnData::Bool(_) => OGRFieldType::OFTInteger,
        };
        if matches!(c.data, ColumnData::Bool(_)) {
            add_boolean_field(layer, &c.name).map_err(|e| Error::of(FileKind::Output, path, e))?;
            continue;
        }
        let field = FieldDefn::new(&c.name, ty).map_err(gerr)?;
        if shapefile && ty == OGRFieldType::OFTString {
            field.set_width(254); // the format's maximum; the default 80 cuts feature lists
        }
        field.add_to_layer(layer).map_err(gerr)?;
    }
    Ok(())
}

/// An integer field with OGR's boolean subtype, so that GeoPackage, GeoJSON and Shapefile store
/// true/false rather than 0/1 (the gdal crate cannot set subtypes).
fn add_boolean_field(layer: &gdal::vector::Layer, name: &str) -> std::result::Result<(), String> {
    let c_name = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: the field definition is created, handed to OGR (which copies it) and destroyed
    // here; the layer handle is alive for the call.
    unsafe {
        let fld = gdal_sys::OGR_Fld_Create(c_name.as_ptr(), OGRFieldType::OFTInteger);
        if fld.is_null() {
            return Err(format!("cannot create field '{name}'"));
        }
        gdal_sys::OGR_Fld_SetSubType(fld, gdal_sys::OGRFieldSubType::OFSTBoolean);
        let err = gdal_sys::OGR_L_CreateField(layer.c_layer(), fld, 1);
        gdal_sys::OGR_Fld_Destroy(fld);
        if err != gdal_sys::OGRErr::OGRERR_NONE {
            return Err(format!("cannot create field '{name}' (OGR error {err})"));
        }
    }
    Ok(())
}

/// Writes every row of `table` as a feature of `layer` (fields in column order, geometry as
/// multipolygons).
pub(crate) fn write_rows(layer: &gdal::vector::Layer, table: &Table, path: &Path) -> Result<()> {
    write_rows_with(layer, table, table.n_rows(), path, |row| {
        let Some(g) = &table.geometry else {
            return Ok(None);
        };
        let mut geom = gdal_geometry(&g[row])?;
        if geom.geometry_type() != OGRwkbGeometryType::wkbMultiPolygon {
            geom = force_multi(geom)?;
        }
        Ok(Some(geom))
    })
}

/// [`write_rows`] of `n` rows (a table may have no columns), each row's geometry from
/// `geometry` (none: no geometry).
pub(crate) fn write_rows_with(
    layer: &gdal::vector::Layer,
    table: &Table,
    n: usize,
    path: &Path,
    geometry: impl Fn(usize) -> Result<Option<Geometry>>,
) -> Result<()> {
    let gerr = |e| gdal_write_error(path, e);
    let defn = layer.defn();
    for row in 0..n {
        let mut f = gdal::vector::Feature::new(defn).map_err(gerr)?;
        for (i, c) in table.columns.iter().enumerate() {
            match &c.data {
                ColumnData::F64(v) => match v[row] {
                    Some(x) => f.set_field_double(i, x),
                    None => f.set_field_null(i),
                },
                ColumnData::I64(v) => match v[row] {
                    Some(x) => f.set_field_integer64(i, x),
                    None => f.set_field_null(i),
                },
                ColumnData::Bool(v) => match v[row] {
                    Some(x) => f.set_field_integer(i, x as i32),
                    None => f.set_field_null(i),
                },
                ColumnData::Str(v) => match &v[row] {
                    Some(x) => f.set_field_string(i, x),
                    None => f.set_field_null(i),
                },
            }
            .map_err(gerr)?;
        }
        if let Some(geom) = geometry(row)? {
            f.set_geometry(geom).map_err(gerr)?;
        }
        f.create(layer).map_err(gerr)?;
    }
    Ok(())
}

/// A GDAL write error with GDAL's own last message, which says why (an OGR error code alone,
/// e.g. on a full disk, does not).
pub(crate) fn gdal_write_error(path: &Path, e: gdal::errors::GdalError) -> Error {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local string GDAL owns; it is
    // copied at once.
    let last = unsafe {
        let p = gdal_sys::CPLGetLastErrorMsg();
        if p.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    if last.trim().is_empty() || e.to_string().contains(last.trim()) {
        Error::of(FileKind::Output, path, format!("cannot write: {e}"))
    } else {
        Error::of(
            FileKind::Output,
            path,
            format!("cannot write: {e} ({})", last.trim()),
        )
    }
}

/// The geometry as a one-part multipolygon.
pub(crate) fn force_multi(g: Geometry) -> Result<Geometry> {
    let wkt = g.wkt().map_err(|e| Error::invalid(e.to_string()))?;
    let mut m = Geometry::empty(OGRwkbGeometryType::wkbMultiPolygon)
        .map_err(|e| Error::invalid(e.to_string()))?;
    let p = Geometry::from_wkt(&wkt).map_err(|e| Error::invalid(e.to_string()))?;
    m.add_geometry(p)
        .map_err(|e| Error::invalid(e.to_string()))?;
    Ok(m)
}
