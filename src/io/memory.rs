//! Footprints handed over in memory (the Python package's GeoDataFrames, as an Arrow IPC
//! stream with WKB geometry) become a GeoPackage in GDAL's memory (`/vsimem/`), which a city
//! config then names like any file: the footprints are read by the same reader, with every
//! check, CRS rule and label source, so a table in memory gives what the same table in a file
//! gives. The file lives until [`InMemory`] is dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gdal::vector::{Geometry, LayerOptions, OGRwkbGeometryType};
use gdal::DriverManager;
use polars_arrow::array::{
    Array, BinaryArray, BinaryViewArray, BooleanArray, PrimitiveArray, Utf8Array, Utf8ViewArray,
};
use polars_arrow::datatypes::ArrowDataType;
use polars_arrow::io::ipc::read::{read_stream_metadata, StreamReader, StreamState};

use crate::crs::Crs;
use crate::error::{Error, FileKind, Result};
use crate::io::layer::{add_fields, gdal_write_error, write_rows_with};
use crate::io::table::{Column, ColumnData, Table};

/// A GeoPackage in GDAL's memory, removed when dropped.
#[derive(Debug)]
pub struct InMemory {
    path: PathBuf,
    held: Held,
    fields: Vec<String>,
    geometry: bool,
}

impl InMemory {
    /// Its path, for a config's `path` (layer [`InMemory::layer`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The layer holding the table.
    pub fn layer(&self) -> &'static str {
        self.held.layer()
    }

    /// The table's fields (its columns but the geometry), in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Whether its rows have a geometry (a table of known heights may have none).
    pub fn has_geometry(&self) -> bool {
        self.geometry
    }
}

/// What a table handed over in memory is: its layer, and how errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// A city's footprints (geometry required).
    Footprints,
    /// Known heights joined to the footprints by id or, with a geometry, by location.
    KnownHeights,
}

impl Held {
    fn layer(self) -> &'static str {
        match self {
            Held::Footprints => "footprints",
            Held::KnownHeights => "known_heights",
        }
    }

    /// How errors name the table.
    pub fn name(self) -> &'static str {
        match self {
            Held::Footprints => IN_MEMORY,
            Held::KnownHeights => KNOWN_IN_MEMORY,
        }
    }

    fn kind(self) -> FileKind {
        match self {
            Held::Footprints => FileKind::Footprints,
            Held::KnownHeights => FileKind::Other,
        }
    }
}

impl Drop for InMemory {
    fn drop(&mut self) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        if let Ok(p) = std::ffi::CString::new(dir.to_string_lossy().as_bytes()) {
            // SAFETY: a NUL-terminated path of this value's own folder; GDAL ignores a name it
            // does not hold.
            unsafe {
                gdal_sys::VSIRmdirRecursive(p.as_ptr());
            }
        }
    }
}

/// How errors name footprints handed over in memory.
pub const IN_MEMORY: &str = "the footprints GeoDataFrame";

/// How errors name known heights handed over in memory.
pub const KNOWN_IN_MEMORY: &str = "the known_heights table";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Writes the footprints of an Arrow IPC stream (`ipc`) into a new in-memory GeoPackage, layer
/// `footprints`, in the CRS `crs` (anything [`Crs::from_user`] reads: `EPSG:28992`, WKT,
/// PROJJSON). The geometry is the column `geometry` (WKB, null for a row without one); the
/// others become fields: text, numbers (as 64-bit floats or integers) and booleans.
pub fn footprints_in_memory(ipc: &[u8], crs: &str) -> Result<InMemory> {
    table_in_memory(ipc, Some(crs), Held::Footprints)
}

/// Writes a table of known heights (an Arrow IPC stream, as for [`footprints_in_memory`]) into
/// a new in-memory GeoPackage, layer `known_heights`. Its geometry column is optional (rows
/// then join by id); with one, `crs` is required.
pub fn known_heights_in_memory(ipc: &[u8], crs: Option<&str>) -> Result<InMemory> {
    table_in_memory(ipc, crs, Held::KnownHeights)
}

