//! PostgreSQL/PostGIS through GDAL's PostgreSQL driver: footprints are read from a table or an
//! SQL query (`[footprints] path = "PG:dbname=..."`), and every per-building table can be
//! written into a database table (`-o PG:dbname=... --table heights`).
//!
//! A database output is written in one transaction: the table is created (or, with
//! `--overwrite`, dropped and created again), filled, its rows counted, and only then
//! committed — a failed or killed run leaves the database as it was. The geometry column is
//! `geometry(MultiPolygon, SRID)` with the table's CRS as its SRID, GDAL's driver adds a GiST
//! spatial index, and every column gets a PostgreSQL type (`float8`, `int8`, `varchar`,
//! `boolean`). Floats arrive exactly (bit for bit), not through GDAL's 15-digit text. Connection strings are never shown with their password: errors and messages
//! name the connection through [`display_name`].

use std::path::{Path, PathBuf};

use gdal::vector::{LayerAccess, LayerOptions, OGRwkbGeometryType};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use crate::error::{Error, FileKind, Result};
use crate::io::table::Table;

/// PostgreSQL's identifier length limit (NAMEDATALEN - 1): longer names are cut silently.
const MAX_IDENTIFIER: usize = 63;

pub use crate::config::is_postgis;

/// The connection string with any password replaced by `***` (`password=...`, quoted or not,
/// and the `user:password@` part of a `postgresql://` URI); other paths unchanged.
pub fn redact(conn: &str) -> String {
    let lower = conn.to_ascii_lowercase();
    let mut out = String::with_capacity(conn.len());
    let mut i = 0;
    while let Some(pos) = lower[i..].find("password") {
        let key_end = i + pos + "password".len();
        let rest = &conn[key_end..];
        let after_space = rest.trim_start();
        if !after_space.starts_with('=') {
            out.push_str(&conn[i..key_end]);
            i = key_end;
            continue;
        }
        let eq = key_end + (rest.len() - after_space.len()) + 1;
        let value = &conn[eq..];
        let trimmed = value.trim_start();
        let start = eq + (value.len() - trimmed.len());
        let end = if let Some(quoted) = trimmed.strip_prefix('\'') {
            // A quoted value ends at the first quote not escaped by a backslash.
            let mut escaped = false;
            let mut close = quoted.len();
            for (k, ch) in quoted.char_indices() {
                match ch {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        close = k + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            start + 1 + close
        } else {
            start + trimmed.find(char::is_whitespace).unwrap_or(trimmed.len())
        };
        out.push_str(&conn[i..start]);
        out.push_str("***");
        i = end.min(conn.len());
    }
    out.push_str(&conn[i..]);
    redact_uri(&out)
}

/// `postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`.
fn redact_uri(s: &str) -> String {
    let Some(scheme) = s.find("://") else {
        return s.to_string();
    };
    let auth_start = scheme + 3;
    let auth_end = s[auth_start..]
        .find(['/', '?'])
        .map_or(s.len(), |k| auth_start + k);
    let Some(at) = s[auth_start..auth_end].rfind('@').map(|k| auth_start + k) else {
        return s.to_string();
    };
    match s[auth_start..at].find(':').map(|k| auth_start + k) {
        Some(colon) => format!("{}***{}", &s[..colon + 1], &s[at..]),
        None => s.to_string(),
    }
}

/// How to name `path` in messages: a connection string without its password, a file as is.
pub fn display_name(path: &Path) -> PathBuf {
    if is_postgis(path) {
        PathBuf::from(redact(&path.to_string_lossy()))
    } else {
        path.to_path_buf()
    }
}

/// Opens a PostgreSQL connection (read-only or for update); an error naming the connection
/// (without its password) and GDAL's reason.
pub fn open(conn: &Path, kind: FileKind, update: bool) -> Result<Dataset> {
    crate::io::gdal_setup::init();
    let mut flags = GdalOpenFlags::GDAL_OF_VECTOR;
    if update {
        flags |= GdalOpenFlags::GDAL_OF_UPDATE;
    }
    let options = DatasetOptions {
        open_flags: flags,
        allowed_drivers: Some(&["PostgreSQL"]),
        ..Default::default()
    };
    Dataset::open_ex(conn, options).map_err(|e| {
        Error::of(
            kind,
            display_name(conn),
            format!(
                "cannot connect to the database: {}",
                redact(&last_gdal_message().unwrap_or_else(|| e.to_string()))
            ),
        )
    })
}

/// GDAL's last error message, if any (it says why, where an error code does not).
fn last_gdal_message() -> Option<String> {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local string GDAL owns; it is
    // copied at once.
    let msg = unsafe {
        let p = gdal_sys::CPLGetLastErrorMsg();
        if p.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    };
    let msg = msg.trim().to_string();
    (!msg.is_empty()).then_some(msg)
}

/// The names of the database's tables GDAL lists (those with a geometry column), at most
/// `limit`, for "no such table" messages.
pub fn table_names(ds: &Dataset, limit: usize) -> String {
    let names: Vec<String> = ds.layers().map(|l| l.name()).collect();
    if names.is_empty() {
        return "none with a geometry column".to_string();
    }
    let mut shown = names
        .iter()
        .take(limit)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > limit {
        shown.push_str(&format!(", … {} in all", names.len()));
    }
    shown
}

/// Checks a table name given with `--table`: `table` or `schema.table`, each part a
/// PostgreSQL identifier of at most 63 bytes.
fn check_table_name(conn: &Path, table: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::of(
            FileKind::Output,
            display_name(conn),
            format!("`table` '{table}': {why}"),
        ))
    };
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return bad("expected TABLE or SCHEMA.TABLE");
    }
    if parts.iter().any(|p| p.len() > MAX_IDENTIFIER) {
        return bad("PostgreSQL names have at most 63 bytes");
    }
    if table
        .chars()
        .any(|c| c == '"' || c == '\0' || c.is_control())
    {
        return bad("quotes and control characters are not allowed");
    }
    Ok(())
}

