//! A typed, columnar table with an optional geometry column and its CRS: what every stage hands
//! to the writers (labels, features, predictions). Missing values are real nulls, never 0.

use std::collections::BTreeMap;

use geo::MultiPolygon;

use crate::crs::Crs;
use crate::error::{Error, Result};

/// The values of one column; `None` is a null in every format written.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    /// Floats (heights in metres, features); never NaN: a missing value is `None`.
    F64(Vec<Option<f64>>),
    /// Integers (counts, folds).
    I64(Vec<Option<i64>>),
    /// Text (ids, flags, city names).
    Str(Vec<Option<String>>),
    /// Booleans (GDAL formats store them as integer fields with OGR's boolean subtype).
    Bool(Vec<Option<bool>>),
}

impl ColumnData {
    /// Number of rows, nulls included.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::F64(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::Str(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
        }
    }

    /// True for a column of no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values at `rows` (`None`: a null), in that order.
    pub fn pick(&self, rows: &[Option<usize>]) -> ColumnData {
        fn take<T: Clone>(v: &[Option<T>], rows: &[Option<usize>]) -> Vec<Option<T>> {
            rows.iter().map(|r| r.and_then(|i| v[i].clone())).collect()
        }
        match self {
            ColumnData::F64(v) => ColumnData::F64(take(v, rows)),
            ColumnData::I64(v) => ColumnData::I64(take(v, rows)),
            ColumnData::Str(v) => ColumnData::Str(take(v, rows)),
            ColumnData::Bool(v) => ColumnData::Bool(take(v, rows)),
        }
    }

    fn as_text(&self) -> Vec<Option<String>> {
        match self {
            ColumnData::Str(v) => v.clone(),
            ColumnData::F64(v) => v.iter().map(|x| x.map(|f| f.to_string())).collect(),
            ColumnData::I64(v) => v.iter().map(|x| x.map(|f| f.to_string())).collect(),
            ColumnData::Bool(v) => v.iter().map(|x| x.map(|f| f.to_string())).collect(),
        }
    }
}

/// A named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// The column name as written to files (cut to 10 characters only in Shapefiles).
    pub name: String,
    /// The values, one per row.
    pub data: ColumnData,
}

impl Column {
    /// A float column; NaN becomes null.
    pub fn f64(name: &str, values: impl IntoIterator<Item = f64>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::F64(
                values
                    .into_iter()
                    .map(|v| v.is_finite().then_some(v))
                    .collect(),
            ),
        }
    }

    /// A float column from optional values; `None` and non-finite values become null.
    pub fn opt_f64(name: &str, values: impl IntoIterator<Item = Option<f64>>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::F64(
                values
                    .into_iter()
                    .map(|v| v.filter(|x| x.is_finite()))
                    .collect(),
            ),
        }
    }

    /// An integer column without nulls.
    pub fn i64(name: &str, values: impl IntoIterator<Item = i64>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::I64(values.into_iter().map(Some).collect()),
        }
    }

    /// A text column without nulls.
    pub fn str<S: Into<String>>(name: &str, values: impl IntoIterator<Item = S>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::Str(values.into_iter().map(|s| Some(s.into())).collect()),
        }
    }

    /// A boolean column without nulls.
    pub fn bool(name: &str, values: impl IntoIterator<Item = bool>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::Bool(values.into_iter().map(Some).collect()),
        }
    }

    /// Values as floats (integers and booleans converted; text and nulls become NaN).
    pub fn as_f64(&self) -> Vec<f64> {
        match &self.data {
            ColumnData::F64(v) => v.iter().map(|x| x.unwrap_or(f64::NAN)).collect(),
            ColumnData::I64(v) => v.iter().map(|x| x.map_or(f64::NAN, |i| i as f64)).collect(),
            ColumnData::Bool(v) => v
                .iter()
                .map(|x| x.map_or(f64::NAN, |b| b as u8 as f64))
                .collect(),
            ColumnData::Str(v) => v.iter().map(|_| f64::NAN).collect(),
        }
    }

    /// Values as text (nulls become empty strings).
    pub fn as_strings(&self) -> Vec<String> {
        let fmt = |o: Option<String>| o.unwrap_or_default();
        match &self.data {
            ColumnData::Str(v) => v.iter().map(|x| fmt(x.clone())).collect(),
            ColumnData::F64(v) => v.iter().map(|x| fmt(x.map(|f| f.to_string()))).collect(),
            ColumnData::I64(v) => v.iter().map(|x| fmt(x.map(|f| f.to_string()))).collect(),
            ColumnData::Bool(v) => v.iter().map(|x| fmt(x.map(|f| f.to_string()))).collect(),
        }
    }
}

