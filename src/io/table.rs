//! A typed, columnar table with an optional geometry column and its CRS: what every stage hands
//! to the writers (labels, features, predictions). Missing values are real nulls, never 0.

use std::collections::BTreeMap;

use geo::MultiPolygon;

use crate::crs::Crs;

#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    F64(Vec<Option<f64>>),
    I64(Vec<Option<i64>>),
    Str(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::F64(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::Str(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
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

    pub fn i64(name: &str, values: impl IntoIterator<Item = i64>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::I64(values.into_iter().map(Some).collect()),
        }
    }

    pub fn str<S: Into<String>>(name: &str, values: impl IntoIterator<Item = S>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::Str(values.into_iter().map(|s| Some(s.into())).collect()),
        }
    }

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

#[derive(Clone, Debug, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    /// One geometry per row, in `crs`.
    pub geometry: Option<Vec<MultiPolygon<f64>>>,
    pub crs: Option<Crs>,
    /// Key/value metadata (JSON text), kept in Parquet footers and GeoPackage metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Table {
    pub fn n_rows(&self) -> usize {
        self.columns
            .first()
            .map(|c| c.data.len())
            .or_else(|| self.geometry.as_ref().map(|g| g.len()))
            .unwrap_or(0)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

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