/// Whether the database has the PostGIS extension (without it GDAL would store geometries as
/// plain bytes, with no SRID and no spatial index).
fn require_postgis(ds: &Dataset, conn: &Path) -> Result<()> {
    let has = ds
        .execute_sql(
            "SELECT extversion FROM pg_extension WHERE extname = 'postgis'",
            None,
            gdal::vector::sql::Dialect::DEFAULT,
        )
        .ok()
        .flatten()
        .is_some_and(|mut rs| rs.features().next().is_some());
    if has {
        Ok(())
    } else {
        Err(Error::of(
            FileKind::Output,
            display_name(conn),
            "the database has no PostGIS extension (run CREATE EXTENSION postgis as its owner)",
        ))
    }
}

/// The index (in GDAL's layer list) of table `name` when it exists.
fn existing_table(ds: &Dataset, name: &str) -> Option<usize> {
    let found = ds.layer_by_name(name).ok()?.name();
    ds.layers().position(|l| l.name() == found)
}

fn exists_error(conn: &Path, table: &str) -> Error {
    Error::of(
        FileKind::Output,
        display_name(conn),
        format!("table '{table}' already exists; set `overwrite` to replace it (in one transaction) or choose another `table`"),
    )
}

/// Checks, before any work, that `table` can be written through `conn`: the database answers,
/// has PostGIS, and the table is new unless `overwrite`.
pub fn check_output(conn: &Path, table: &str, overwrite: bool) -> Result<()> {
    check_table_name(conn, table)?;
    let ds = open(conn, FileKind::Output, true)?;
    require_postgis(&ds, conn)?;
    if !overwrite && existing_table(&ds, table).is_some() {
        return Err(exists_error(conn, table));
    }
    Ok(())
}

/// GDAL's PostgreSQL messages quote whole statements (a `CREATE TABLE` of every column): cut
/// to a readable length, passwords removed.
fn short(msg: &str) -> String {
    const MAX: usize = 300;
    let msg = redact(msg);
    match msg.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &msg[..cut]),
        None => msg,
    }
}

