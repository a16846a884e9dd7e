//! Writing (and reading back) tables: CSV and GeoParquet through polars, GeoPackage, GeoJSON
//! and FlatGeobuf through GDAL. Every writer goes to a temporary file beside the target and
//! renames it into place, so a failure never leaves a half-written output.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use gdal::vector::{Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType};
use gdal::{DriverManager, Metadata};
use geo::{BoundingRect, MultiPolygon};
use polars::prelude::{
    BinaryChunked, BooleanChunked, Column as PlColumn, CompatLevel, CsvReadOptions, CsvWriter,
    DataFrame, DataType, Float64Chunked, Int64Chunked, IntoColumn, KeyValueMetadata, NamedFrom,
    NewChunkedArray, ParquetReader, ParquetWriter, SchemaExt, SerReader, SerWriter, Series,
    StringChunked,
};

use crate::crs::Crs;
use crate::error::{AtFile, Error, FileKind, Result};
use crate::io::layer::{add_fields, gdal_geometry, gdal_write_error, write_rows};
use crate::io::table::{Column, ColumnData, Table};

/// Output formats, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.csv`: geometry as WKT in a `geometry` column, the CRS label in a `crs` column.
    Csv,
    /// `.parquet` / `.geoparquet`: GeoParquet 1.1 (WKB, PROJJSON CRS, bbox), metadata in the
    /// footer.
    Parquet,
    /// `.gpkg`, through GDAL; metadata as layer metadata items.
    GeoPackage,
    /// `.geojson` / `.json`, through GDAL, in the table's CRS (not reprojected to WGS 84).
    GeoJson,
    /// `.fgb`, through GDAL.
    FlatGeobuf,
    /// `.shp` (with .shx, .dbf, .prj, .cpg): field names cut to 10 characters, no metadata.
    Shapefile,
    /// `PG:dbname=...`: a PostgreSQL/PostGIS table named with `--table`, written through GDAL
    /// in one transaction (see [`crate::io::postgis`]).
    PostGis,
}

/// The table formats by extension, for messages.
pub const TABLE_FORMATS: &str = ".csv, .parquet, .gpkg, .geojson, .fgb, .shp";

impl Format {
    /// The format named by the file's extension (case-insensitive); an error naming the file and
    /// the accepted extensions otherwise.
    pub fn from_path(path: &Path) -> Result<Format> {
        if crate::io::postgis::is_postgis(path) {
            return Ok(Format::PostGis);
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "csv" => Format::Csv,
            "parquet" | "geoparquet" => Format::Parquet,
            "gpkg" => Format::GeoPackage,
            "geojson" | "json" => Format::GeoJson,
            "fgb" => Format::FlatGeobuf,
            "shp" => Format::Shapefile,
            _ => {
                return Err(Error::of(
                    FileKind::Output,
                    path,
                    format!(
                        "unknown output format (use {TABLE_FORMATS} or PG:dbname=... with `table`)"
                    ),
                ))
            }
        })
    }

    fn gdal_driver(self) -> Option<&'static str> {
        match self {
            Format::GeoPackage => Some("GPKG"),
            Format::GeoJson => Some("GeoJSON"),
            Format::FlatGeobuf => Some("FlatGeobuf"),
            Format::Shapefile => Some("ESRI Shapefile"),
            Format::PostGis => Some("PostgreSQL"),
            _ => None,
        }
    }
}