/// Columns of equal length, optionally with one geometry per row and the CRS it is in.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// The attribute columns, in output order.
    pub columns: Vec<Column>,
    /// One geometry per row, in `crs`.
    pub geometry: Option<Vec<MultiPolygon<f64>>>,
    /// The CRS of `geometry`; writers put it in the file (`crs` column in CSV).
    pub crs: Option<Crs>,
    /// Key/value metadata (JSON text), kept in Parquet footers and GeoPackage metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Table {
    /// Rows: the first column's length, else the geometry count, else 0.
    pub fn n_rows(&self) -> usize {
        self.columns
            .first()
            .map(|c| c.data.len())
            .or_else(|| self.geometry.as_ref().map(|g| g.len()))
            .unwrap_or(0)
    }

    /// The given rows, in the given order: columns, geometry, CRS and metadata. Every row must
    /// be `Some` where the table has geometry (a null attribute row has no null geometry).
    pub fn take_rows(&self, rows: &[Option<usize>]) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.pick(rows),
                })
                .collect(),
            geometry: self.geometry.as_ref().map(|g| {
                rows.iter()
                    .map(|r| g[r.expect("a row for every geometry")].clone())
                    .collect()
            }),
            crs: self.crs.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// The first column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Overwrites the first rows of column `name` with `head` (same type, no more rows than
    /// the column has); the rows after them are kept.
    pub fn set_head(&mut self, name: &str, head: ColumnData) -> Result<()> {
        let Some(c) = self.columns.iter_mut().find(|c| c.name == name) else {
            return Err(Error::invalid(format!("no column '{name}' to overwrite")));
        };
        let n = head.len();
        if n > c.data.len() {
            return Err(Error::invalid(format!(
                "column '{name}' has {} rows, not the {n} to overwrite",
                c.data.len()
            )));
        }
        match (&mut c.data, head) {
            (ColumnData::F64(v), ColumnData::F64(h)) => v[..n].clone_from_slice(&h),
            (ColumnData::I64(v), ColumnData::I64(h)) => v[..n].clone_from_slice(&h),
            (ColumnData::Str(v), ColumnData::Str(h)) => v[..n].clone_from_slice(&h),
            (ColumnData::Bool(v), ColumnData::Bool(h)) => v[..n].clone_from_slice(&h),
            _ => {
                return Err(Error::invalid(format!(
                    "column '{name}' holds another type than the values to write"
                )))
            }
        }
        Ok(())
    }

    /// Appends a column; it must have [`Table::n_rows`] rows (checked in debug builds only).
    pub fn push(&mut self, column: Column) {
        debug_assert!(self.columns.is_empty() || column.data.len() == self.n_rows());
        self.columns.push(column);
    }

    /// Appends one row per id for buildings without a usable polygon, so no input building is
    /// missing from an output: `id` and the text columns named in `text` are filled, every
    /// other column is null and the geometry is empty.
    pub fn append_unusable(&mut self, ids: &[String], text: &[(&str, &str)]) {
        if ids.is_empty() {
            return;
        }
        for c in &mut self.columns {
            let value = if c.name == "id" {
                None
            } else {
                text.iter().find(|(n, _)| *n == c.name).map(|(_, v)| *v)
            };
            match &mut c.data {
                ColumnData::Str(v) if c.name == "id" => v.extend(ids.iter().cloned().map(Some)),
                ColumnData::Str(v) => v.extend(ids.iter().map(|_| value.map(String::from))),
                ColumnData::F64(v) => v.extend(ids.iter().map(|_| None)),
                ColumnData::I64(v) => v.extend(ids.iter().map(|_| None)),
                ColumnData::Bool(v) => v.extend(ids.iter().map(|_| None)),
            }
        }
        if let Some(g) = &mut self.geometry {
            g.extend(ids.iter().map(|_| MultiPolygon(Vec::new())));
        }
    }
}