/// Writes `table` into database table `name` in one transaction (see the module docs); an
/// existing table is replaced only when `overwrite`, else it is an error and stays untouched.
pub fn write(table: &Table, conn: &Path, name: &str, overwrite: bool) -> Result<()> {
    check_table_name(conn, name)?;
    let w = Writing {
        shown: display_name(conn),
        name,
    };
    if let Some(long) = table.columns.iter().find(|c| c.name.len() > MAX_IDENTIFIER) {
        return Err(Error::of(
            FileKind::Output,
            &w.shown,
            format!(
                "column '{}' is longer than PostgreSQL's 63-byte names",
                long.name
            ),
        ));
    }
    let mut ds = open(conn, FileKind::Output, true)?;
    require_postgis(&ds, conn)?;
    let mut txn = ds.start_transaction().map_err(|e| w.gdal(e))?;
    let existing = existing_table(&txn, name);
    // Looking a missing table up is a GDAL failure too: not the reason of anything below.
    crate::io::gdal_setup::take_failures();
    if let Some(idx) = existing {
        if !overwrite {
            return Err(exists_error(conn, name));
        }
        // DROP TABLE inside the transaction: undone if anything below fails.
        txn.delete_layer(idx).map_err(|e| w.gdal(e))?;
    }
    w.create_and_fill(&mut txn, table)?;
    // Counted inside the transaction, before the commit makes the table visible: GDAL's
    // PostgreSQL driver reports some failed statements only as a wrong count (an aborted
    // transaction answers nothing), and then nothing is committed.
    let n = count_rows(&txn, name);
    if n != Some(table.n_rows() as u64) {
        let first = crate::io::gdal_setup::take_failures().into_iter().next();
        return Err(w.fail(match (n, first) {
            (_, Some(why)) => format!("the database refused the rows: {}", short(&why)),
            (Some(n), None) => format!("{n} of {} rows arrived", table.n_rows()),
            (None, None) => "the rows cannot be counted back".to_string(),
        }));
    }
    txn.commit().map_err(|e| w.gdal(e))?;
    // PostgreSQL answers COMMIT of an aborted transaction with a rollback, which GDAL reports
    // as success: count again.
    let after = count_rows(&ds, name);
    if after != Some(table.n_rows() as u64) {
        return Err(w.fail(format!(
            "after the commit the table holds {} of {} rows",
            after.map_or("no".to_string(), |n| n.to_string()),
            table.n_rows()
        )));
    }
    Ok(())
}

/// One write of a table: where to, and how its failures read (always "nothing was
/// committed", since the transaction is rolled back).
struct Writing<'a> {
    shown: PathBuf,
    name: &'a str,
}

impl Writing<'_> {
    /// The error of a failed write, saying what failed.
    fn fail(&self, what: String) -> Error {
        Error::of(
            FileKind::Output,
            &self.shown,
            format!(
                "cannot write table '{}' (nothing was committed): {what}",
                self.name
            ),
        )
    }

    /// A GDAL error, with the first failure GDAL reported as the reason (later ones are
    /// PostgreSQL refusing every statement of the aborted transaction).
    fn gdal(&self, e: gdal::errors::GdalError) -> Error {
        let why = crate::io::gdal_setup::take_failures()
            .into_iter()
            .next()
            .or_else(last_gdal_message)
            .filter(|m| !e.to_string().contains(m.as_str()))
            .map(|m| format!(" ({})", short(&m)))
            .unwrap_or_default();
        self.fail(format!("{}{why}", short(&e.to_string())))
    }

    /// An error of the shared GDAL writer, which names the connection already: its message
    /// only.
    fn inner(&self, e: Error) -> Error {
        match e {
            Error::Output { msg, .. } => self.fail(short(&msg)),
            other => self.fail(short(&other.to_string())),
        }
    }

    /// Creates the table and writes the rows, floats exactly: GDAL's PostgreSQL driver sends
    /// doubles as text with 15 significant digits, which loses the last bits of most values,
    /// so they go as exact text (the shortest that reads back to the same double) into text
    /// columns, turned into float8 by one ALTER TABLE.
    fn create_and_fill(&self, ds: &mut Dataset, table: &Table) -> Result<()> {
        let srs = table.crs.as_ref().map(|c| c.srs());
        let description = format!(
            "DESCRIPTION=roofline: {} rows; heights in metres; geometry in {}",
            table.n_rows(),
            table.crs.as_ref().map_or("-", |c| c.label.as_str())
        );
        let options = [
            "GEOMETRY_NAME=geometry",
            "FID=fid",
            // Column names exactly as in the other formats (no lower-casing).
            "LAUNDER=NO",
            "SPATIAL_INDEX=GIST",
            description.as_str(),
        ];
        let (text_table, reals) = reals_as_text(table);
        {
            let layer = ds
                .create_layer(LayerOptions {
                    name: self.name,
                    srs: srs.as_ref(),
                    ty: if table.geometry.is_some() {
                        OGRwkbGeometryType::wkbMultiPolygon
                    } else {
                        OGRwkbGeometryType::wkbNone
                    },
                    options: Some(&options),
                })
                .map_err(|e| self.gdal(e))?;
            crate::io::layer::add_fields(&layer, &text_table, false, &self.shown)
                .map_err(|e| self.inner(e))?;
            crate::io::layer::write_rows(&layer, &text_table, &self.shown)
                .map_err(|e| self.inner(e))?;
        }
        drop(text_table);
        if !reals.is_empty() {
            let alter: Vec<String> = reals
                .iter()
                .map(|c| {
                    let c = quote_ident(c);
                    format!("ALTER COLUMN {c} TYPE float8 USING {c}::float8")
                })
                .collect();
            let sql = format!(
                "ALTER TABLE {} {}",
                quote_table(self.name),
                alter.join(", ")
            );
            ds.execute_sql(&sql, None, gdal::vector::sql::Dialect::DEFAULT)
                .map_err(|e| self.gdal(e))?;
        }
        Ok(())
    }
}