/// A temporary path beside the target that is removed unless committed. Not `tempfile`: GDAL
/// must create the file itself (with the right extension), and a failed GeoPackage can leave
/// `-wal`/`-journal` sidecars that need removing too.
struct TempOutput {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempOutput {
    fn new(target: &Path) -> Result<TempOutput> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::of(
                FileKind::Output,
                target,
                format!("folder {} does not exist", dir.display()),
            ));
        }
        let name = target
            .file_name()
            .ok_or_else(|| Error::of(FileKind::Output, target, "is not a file path"))?
            .to_string_lossy();
        let ext = target
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        remove_stale_temporaries(&dir, &name, &ext);
        let tmp = dir.join(format!(".{name}.{}.tmp.{ext}", std::process::id()));
        Ok(TempOutput {
            tmp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Flushes the temporary file to disk, then renames it over the target: a crash or a kill
    /// at any moment leaves either the old file or the new one, never a mix.
    fn commit(mut self) -> Result<()> {
        let err = |e: std::io::Error| {
            Error::of(FileKind::Output, &self.target, format!("cannot write: {e}"))
        };
        File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&self.tmp, &self.target).map_err(err)?;
        self.committed = true;
        if let Some(dir) = self.tmp.parent() {
            // Makes the rename itself durable; not every file system can sync a folder.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

/// Removes temporary files a killed run (SIGKILL, power loss: no destructor ran) left beside
/// `name`: `.<name>.<pid>.tmp.<ext>` and GDAL's sidecars, when process `<pid>` is gone.
fn remove_stale_temporaries(dir: &Path, name: &str, ext: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let Some((pid, tail)) = rest.split_once(".tmp.") else {
            continue;
        };
        let sidecar = ["", "-wal", "-shm", "-journal"]
            .iter()
            .any(|s| tail == format!("{ext}{s}"));
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if sidecar && pid != std::process::id() && !process_alive(pid) {
            tracing::info!("removing {} left by an interrupted run", file);
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process is running (Linux: /proc; elsewhere assume it is, and keep its files).
fn process_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut p = self.tmp.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
    }
}

/// Checks, before any work, that a file can be written at `path`: not a folder, its folder
/// exists and accepts new files, and (for `table`s) its extension names a known format.
pub fn check_output_file(path: &Path, table: bool) -> Result<()> {
    if crate::io::postgis::is_postgis(path) {
        return Err(Error::of(
            FileKind::Output,
            crate::io::postgis::display_name(path),
            if table {
                "a database output needs a table name: `table` NAME (or SCHEMA.NAME)"
            } else {
                "this output is a file, not a database table"
            },
        ));
    }
    if table {
        Format::from_path(path)?;
    }
    if path.is_dir() {
        return Err(Error::of(
            FileKind::Output,
            path,
            "is a folder; give a file name",
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::of(
            FileKind::Output,
            path,
            format!("folder {} does not exist", dir.display()),
        ));
    }
    probe_writable(&dir).map_err(|e| Error::of(FileKind::Output, path, e))
}

/// Checks, before any work, that a report folder can be written at `path`: not an existing
/// file, and its nearest existing ancestor folder accepts new entries.
pub fn check_output_dir(path: &Path) -> Result<()> {
    // `-o out/cv.csv` would make a folder named like a table: say so instead.
    let table_like = [
        "csv", "parquet", "gpkg", "geojson", "fgb", "shp", "html", "json", "md",
    ];
    if !path.exists()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| table_like.contains(&e.to_ascii_lowercase().as_str()))
    {
        return Err(Error::of(
            FileKind::Output,
            path,
            "names a file, but the output is a report folder (metrics.json, predictions, report.md, report.html): give a folder name",
        ));
    }
    if path.exists() && !path.is_dir() {
        return Err(Error::of(
            FileKind::Output,
            path,
            "exists and is not a folder (the output is a report folder)",
        ));
    }
    let mut dir = path.to_path_buf();
    while !dir.exists() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
            _ => dir = PathBuf::from("."),
        }
    }
    if !dir.is_dir() {
        return Err(Error::of(
            FileKind::Output,
            path,
            format!("{} is not a folder", dir.display()),
        ));
    }
    probe_writable(&dir).map_err(|e| Error::of(FileKind::Output, path, e))
}

/// Creates and removes a file in `dir`: the only sure test that it accepts files.
fn probe_writable(dir: &Path) -> std::result::Result<(), String> {
    let probe = dir.join(format!(".roofline-probe.{}", std::process::id()));
    match File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("folder {} is not writable: {e}", dir.display())),
    }
}

/// Where a table output goes besides its path: the database table for `PG:` outputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// The table (`NAME` or `SCHEMA.NAME`) for a `PG:` output; must be `None` for files.
    pub table: Option<String>,
    /// Replace an existing database table (in the same transaction); without it an existing
    /// table is an error. Files are always replaced (atomically).
    pub overwrite: bool,
}