impl Table {
    /// Adds `extra` columns (rows keyed by `extra_keys`) to the rows keyed by `keys`; a row
    /// with no match gets nulls. A column whose name an existing column already has (ignoring
    /// case, as GeoPackage and Shapefile do) or a writer reserves is added as `input_<name>`;
    /// those names are returned.
    pub fn join_columns(
        &mut self,
        keys: &[String],
        extra_keys: &[String],
        extra: Vec<Column>,
    ) -> Vec<String> {
        let index: std::collections::HashMap<&str, usize> = extra_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let rows: Vec<Option<usize>> = keys
            .iter()
            .map(|k| index.get(k.as_str()).copied())
            .collect();
        let mut renamed = Vec::new();
        for c in extra {
            // Names the writers use themselves: GeoPackage's feature id, the geometry and CRS
            // columns of CSV and GeoParquet.
            const RESERVED: [&str; 4] = ["fid", "geometry", "geom", "crs"];
            let taken = |n: &str| {
                RESERVED.iter().any(|r| r.eq_ignore_ascii_case(n))
                    || self.columns.iter().any(|x| x.name.eq_ignore_ascii_case(n))
            };
            let mut name = c.name.clone();
            while taken(&name) {
                name = format!("input_{name}");
            }
            if name != c.name {
                renamed.push(c.name.clone());
            }
            self.columns.push(Column {
                name,
                data: c.data.pick(&rows),
            });
        }
        renamed
    }
}

/// Stacks tables row-wise whose columns may differ (tables of regions whose footprint files
/// have different attributes): the union of columns in first-seen order, nulls where a table
/// lacks one, text where types disagree.
pub fn concat_union(tables: Vec<Table>) -> crate::error::Result<Table> {
    let mut names: Vec<String> = Vec::new();
    for t in &tables {
        for c in &t.columns {
            if !names.contains(&c.name) {
                names.push(c.name.clone());
            }
        }
    }
    let aligned: Vec<Table> = tables
        .into_iter()
        .map(|t| {
            let n = t.n_rows();
            let columns = names
                .iter()
                .map(|name| {
                    t.column(name).cloned().unwrap_or_else(|| Column {
                        name: name.clone(),
                        data: ColumnData::Str(vec![None; n]),
                    })
                })
                .collect();
            Table { columns, ..t }
        })
        .collect();
    // Settle each column's type: the one all tables with values agree on, else text.
    let mut aligned = aligned;
    for j in 0..names.len() {
        let kinds: Vec<std::mem::Discriminant<ColumnData>> = aligned
            .iter()
            .filter(|t| !t.columns[j].data.is_all_null())
            .map(|t| std::mem::discriminant(&t.columns[j].data))
            .collect();
        let agree = kinds.windows(2).all(|w| w[0] == w[1]);
        let model = aligned
            .iter()
            .find(|t| !t.columns[j].data.is_all_null())
            .map(|t| t.columns[j].data.clone());
        for t in &mut aligned {
            let c = &mut t.columns[j];
            let n = c.data.len();
            c.data = match (&model, agree) {
                (Some(m), true) if c.data.is_all_null() => m.nulls(n),
                (Some(_), false) => ColumnData::Str(c.data.as_text()),
                _ => c.data.clone(),
            };
        }
    }
    concat(aligned)
}

impl ColumnData {
    fn is_all_null(&self) -> bool {
        match self {
            ColumnData::F64(v) => v.iter().all(Option::is_none),
            ColumnData::I64(v) => v.iter().all(Option::is_none),
            ColumnData::Str(v) => v.iter().all(Option::is_none),
            ColumnData::Bool(v) => v.iter().all(Option::is_none),
        }
    }

    /// `n` nulls of the same type.
    fn nulls(&self, n: usize) -> ColumnData {
        match self {
            ColumnData::F64(_) => ColumnData::F64(vec![None; n]),
            ColumnData::I64(_) => ColumnData::I64(vec![None; n]),
            ColumnData::Str(_) => ColumnData::Str(vec![None; n]),
            ColumnData::Bool(_) => ColumnData::Bool(vec![None; n]),
        }
    }
}

/// Stacks tables with the same columns (and CRS) row-wise.
pub fn concat(tables: Vec<Table>) -> crate::error::Result<Table> {
    let mut it = tables.into_iter();
    let Some(mut out) = it.next() else {
        return Ok(Table::default());
    };
    for t in it {
        if t.columns.len() != out.columns.len() {
            return Err(crate::error::Error::invalid(
                "tables to stack have different columns",
            ));
        }
        for (a, b) in out.columns.iter_mut().zip(t.columns) {
            match (&mut a.data, b.data) {
                (ColumnData::F64(x), ColumnData::F64(y)) => x.extend(y),
                (ColumnData::I64(x), ColumnData::I64(y)) => x.extend(y),
                (ColumnData::Str(x), ColumnData::Str(y)) => x.extend(y),
                (ColumnData::Bool(x), ColumnData::Bool(y)) => x.extend(y),
                _ => {
                    return Err(crate::error::Error::invalid(format!(
                        "column '{}' changes type",
                        a.name
                    )))
                }
            }
        }
        if let (Some(g), Some(h)) = (&mut out.geometry, t.geometry) {
            g.extend(h);
        }
    }
    Ok(out)
}