/// `table` with every float column as text holding the exact value (Rust's shortest
/// round-trip form; `NaN`, `Infinity`, `-Infinity` as PostgreSQL spells them), and the names of
/// those columns.
fn reals_as_text(table: &Table) -> (Table, Vec<String>) {
    use crate::io::table::ColumnData;
    let mut t = table.clone();
    let mut reals = Vec::new();
    for c in &mut t.columns {
        if let ColumnData::F64(v) = &c.data {
            let text = v
                .iter()
                .map(|x| {
                    x.map(|x| match x {
                        x if x.is_nan() => "NaN".to_string(),
                        f64::INFINITY => "Infinity".to_string(),
                        f64::NEG_INFINITY => "-Infinity".to_string(),
                        x => format!("{x:?}"),
                    })
                })
                .collect();
            c.data = ColumnData::Str(text);
            reals.push(c.name.clone());
        }
    }
    (t, reals)
}

/// A PostgreSQL identifier in double quotes (inner quotes doubled).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `table` or `schema.table`, quoted.
fn quote_table(name: &str) -> String {
    name.split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// The rows of table `name` by `SELECT count(*)`, `None` when the query fails.
fn count_rows(ds: &Dataset, name: &str) -> Option<u64> {
    let sql = format!("SELECT count(*) AS n FROM {}", quote_table(name));
    let mut rs = ds
        .execute_sql(&sql, None, gdal::vector::sql::Dialect::DEFAULT)
        .ok()
        .flatten()?;
    let f = rs.features().next()?;
    f.field_as_integer64(0).ok().flatten().map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("PG:dbname=x password=s3cret host=h"),
            "PG:dbname=x password=*** host=h"
        );
        assert_eq!(
            redact("PG:dbname=x PASSWORD = 'a b\\' c' port=5"),
            "PG:dbname=x PASSWORD = *** port=5"
        );
        assert_eq!(
            redact("PG:postgresql://me:pw@db.example/x?sslmode=require"),
            "PG:postgresql://me:***@db.example/x?sslmode=require"
        );
        assert_eq!(redact("PG:dbname=x host=h"), "PG:dbname=x host=h");
        assert!(is_postgis(Path::new("pg:dbname=x")));
        assert!(!is_postgis(Path::new("out/PG.gpkg")));
    }

    #[test]
    fn table_names_are_checked() {
        let conn = Path::new("PG:dbname=x password=secret");
        assert!(check_table_name(conn, "heights").is_ok());
        assert!(check_table_name(conn, "city.heights").is_ok());
        let e = check_table_name(conn, "a.b.c").unwrap_err().to_string();
        assert!(e.contains("SCHEMA.TABLE") && !e.contains("secret"), "{e}");
        assert!(check_table_name(conn, &"x".repeat(64)).is_err());
        assert!(check_table_name(conn, "bad\"name").is_err());
    }
}