/// [`check_output_file`] for a table output that may be a database (`PG:...` with
/// `opts.table`): for a database, connects and checks PostGIS and that the table is new (or
/// `opts.overwrite`), before any work.
pub fn check_output_table(path: &Path, opts: &TableOptions) -> Result<()> {
    match (crate::io::postgis::is_postgis(path), &opts.table) {
        (true, Some(name)) => crate::io::postgis::check_output(path, name, opts.overwrite),
        (false, Some(_)) => Err(Error::of(
            FileKind::Output,
            path,
            "`table` names a table of a database output (PG:dbname=...); a file holds one table",
        )),
        (false, None) if opts.overwrite => Err(Error::of(
            FileKind::Output,
            path,
            "`overwrite` is for database outputs (PG:dbname=... with `table` NAME); files are always replaced",
        )),
        _ => check_output_file(path, true),
    }
}

/// [`write_table`], or for a database output (`PG:...` with `opts.table`) the table written in
/// one transaction.
pub fn write_table_with(table: &Table, path: &Path, opts: &TableOptions) -> Result<()> {
    match (crate::io::postgis::is_postgis(path), &opts.table) {
        (true, Some(name)) => crate::io::postgis::write(table, path, name, opts.overwrite),
        _ => {
            check_output_table(path, opts)?;
            write_table(table, path)
        }
    }
}

/// How an output is named in messages: a database table as `PG:... table NAME` (no
/// password), a file as its path.
pub fn output_name(path: &Path, opts: &TableOptions) -> String {
    let shown = crate::io::postgis::display_name(path).display().to_string();
    match &opts.table {
        Some(t) if crate::io::postgis::is_postgis(path) => format!("{shown} table {t}"),
        _ => shown,
    }
}

/// Writes `table` to `path` in the format its extension names, atomically. A database output
/// needs a table name: use [`write_table_with`].
pub fn write_table(table: &Table, path: &Path) -> Result<()> {
    let format = Format::from_path(path)?;
    if format == Format::PostGis {
        return check_output_file(path, true);
    }
    if format == Format::Shapefile {
        return write_shapefile(table, path);
    }
    if format == Format::FlatGeobuf {
        check_flatgeobuf(table, path)?;
    }
    let tmp = TempOutput::new(path)?;
    match format {
        Format::Csv => write_csv(table, &tmp.tmp),
        Format::Parquet => write_parquet(table, &tmp.tmp),
        _ => write_gdal(table, &tmp.tmp, format.gdal_driver().expect("GDAL format")),
    }
    .map_err(|e| e.in_file(FileKind::Output, path))?;
    tmp.commit()
}

/// Shapefile: several files (.shp, .shx, .dbf, .prj, .cpg) written into a temporary folder
/// beside the target and renamed into place; field names cut to the format's 10 characters
/// (kept unique, with a warning saying which became what); text in UTF-8. No metadata: the
/// format has nowhere to keep it.
fn write_shapefile(table: &Table, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::of(FileKind::Output, path, "is not a file path"))?
        .to_string_lossy()
        .into_owned();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = TempDir(dir.join(format!(".{name}.{}.tmp", std::process::id())));
    std::fs::create_dir(&tmp.0).at_kind(FileKind::Output, path)?;
    let (short, renamed) = shapefile_field_names(&table.columns);
    if !renamed.is_empty() {
        tracing::warn!(
            "{}: Shapefile field names have at most 10 characters: {}",
            path.display(),
            renamed.join(", ")
        );
    }
    let mut t = table.clone();
    for (c, n) in t.columns.iter_mut().zip(short) {
        c.name = n;
    }
    t.metadata.clear();
    write_gdal(&t, &tmp.0.join(&name), "ESRI Shapefile")
        .map_err(|e| e.in_file(FileKind::Output, path))?;
    for entry in std::fs::read_dir(&tmp.0).at_kind(FileKind::Output, path)? {
        let from = entry.at_kind(FileKind::Output, path)?.path();
        let ext = from
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = dir.join(format!("{stem}.{ext}"));
        std::fs::rename(&from, &to)
            .map_err(|e| Error::of(FileKind::Output, &to, format!("cannot write: {e}")))?;
    }
    Ok(())
}