fn table_in_memory(ipc: &[u8], crs: Option<&str>, held: Held) -> Result<InMemory> {
    crate::io::gdal_setup::init();
    let bad = |m: String| Error::of(held.kind(), held.name(), m);
    let crs = crs
        .map(|c| Crs::from_user(c).map_err(|e| bad(e.to_string())))
        .transpose()?;
    let mut reader = std::io::Cursor::new(ipc);
    let metadata = read_stream_metadata(&mut reader).map_err(|e| bad(e.to_string()))?;
    let fields: Vec<(String, ArrowDataType)> = metadata
        .schema
        .iter_values()
        .map(|f| (f.name.to_string(), f.dtype().clone()))
        .collect();
    let mut columns: Vec<Vec<Box<dyn Array>>> = vec![Vec::new(); fields.len()];
    for state in StreamReader::new(reader, metadata, None) {
        match state.map_err(|e| bad(e.to_string()))? {
            StreamState::Some(batch) => {
                for (c, a) in batch.into_arrays().into_iter().enumerate() {
                    columns[c].push(a);
                }
            }
            StreamState::Waiting => break,
        }
    }
    let geometry = fields.iter().position(|(n, _)| n == "geometry");
    if geometry.is_none() && held == Held::Footprints {
        return Err(bad("no 'geometry' column (WKB)".into()));
    }
    let wkb = geometry
        .map(|g| {
            binary_values(&columns[g]).ok_or_else(|| {
                bad(format!(
                    "column 'geometry' is {:?}, not WKB binary",
                    fields[g].1
                ))
            })
        })
        .transpose()?;
    if wkb.is_some() && crs.is_none() {
        return Err(bad(
            "has a geometry but no CRS: set one (gdf.set_crs(...))".into()
        ));
    }
    let mut table = Table {
        crs: crs.clone(),
        ..Default::default()
    };
    for (c, (name, dtype)) in fields.iter().enumerate() {
        if Some(c) == geometry {
            continue;
        }
        let data = column_data(&columns[c]).ok_or_else(|| {
            bad(format!(
                "column '{name}' is {dtype:?}: give text, numbers or booleans"
            ))
        })?;
        table.columns.push(Column {
            name: name.clone(),
            data,
        });
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = PathBuf::from(format!(
        "/vsimem/roofline/{}-{n}/{}.gpkg",
        std::process::id(),
        held.layer()
    ));
    let rows = match (&wkb, table.columns.first()) {
        (Some(w), _) => w.len(),
        (None, Some(c)) => c.data.len(),
        (None, None) => 0,
    };
    let memory = InMemory {
        path: path.clone(),
        held,
        fields: table.columns.iter().map(|c| c.name.clone()).collect(),
        geometry: wkb.is_some(),
    };
    // GDAL's own messages, but naming the table the user handed over, not the memory file.
    let gerr = |e| bad(gdal_write_error(&path, e).to_string());
    let driver = DriverManager::get_driver_by_name("GPKG").map_err(gerr)?;
    let mut ds = driver.create_vector_only(&path).map_err(gerr)?;
    let srs = crs.as_ref().map(Crs::srs);
    {
        let layer = ds
            .create_layer(LayerOptions {
                name: held.layer(),
                srs: srs.as_ref(),
                ty: if wkb.is_some() {
                    OGRwkbGeometryType::wkbUnknown
                } else {
                    OGRwkbGeometryType::wkbNone
                },
                // Not `fid`, GeoPackage's default: a user's own `fid` column stays a field.
                options: Some(&["FID=_roofline_fid", "GEOMETRY_NAME=_roofline_geometry"]),
            })
            .map_err(gerr)?;
        add_fields(&layer, &table, false, &path).map_err(|e| bad(e.to_string()))?;
    }
    if let Some(c) = table.columns.iter().find(|c| c.data.len() != rows) {
        return Err(bad(format!(
            "column '{}' has {} rows, the table {rows}",
            c.name,
            c.data.len(),
        )));
    }
    let txn = ds.start_transaction().map_err(gerr)?;
    write_rows_with(&txn.layer(0).map_err(gerr)?, &table, rows, &path, |row| {
        wkb.as_ref()
            .and_then(|w| w[row].as_deref())
            .map(|b| {
                Geometry::from_wkb(b)
                    .map_err(|e| bad(format!("row {row}: geometry is not WKB: {e}")))
            })
            .transpose()
    })
    .map_err(|e| match e {
        Error::Footprints { .. } if held == Held::Footprints => e,
        other => bad(other.to_string()),
    })?;
    txn.commit().map_err(gerr)?;
    ds.close().map_err(gerr)?;
    Ok(memory)
}

/// The values of a binary column's chunks (WKB), `None` for another type.
fn binary_values(chunks: &[Box<dyn Array>]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::new();
    for a in chunks {
        let any = a.as_any();
        if let Some(b) = any.downcast_ref::<BinaryArray<i32>>() {
            out.extend(b.iter().map(|v| v.map(<[u8]>::to_vec)));
        } else if let Some(b) = any.downcast_ref::<BinaryArray<i64>>() {
            out.extend(b.iter().map(|v| v.map(<[u8]>::to_vec)));
        } else if let Some(b) = any.downcast_ref::<BinaryViewArray>() {
            out.extend(b.iter().map(|v| v.map(<[u8]>::to_vec)));
        } else {
            return None;
        }
    }
    Some(out)
}

/// One attribute column from its chunks, `None` for a type a footprint field cannot hold.
fn column_data(chunks: &[Box<dyn Array>]) -> Option<ColumnData> {
    let first = chunks.first()?.dtype().clone();
    let strings = |out: &mut Vec<Option<String>>, a: &dyn Array| -> bool {
        let any = a.as_any();
        if let Some(s) = any.downcast_ref::<Utf8Array<i32>>() {
            out.extend(s.iter().map(|v| v.map(str::to_string)));
        } else if let Some(s) = any.downcast_ref::<Utf8Array<i64>>() {
            out.extend(s.iter().map(|v| v.map(str::to_string)));
        } else if let Some(s) = any.downcast_ref::<Utf8ViewArray>() {
            out.extend(s.iter().map(|v| v.map(str::to_string)));
        } else {
            return false;
        }
        true
    };
    match first {
        ArrowDataType::Utf8 | ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View => {
            let mut out = Vec::new();
            for a in chunks {
                if !strings(&mut out, a.as_ref()) {
                    return None;
                }
            }
            Some(ColumnData::Str(out))
        }
        ArrowDataType::Float64 => gather(chunks, |p: &PrimitiveArray<f64>, out| {
            out.extend(p.iter().map(|v| v.copied()))
        })
        .map(ColumnData::F64),
        ArrowDataType::Int64 => gather(chunks, |p: &PrimitiveArray<i64>, out| {
            out.extend(p.iter().map(|v| v.copied()))
        })
        .map(ColumnData::I64),
        ArrowDataType::Boolean => {
            gather(chunks, |p: &BooleanArray, out| out.extend(p.iter())).map(ColumnData::Bool)
        }
        _ => None,
    }
}

/// The values of every chunk, each downcast to `A` (`None` when one is another array type).
fn gather<A: Array + 'static, T>(
    chunks: &[Box<dyn Array>],
    values: impl Fn(&A, &mut Vec<Option<T>>),
) -> Option<Vec<Option<T>>> {
    let mut out = Vec::new();
    for a in chunks {
        values(a.as_any().downcast_ref::<A>()?, &mut out);
    }
    Some(out)
}