/// Removes a temporary folder and what is left in it.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Field names of at most 10 characters (bytes), unique ignoring case: cut, then numbered
/// where two cuts collide. Returns the names and `long -> short` for each changed one.
pub fn shapefile_field_names(columns: &[Column]) -> (Vec<String>, Vec<String>) {
    let mut out: Vec<String> = Vec::new();
    let mut renamed = Vec::new();
    let taken = |out: &[String], n: &str| out.iter().any(|o| o.eq_ignore_ascii_case(n));
    for c in columns {
        let cut = |n: usize| -> String {
            let mut s = String::new();
            for ch in c.name.chars() {
                if s.len() + ch.len_utf8() > n {
                    break;
                }
                s.push(ch);
            }
            s
        };
        let mut short = cut(10);
        let mut k = 1;
        while taken(&out, &short) {
            let suffix = format!("_{k}");
            short = format!("{}{suffix}", cut(10 - suffix.len()));
            k += 1;
        }
        if short != c.name {
            renamed.push(format!("{} -> {short}", c.name));
        }
        out.push(short);
    }
    (out, renamed)
}

/// Writes text (JSON, Markdown) atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

/// Writes bytes atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = TempOutput::new(path)?;
    std::fs::write(&tmp.tmp, bytes)
        .map_err(|e| Error::of(FileKind::Output, path, format!("cannot write: {e}")))?;
    tmp.commit()
}

fn to_polars_column(c: &Column) -> PlColumn {
    let name = c.name.as_str().into();
    match &c.data {
        ColumnData::F64(v) => {
            Float64Chunked::from_iter_options(name, v.iter().copied()).into_column()
        }
        ColumnData::I64(v) => {
            Int64Chunked::from_iter_options(name, v.iter().copied()).into_column()
        }
        ColumnData::Bool(v) => {
            BooleanChunked::from_iter_options(name, v.iter().copied()).into_column()
        }
        ColumnData::Str(v) => {
            StringChunked::from_iter_options(name, v.iter().map(|s| s.as_deref())).into_column()
        }
    }
}

fn to_dataframe(table: &Table, geometry: Option<PlColumn>) -> Result<DataFrame> {
    let mut cols: Vec<PlColumn> = table.columns.iter().map(to_polars_column).collect();
    cols.extend(geometry);
    DataFrame::new(table.n_rows(), cols)
        .map_err(|e| Error::invalid(format!("cannot build table: {e}")))
}

/// CSV: geometry as WKT in a `geometry` column and its CRS in a `crs` column, so the file says
/// which CRS it is in even when opened in a spreadsheet.
fn write_csv(table: &Table, path: &Path) -> Result<()> {
    let mut extra = Vec::new();
    if let Some(geoms) = &table.geometry {
        let wkt = geoms
            .iter()
            .map(|g| {
                gdal_geometry(g)?
                    .wkt()
                    .map_err(|e| Error::invalid(format!("cannot write WKT: {e}")))
            })
            .collect::<Result<Vec<String>>>()?;
        extra.push(Series::new("geometry".into(), wkt).into_column());
        let label = table
            .crs
            .as_ref()
            .map(|c| c.label.clone())
            .unwrap_or_default();
        extra.push(Series::new("crs".into(), vec![label; geoms.len()]).into_column());
    }
    let mut df = to_dataframe(table, None)?;
    for c in extra {
        df.with_column(c)
            .map_err(|e| Error::invalid(e.to_string()))?;
    }
    let mut f = File::create(path)
        .map_err(|e| Error::of(FileKind::Output, path, format!("cannot create: {e}")))?;
    CsvWriter::new(&mut f)
        .include_header(true)
        .finish(&mut df)
        .map_err(|e| Error::of(FileKind::Output, path, format!("cannot write CSV: {e}")))
}

/// GeoParquet 1.1: WKB geometry, the CRS as PROJJSON and the bounding box in the `geo` footer
/// key; roofline's own metadata in further footer keys.
fn write_parquet(table: &Table, path: &Path) -> Result<()> {
    let (mut df, mut kv) = geo_frame(table)?;
    let schema = arrow_schema_key(&df, &kv);
    kv.insert("ARROW:schema".into(), schema);
    let f = File::create(path)
        .map_err(|e| Error::of(FileKind::Output, path, format!("cannot create: {e}")))?;
    ParquetWriter::new(f)
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(
            kv.into_iter().collect(),
        )))
        .finish(&mut df)
        .map_err(|e| Error::of(FileKind::Output, path, format!("cannot write Parquet: {e}")))?;
    Ok(())
}

/// A table as an Arrow IPC stream, in memory: the GeoParquet file's columns and schema
/// metadata (`geo`, roofline's keys), in plain types (no views), the geometry as WKB marked
/// `geoarrow.wkb` with its CRS as PROJJSON. What the Python package hands to pyarrow and
/// geopandas (`GeoDataFrame.from_arrow`) without a file in between.
pub fn arrow_ipc(table: &Table) -> Result<Vec<u8>> {
    use polars_arrow::io::ipc::write::{StreamWriter, WriteOptions};
    let (mut df, kv) = geo_frame(table)?;
    df.rechunk_mut();
    let mut schema = df.schema().to_arrow(CompatLevel::oldest());
    if table.geometry.is_some() {
        let crs = match &table.crs {
            Some(c) => format!("{{\"crs\":{}}}", c.projjson()?),
            None => "{}".to_string(),
        };
        if let Some(field) = schema.get_mut("geometry") {
            field.dtype = polars_arrow::datatypes::ArrowDataType::Extension(Box::new(
                polars_arrow::datatypes::ExtensionType {
                    name: "geoarrow.wkb".into(),
                    inner: field.dtype.clone(),
                    metadata: Some(crs.into()),
                },
            ));
        }
    }
    let metadata: polars_arrow::datatypes::Metadata = kv
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    let ipc_error = |e: polars::prelude::PolarsError| Error::invalid(format!("Arrow IPC: {e}"));
    let mut w = StreamWriter::new(Vec::new(), WriteOptions { compression: None });
    w.set_custom_schema_metadata(std::sync::Arc::new(metadata));
    w.start(&schema, None).map_err(ipc_error)?;
    for batch in df.iter_chunks(CompatLevel::oldest(), false) {
        let batch = polars_arrow::record_batch::RecordBatchT::try_new(
            batch.len(),
            std::sync::Arc::new(schema.clone()),
            batch.into_arrays(),
        )
        .map_err(ipc_error)?;
        w.write(&batch, None).map_err(ipc_error)?;
    }
    w.finish().map_err(ipc_error)?;
    Ok(w.into_inner())
}

/// The columns of a GeoParquet file (the geometry as WKB in `geometry`) and its footer keys
/// (`geo` and the table's own metadata).
fn geo_frame(table: &Table) -> Result<(DataFrame, BTreeMap<String, String>)> {
    let mut kv: BTreeMap<String, String> = table.metadata.clone();
    let geometry = match &table.geometry {
        Some(geoms) => {
            let wkb = geoms
                .iter()
                .map(|g| {
                    gdal_geometry(g)?
                        .wkb()
                        .map_err(|e| Error::invalid(format!("cannot write WKB: {e}")))
                })
                .collect::<Result<Vec<Vec<u8>>>>()?;
            let col = BinaryChunked::from_iter_values(
                "geometry".into(),
                wkb.iter().map(|b| b.as_slice()),
            )
            .into_column();
            kv.insert("geo".into(), geo_metadata(geoms, table.crs.as_ref())?);
            Some(col)
        }
        None => None,
    };
    Ok((to_dataframe(table, geometry)?, kv))
}

/// The footer's `ARROW:schema` value, written here rather than by polars for two reasons.
/// Polars describes the columns with the view types it holds them in (string_view,
/// binary_view), which Arrow readers before 15 refuse; the oldest compatibility level names the
/// plain ones every reader opens (the pages are the same: Parquet has no view types). And an
/// Arrow reader takes a table's metadata from this schema, not from the footer's other keys:
/// without `geo` in it, pyarrow's `read_table` hands over a table that does not say which
/// column is the geometry or in which CRS. The encoding is Arrow's (the IPC schema message,
/// length-prefixed, base64), as polars-parquet's `schema_to_metadata_key` writes it for tables
/// without nested columns (roofline's have none), which takes no metadata. Every footer key is
/// thus stored twice, as in pyarrow's own files.
fn arrow_schema_key(df: &DataFrame, kv: &BTreeMap<String, String>) -> String {
    use base64::Engine as _;
    use polars_arrow::io::ipc::write::{default_ipc_fields, schema_to_bytes};
    let schema = df.schema().to_arrow(CompatLevel::oldest());
    let metadata: polars_arrow::datatypes::Metadata = kv
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    let bytes = schema_to_bytes(
        &schema,
        &default_ipc_fields(schema.iter_values()),
        Some(&metadata),
    );
    let mut prefixed = Vec::with_capacity(bytes.len() + 8);
    prefixed.extend_from_slice(&[255, 255, 255, 255]);
    prefixed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    prefixed.extend_from_slice(&bytes);
    base64::engine::general_purpose::STANDARD.encode(&prefixed)
}

fn geo_metadata(geoms: &[MultiPolygon<f64>], crs: Option<&Crs>) -> Result<String> {
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut has_poly = false;
    let mut has_multi = false;
    for g in geoms {
        if let Some(r) = g.bounding_rect() {
            bbox = [
                bbox[0].min(r.min().x),
                bbox[1].min(r.min().y),
                bbox[2].max(r.max().x),
                bbox[3].max(r.max().y),
            ];
        }
        has_poly |= g.0.len() == 1;
        has_multi |= g.0.len() != 1;
    }
    let mut types = Vec::new();
    if has_poly {
        types.push("Polygon");
    }
    if has_multi {
        types.push("MultiPolygon");
    }
    let mut col = serde_json::json!({ "encoding": "WKB", "geometry_types": types });
    if bbox[0].is_finite() {
        col["bbox"] = serde_json::json!(bbox);
    }
    if let Some(c) = crs {
        let projjson: serde_json::Value = serde_json::from_str(&c.projjson()?)
            .map_err(|e| Error::invalid(format!("bad PROJJSON for {}: {e}", c.label)))?;
        col["crs"] = projjson;
    }
    Ok(serde_json::json!({
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": { "geometry": col }
    })
    .to_string())
}

fn write_gdal(table: &Table, path: &Path, driver_name: &str) -> Result<()> {
    let gerr = |e| gdal_write_error(path, e);
    let driver = DriverManager::get_driver_by_name(driver_name).map_err(gerr)?;
    let mut ds = driver.create_vector_only(path).map_err(gerr)?;
    let srs = table.crs.as_ref().map(|c| c.srs());
    let geoms = table.geometry.as_ref();
    let layer_name = path
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .trim_start_matches('.')
                .split('.')
                .next()
                .unwrap_or("roofline")
                .to_string()
        })
        .unwrap_or_else(|| "roofline".into());
    {
        let mut layer = ds
            .create_layer(LayerOptions {
                name: &layer_name,
                srs: srs.as_ref(),
                ty: if geoms.is_some() {
                    OGRwkbGeometryType::wkbMultiPolygon
                } else {
                    OGRwkbGeometryType::wkbNone
                },
                options: (driver_name == "ESRI Shapefile").then_some(&["ENCODING=UTF-8"][..]),
            })
            .map_err(gerr)?;
        add_fields(&layer, table, driver_name == "ESRI Shapefile", path)?;
        for (key, value) in &table.metadata {
            layer.set_metadata_item(key, value, "").map_err(gerr)?;
        }
    }
    // One transaction makes GeoPackage writing fast; the other drivers have none.
    if driver_name == "GPKG" {
        let txn = ds.start_transaction().map_err(gerr)?;
        write_rows(&txn.layer(0).map_err(gerr)?, table, path)?;
        txn.commit().map_err(gerr)?;
    } else {
        write_rows(&ds.layer(0).map_err(gerr)?, table, path)?;
    }
    ds.close().map_err(gerr)?;
    verify_gdal(table, path)
}

/// Refuses a table with rows that have no geometry for FlatGeobuf, whose GDAL writer (3.6)
/// drops such rows without an error: the rows are named, and formats that keep them offered.
fn check_flatgeobuf(table: &Table, path: &Path) -> Result<()> {
    let Some(g) = &table.geometry else {
        return Ok(());
    };
    let empty: Vec<usize> = (0..g.len()).filter(|&i| g[i].0.is_empty()).collect();
    if empty.is_empty() {
        return Ok(());
    }
    let ids = table.column("id").map(|c| match &c.data {
        ColumnData::Str(v) => empty
            .iter()
            .take(3)
            .map(|&i| v[i].clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    });
    Err(Error::of(
        FileKind::Output,
        path,
        format!(
            "FlatGeobuf cannot hold rows without a geometry (GDAL drops them), and {} of {} rows have none (footprints without a usable polygon{}); write .gpkg, .parquet or .geojson, which keep them",
            empty.len(),
            table.n_rows(),
            ids.filter(|s| !s.is_empty())
                .map(|s| format!(", e.g. id {s}"))
                .unwrap_or_default()
        ),
    ))
}

/// Reads a GDAL-written file back and counts its rows: some drivers (GeoJSON) do not report a
/// failed write, so a full disk or a file-size limit would otherwise leave a cut-off file that
/// looks written.
fn verify_gdal(table: &Table, path: &Path) -> Result<()> {
    let incomplete = |what: String| {
        Error::of(FileKind::Output,
            path,
            format!("cannot write: the file came out incomplete ({what}), though GDAL reported no error"),
        )
    };
    let ds = gdal::Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR,
            ..Default::default()
        },
    )
    .map_err(|e| incomplete(format!("it cannot be read back: {e}")))?;
    let mut layer = ds
        .layer(0)
        .map_err(|e| incomplete(format!("no layer: {e}")))?;
    let n = layer.features().count();
    if n != table.n_rows() {
        return Err(incomplete(format!(
            "{n} of {} rows read back",
            table.n_rows()
        )));
    }
    Ok(())
}

/// Reads a table written by [`write_table`] (geometry is read back for GDAL formats and
/// GeoParquet; key/value metadata from Parquet footers).
pub fn read_table(path: &Path) -> Result<Table> {
    match Format::from_path(path)? {
        Format::Csv => {
            let df = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(None)
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
                .map_err(|e| Error::of(FileKind::Output, path, format!("cannot read CSV: {e}")))?;
            from_dataframe(&df, path, None, BTreeMap::new())
        }
        Format::Parquet => {
            let f = File::open(path).at_kind(FileKind::Output, path)?;
            let mut reader = ParquetReader::new(f);
            let kv = reader
                .get_metadata()
                .ok()
                .and_then(|m| m.key_value_metadata().clone())
                .map(|kvs| {
                    // The Arrow schema describes the file, not the table: a writer makes its own.
                    kvs.into_iter()
                        .filter(|kv| kv.key != "ARROW:schema")
                        .filter_map(|kv| Some((kv.key, kv.value?)))
                        .collect()
                })
                .unwrap_or_default();
            let df = reader.finish().map_err(|e| {
                Error::of(FileKind::Output, path, format!("cannot read Parquet: {e}"))
            })?;
            from_dataframe(&df, path, Some("geometry"), kv)
        }
        Format::PostGis => Err(Error::of(
            FileKind::Output,
            crate::io::postgis::display_name(path),
            "read a database table with SQL or GDAL (read_table reads files)",
        )),
        _ => read_gdal(path),
    }
}

fn from_dataframe(
    df: &DataFrame,
    path: &Path,
    wkb_col: Option<&str>,
    metadata: BTreeMap<String, String>,
) -> Result<Table> {
    let perr = |e: polars::prelude::PolarsError| Error::of(FileKind::Output, path, e);
    let mut t = Table {
        metadata,
        ..Default::default()
    };
    for c in df.columns() {
        let name = c.name().to_string();
        if Some(name.as_str()) == wkb_col && matches!(c.dtype(), DataType::Binary) {
            let geoms = c
                .binary()
                .map_err(perr)?
                .iter()
                .map(|b| {
                    let g = Geometry::from_wkb(b.unwrap_or_default())
                        .at_kind(FileKind::Output, path)?;
                    multipolygon_of(&g.to_geo().at_kind(FileKind::Output, path)?)
                })
                .collect::<Result<Vec<_>>>()?;
            t.geometry = Some(geoms);
            continue;
        }
        let data = match c.dtype() {
            DataType::Float64 | DataType::Float32 => ColumnData::F64(
                c.cast(&DataType::Float64)
                    .map_err(perr)?
                    .f64()
                    .map_err(perr)?
                    .iter()
                    .collect(),
            ),
            DataType::Boolean => ColumnData::Bool(c.bool().map_err(perr)?.iter().collect()),
            dt if dt.is_integer() => ColumnData::I64(
                c.cast(&DataType::Int64)
                    .map_err(perr)?
                    .i64()
                    .map_err(perr)?
                    .iter()
                    .collect(),
            ),
            DataType::String => ColumnData::Str(
                c.str()
                    .map_err(perr)?
                    .iter()
                    .map(|s| s.map(String::from))
                    .collect(),
            ),
            DataType::Null => ColumnData::F64(vec![None; c.len()]),
            other => {
                return Err(Error::of(
                    FileKind::Output,
                    path,
                    format!("column '{name}' has unsupported type {other}"),
                ))
            }
        };
        t.columns.push(Column { name, data });
    }
    if let Some(geo) = t.metadata.get("geo") {
        let v: serde_json::Value = serde_json::from_str(geo).at_kind(FileKind::Output, path)?;
        if let Some(crs) = v.pointer("/columns/geometry/crs") {
            t.crs = Some(Crs::from_user(&crs.to_string()).at_kind(FileKind::Output, path)?);
        }
    }
    Ok(t)
}

fn multipolygon_of(g: &geo::Geometry<f64>) -> Result<MultiPolygon<f64>> {
    match g {
        geo::Geometry::Polygon(p) => Ok(MultiPolygon(vec![p.clone()])),
        geo::Geometry::MultiPolygon(m) => Ok(m.clone()),
        other => Err(Error::invalid(format!(
            "expected polygons, found {other:?}"
        ))),
    }
}

fn read_gdal(path: &Path) -> Result<Table> {
    let ds = crate::io::footprints::open_vector(path)?;
    let mut layer = ds
        .layer(0)
        .map_err(|e| Error::of(FileKind::Output, path, e))?;
    let fields: Vec<(String, u32)> = layer
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    let crs = layer
        .spatial_ref()
        .map(|s| Crs::from_srs(&s))
        .transpose()
        .at_kind(FileKind::Output, path)?;
    let boolean: Vec<bool> = (0..fields.len())
        .map(|i| {
            // SAFETY: the layer (and its definition) outlive these calls; i < field count.
            unsafe {
                let defn = gdal_sys::OGR_L_GetLayerDefn(layer.c_layer());
                let f = gdal_sys::OGR_FD_GetFieldDefn(defn, i as i32);
                !f.is_null()
                    && gdal_sys::OGR_Fld_GetSubType(f) == gdal_sys::OGRFieldSubType::OFSTBoolean
            }
        })
        .collect();
    let mut cols: Vec<ColumnData> = fields
        .iter()
        .zip(&boolean)
        .map(|((_, ty), b)| match *ty {
            OGRFieldType::OFTInteger if *b => ColumnData::Bool(Vec::new()),
            OGRFieldType::OFTReal => ColumnData::F64(Vec::new()),
            OGRFieldType::OFTInteger | OGRFieldType::OFTInteger64 => ColumnData::I64(Vec::new()),
            _ => ColumnData::Str(Vec::new()),
        })
        .collect();
    let mut geoms = Vec::new();
    for f in layer.features() {
        for (i, col) in cols.iter_mut().enumerate() {
            match col {
                ColumnData::F64(v) => v.push(f.field_as_double(i).at_kind(FileKind::Output, path)?),
                ColumnData::I64(v) => {
                    v.push(f.field_as_integer64(i).at_kind(FileKind::Output, path)?)
                }
                ColumnData::Str(v) => v.push(f.field_as_string(i).at_kind(FileKind::Output, path)?),
                ColumnData::Bool(v) => v.push(
                    f.field_as_integer(i)
                        .at_kind(FileKind::Output, path)?
                        .map(|x| x != 0),
                ),
            }
        }
        if let Some(g) = f.geometry() {
            geoms.push(multipolygon_of(
                &g.to_geo().at_kind(FileKind::Output, path)?,
            )?);
        }
    }
    let mut metadata = BTreeMap::new();
    for entry in layer.metadata_domain("").unwrap_or_default() {
        if let Some((k, v)) = entry.split_once('=') {
            metadata.insert(k.to_string(), v.to_string());
        }
    }
    Ok(Table {
        columns: fields
            .into_iter()
            .zip(cols)
            .map(|((name, _), data)| Column { name, data })
            .collect(),
        geometry: (!geoms.is_empty()).then_some(geoms),
        crs,
        metadata,
    })
}
