//! Per-building features: footprint [`geometry`], urban [`context`], [`imagery`] statistics,
//! [`sparse_lidar`] heights and [`neighbours`]' known heights, documented in [`catalog`].
//! Missing values are NaN (written as null), never 0.

pub mod cache;
pub mod catalog;
pub mod context;
pub mod coverage;
pub mod geometry;
pub mod imagery;
pub mod neighbours;
pub mod relative;
pub mod sparse_lidar;
pub mod wide_context;

use std::collections::BTreeMap;
use std::time::Instant;

use geo::{Area, Centroid, MultiPolygon};
use ndarray::Array2;

use crate::config::{CityConfig, LabelConfig};
use crate::crs::{Crs, Transform};
use crate::error::{Error, Result};
use crate::io::footprints::Footprints;
use crate::io::table::{Column, Table};
use crate::label::{Flag, LabelTable};
use crate::progress::Progress;

pub use catalog::{describe, lookup, FeatureDoc, Group};

/// Features (and labels, when the city has them) of one city's buildings, in footprint order.
#[derive(Clone, Debug)]
pub struct CityFeatures {
    /// The city's name from its config.
    pub city: String,
    /// Working CRS of `geometries` and `centroids`.
    pub crs: Crs,
    /// CRS of the footprint file (outputs for users go back to it).
    pub source_crs: Crs,
    /// Building ids, one per row of `values`.
    pub ids: Vec<String>,
    /// Footprints in the working CRS (metres), one per row.
    pub geometries: Vec<MultiPolygon<f64>>,
    /// Footprint centroids `[x, y]` in the working CRS; what spatial blocks and neighbour
    /// searches use.
    pub centroids: Vec<[f64; 2]>,
    /// The city's labels (rows parallel to `ids`); `None` for a region without `[label]`.
    pub labels: Option<LabelTable>,
    /// Column names of `values`.
    pub names: Vec<String>,
    /// Buildings × features; NaN = missing.
    pub values: Array2<f64>,
    /// Seconds spent per feature group (for benchmarks).
    pub timings: BTreeMap<String, f64>,
    /// Ids of footprints without a usable polygon: no features, but a row (flag
    /// `no_geometry`) in every output.
    pub skipped: Vec<String>,
}

/// The first six names, `…` when there are more: a message's list.
pub(crate) fn shown(names: &[&str]) -> String {
    let first = &names[..names.len().min(6)];
    format!(
        "{}{}",
        first.join(", "),
        if names.len() > first.len() {
            ", …"
        } else {
            ""
        }
    )
}

impl CityFeatures {
    /// Buildings with features (those in `skipped` not counted).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the city has no building with a usable polygon.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The values of feature `name` (NaN = missing); `None` when the city lacks that feature.
    pub fn column(&self, name: &str) -> Option<ndarray::ArrayView1<'_, f64>> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|j| self.values.column(j))
    }

    /// [`CityFeatures::column`] as a vector, all NaN when the city lacks the feature.
    pub fn column_or_nan(&self, name: &str) -> Vec<f64> {
        self.column(name)
            .map_or_else(|| vec![f64::NAN; self.len()], |c| c.to_vec())
    }

    /// Buildings × `names`, in that column order, for the buildings `rows` (all when `None`):
    /// the one place a feature matrix is built, for training and predicting alike. An error lists
    /// the features the city lacks.
    pub fn matrix(&self, names: &[String], rows: Option<&[usize]>) -> Result<Array2<f64>> {
        let missing = self.lacks(names);
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "city '{}' lacks {} feature(s): {}",
                self.city,
                missing.len(),
                shown(&missing)
            )));
        }
        let cols: Vec<usize> = names
            .iter()
            .filter_map(|n| self.names.iter().position(|x| x == n))
            .collect();
        Ok(match rows {
            Some(rows) => Array2::from_shape_fn((rows.len(), cols.len()), |(i, j)| {
                self.values[[rows[i], cols[j]]]
            }),
            None => {
                Array2::from_shape_fn((self.len(), cols.len()), |(i, j)| self.values[[i, cols[j]]])
            }
        })
    }

    /// The footprint features alone — shape and surroundings ([`Group::Geometry`],
    /// [`Group::Context`]), what every region has with or without labels, imagery or LiDAR —
    /// as names and buildings × those columns: what anchoring learns from
    /// ([`crate::model::local`]).
    pub fn footprint_features(&self) -> (Vec<String>, Array2<f64>) {
        let names: Vec<String> = self
            .names
            .iter()
            .filter(|n| matches!(describe(n).group, Group::Geometry | Group::Context))
            .cloned()
            .collect();
        let x = self
            .matrix(&names, None)
            .expect("the names are the city's own columns");
        (names, x)
    }

    /// Those of `names` the city has no column of.
    pub fn lacks<'a>(&self, names: &'a [String]) -> Vec<&'a str> {
        names
            .iter()
            .filter(|n| !self.names.contains(n))
            .map(|n| n.as_str())
            .collect()
    }

    /// Labels usable for training: height where the flag is `ok`.
    pub fn ok_labels(&self) -> Vec<Option<f64>> {
        match &self.labels {
            Some(l) => l
                .rows
                .iter()
                .map(|r| (r.flag == Flag::Ok).then_some(r.height_m).flatten())
                .collect(),
            None => vec![None; self.len()],
        }
    }
}

/// Options for [`city_features`].
#[derive(Clone, Copy, Debug)]
pub struct FeatureOptions {
    /// Add leave-one-out known-neighbour heights from the city's own `ok` labels.
    pub known_heights: bool,
    /// Add the district-scale context ([`wide_context`]). Off by default: under
    /// leave-one-city-out it helped the eave cities and harmed the roof-p70 ones (`cv --ablate
    /// wide-context`), and tiled runs' halos do not reach that far.
    pub wide_context: bool,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        FeatureOptions {
            known_heights: true,
            wide_context: false,
        }
    }
}

/// Reads a city (labels included when it has a `[label]`) and computes its features.
///
/// Every group the config allows is computed: geometry and context always, imagery per
/// `[[imagery]]`, sparse LiDAR when `[lidar]` is there but is not the label source, and known
/// neighbour heights when `options.known_heights` and the city has labels. Lengths are metres in
/// the city's working CRS; a value that cannot be computed is NaN.
///
/// ```
/// use roofline::config::CityConfig;
/// use roofline::features::{city_features, FeatureOptions};
/// use roofline::progress::Progress;
///
/// let city = CityConfig::load("data/cities/delft-3dfier.toml")?;
/// let options = FeatureOptions { known_heights: false, ..Default::default() };
/// let f = city_features(&city, options, &Progress::hidden())?;
/// assert_eq!(f.values.nrows(), f.len());
/// assert_eq!(f.values.ncols(), f.names.len());
/// assert_eq!(f.crs.epsg(), Some(28992)); // Dutch RD New: already metric, so it is the working CRS
/// // Footprint areas in m²: all positive, and Delft's median building is a house-sized block.
/// let mut area: Vec<f64> = f.column("area_m2").unwrap().to_vec();
/// assert!(area.iter().all(|a| *a > 0.0));
/// area.sort_by(f64::total_cmp);
/// let median = area[area.len() / 2];
/// assert!((20.0..2000.0).contains(&median), "median area {median} m²");
/// // The LiDAR is the label source here, so it gives labels, not features.
/// assert!(f.column("lidar_points").is_none());
/// assert!(f.ok_labels().iter().flatten().count() > 100);
/// # Ok::<(), roofline::Error>(())
/// ```
pub fn city_features(
    cfg: &CityConfig,
    options: FeatureOptions,
    progress: &Progress,
) -> Result<CityFeatures> {
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    let fp = crate::label::read_city_footprints(cfg)?;
    let labels = match &cfg.label {
        Some(_) => Some(crate::label::label_footprints(cfg, &fp, progress)?),
        None => None,
    };
    timings.insert("read_and_label".into(), t.elapsed().as_secs_f64());
    features_of(cfg, fp, labels, options, timings, progress)
}

/// Features of already-read footprints (a whole city's, or one tiled job's share with its
/// halo) and their labels; `timings` gains one entry per feature group.
pub fn features_of(
    cfg: &CityConfig,
    fp: Footprints,
    labels: Option<LabelTable>,
    options: FeatureOptions,
    mut timings: BTreeMap<String, f64>,
    progress: &Progress,
) -> Result<CityFeatures> {
    let mut blocks: Vec<(Vec<String>, Vec<Vec<f64>>)> = Vec::new();

    let t = Instant::now();
    let rows: Vec<Vec<f64>> = fp
        .geometries
        .iter()
        .map(|g| geometry::geometry_features(g).to_vec())
        .collect();
    blocks.push((
        geometry::NAMES.iter().map(|s| s.to_string()).collect(),
        rows,
    ));
    timings.insert("geometry".into(), t.elapsed().as_secs_f64());

    let centroids = centroids(&fp.geometries);
    let t = Instant::now();
    blocks.push((
        context::names(),
        context::context_features(&fp.geometries, &centroids),
    ));
    if options.wide_context {
        let areas: Vec<f64> = fp.geometries.iter().map(|g| g.unsigned_area()).collect();
        blocks.push((
            wide_context::names(),
            wide_context::wide_context_features(&centroids, &areas),
        ));
    }
    timings.insert("context".into(), t.elapsed().as_secs_f64());

    let t = Instant::now();
    for im in &cfg.imagery {
        blocks.push((
            imagery::names(im),
            imagery::imagery_features(&fp.geometries, &fp.crs, im)?,
        ));
    }
    if !cfg.imagery.is_empty() {
        timings.insert("imagery".into(), t.elapsed().as_secs_f64());
    }

    let lidar_is_label = matches!(cfg.label, Some(LabelConfig::Lidar(_)));
    if let (Some(l), false) = (&cfg.lidar, lidar_is_label) {
        let t = Instant::now();
        let clouds = crate::io::pointcloud::open_point_clouds(l, &fp.crs)?;
        crate::io::pointcloud::check_overlap(
            &clouds,
            crate::io::pointcloud::footprints_bbox(&fp.geometries),
            &cfg.path,
        )?;
        blocks.push((
            sparse_lidar::NAMES.iter().map(|s| s.to_string()).collect(),
            sparse_lidar::sparse_lidar_features(&fp, &clouds, progress)?,
        ));
        timings.insert("sparse_lidar".into(), t.elapsed().as_secs_f64());
    }

    let mut out = assemble(cfg, fp, labels, centroids, blocks, timings)?;
    if options.known_heights && out.labels.is_some() {
        let t = Instant::now();
        let known = neighbours::neighbour_heights(&out.centroids, &out.ok_labels());
        out.append(neighbours::names(), &known);
        out.timings
            .insert("known_heights".into(), t.elapsed().as_secs_f64());
    }
    Ok(out)
}

/// The centroid of each footprint; `[NaN, NaN]` for an empty geometry.
pub fn centroids(geoms: &[MultiPolygon<f64>]) -> Vec<[f64; 2]> {
    geoms
        .iter()
        .map(|g| {
            g.centroid()
                .map_or([f64::NAN, f64::NAN], |c| [c.x(), c.y()])
        })
        .collect()
}

fn assemble(
    cfg: &CityConfig,
    fp: Footprints,
    labels: Option<LabelTable>,
    centroids: Vec<[f64; 2]>,
    blocks: Vec<(Vec<String>, Vec<Vec<f64>>)>,
    timings: BTreeMap<String, f64>,
) -> Result<CityFeatures> {
    let n = fp.len();
    let names: Vec<String> = blocks.iter().flat_map(|(names, _)| names.clone()).collect();
    let mut values = Array2::from_elem((n, names.len()), f64::NAN);
    let mut col = 0;
    for (bn, rows) in &blocks {
        for (i, row) in rows.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                // -0.0 (an empty f64 sum) is written as 0.0, so every format stores the same bits.
                values[[i, col + k]] = if *v == 0.0 {
                    0.0
                } else if v.is_finite() {
                    *v
                } else {
                    f64::NAN
                };
            }
        }
        col += bn.len();
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(*n)) {
        return Err(Error::file(
            &cfg.path,
            format!("feature '{dup}' would appear twice (two imagery entries with the same name?)"),
        ));
    }
    Ok(CityFeatures {
        city: cfg.name.clone(),
        crs: fp.crs,
        source_crs: fp.source_crs,
        ids: fp.ids,
        geometries: fp.geometries,
        centroids,
        labels,
        names,
        values,
        timings,
        skipped: fp.skipped,
    })
}

impl CityFeatures {
    /// The footprints as the label stage reads them (ids and working-CRS geometry), for
    /// re-measuring the city from a point cloud; `path` names the source in messages.
    pub fn footprints(&self, path: &std::path::Path) -> Footprints {
        Footprints {
            path: path.to_path_buf(),
            layer: String::new(),
            source_crs: self.source_crs.clone(),
            crs: self.crs.clone(),
            ids: self.ids.clone(),
            geometries: self.geometries.clone(),
            numeric: Default::default(),
            text: Default::default(),
            passes_filter: vec![true; self.len()],
            repaired: 0,
            skipped: Vec::new(),
            duplicate_ids: 0,
            summary: crate::io::plausible::FootprintSummary::of(&self.geometries),
            partial: false,
        }
    }

    /// Adds (or replaces) feature columns.
    pub fn append(&mut self, names: Vec<String>, rows: &[Vec<f64>]) {
        let n = self.len();
        for (k, name) in names.iter().enumerate() {
            let col: Vec<f64> = (0..n).map(|i| rows[i][k]).collect();
            match self.names.iter().position(|x| x == name) {
                Some(j) => self
                    .values
                    .column_mut(j)
                    .assign(&ndarray::Array1::from(col)),
                None => {
                    self.names.push(name.clone());
                    self.values
                        .push_column(ndarray::ArrayView1::from(&col))
                        .expect("column length equals row count");
                }
            }
        }
    }
}

/// One table for several cities: city, id, label columns, then the features (the union of all
/// cities' features; missing where a city lacks a group). Geometry stays in the cities' CRS when
/// they share one, else it is written in WGS 84 (EPSG:4326).
pub fn features_table(cities: &[CityFeatures]) -> Result<Table> {
    let names = union_of_names(cities);
    let out_crs = Crs::common_or_wgs84(cities.iter().map(|c| &c.crs))?;
    let mut t = Table {
        crs: Some(out_crs.clone()),
        ..Default::default()
    };
    let mut geoms = Vec::new();
    for c in cities {
        geoms.extend(reproject_many(&c.geometries, &c.crs, &out_crs)?);
    }
    t.geometry = Some(geoms);
    push_label_columns(&mut t, cities);
    for n in &names {
        t.push(Column::f64(
            n,
            cities.iter().flat_map(|c| {
                let col = c.column(n);
                (0..c.len()).map(move |i| col.as_ref().map_or(f64::NAN, |v| v[i]))
            }),
        ));
    }
    for c in cities {
        let label = c.labels.as_ref().map(|l| l.definition.name.clone());
        let mut text = vec![
            ("city", c.city.as_str()),
            ("flag", Flag::NoGeometry.as_str()),
        ];
        if let Some(l) = &label {
            text.push(("label", l.as_str()));
        }
        t.append_unusable(&c.skipped, &text);
    }
    t.metadata.insert(
        "roofline".into(),
        features_metadata(cities, &names, &out_crs),
    );
    Ok(t)
}

/// Every city's feature names, first seen first: a city lacking a group still gets its
/// columns (missing).
fn union_of_names(cities: &[CityFeatures]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in cities {
        for n in &c.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

/// City, id, label, heights and flag, so the features table can train without the labels.
fn push_label_columns(t: &mut Table, cities: &[CityFeatures]) {
    let each = |f: &dyn Fn(&CityFeatures, usize) -> Option<String>| -> Vec<Option<String>> {
        cities
            .iter()
            .flat_map(|c| (0..c.len()).map(move |i| f(c, i)))
            .collect()
    };
    let text = |name: &str, data: Vec<Option<String>>| Column {
        name: name.into(),
        data: crate::io::table::ColumnData::Str(data),
    };
    t.push(text("city", each(&|c, _| Some(c.city.clone()))));
    t.push(text("id", each(&|c, i| Some(c.ids[i].clone()))));
    t.push(text(
        "label",
        each(&|c, _| c.labels.as_ref().map(|l| l.definition.name.clone())),
    ));
    let height = |usable: bool| {
        cities.iter().flat_map(move |c| {
            (0..c.len()).map(move |i| {
                let r = &c.labels.as_ref()?.rows[i];
                if usable {
                    r.usable_height()
                } else {
                    r.height_m
                }
            })
        })
    };
    t.push(Column::opt_f64("height_m", height(true)));
    t.push(text(
        "flag",
        each(&|c, i| c.labels.as_ref().map(|l| l.rows[i].flag.to_string())),
    ));
    t.push(Column::opt_f64("height_raw_m", height(false)));
}

/// The table's `roofline` metadata: what each feature means and where each city came from,
/// so the file explains itself.
fn features_metadata(cities: &[CityFeatures], names: &[String], out_crs: &Crs) -> String {
    let docs: Vec<FeatureDoc> = names.iter().map(|n| describe(n)).collect();
    let city_meta: Vec<serde_json::Value> = cities
        .iter()
        .map(|c| {
            serde_json::json!({
                "city": c.city,
                "buildings": c.len() + c.skipped.len(),
                "without_geometry": c.skipped.len(),
                "working_crs": c.crs.label,
                "label": c.labels.as_ref().map(|l| &l.definition),
            })
        })
        .collect();
    serde_json::json!({
        "table": "features",
        "roofline_version": env!("CARGO_PKG_VERSION"),
        "crs": out_crs.label,
        "height_unit": "m",
        "feature_names": names,
        "features": docs,
        "cities": city_meta,
    })
    .to_string()
}

/// Reprojects many footprints between CRSs: one PROJ call per chunk of footprints (a call per
/// footprint costs more than the arithmetic), chunks in parallel, each thread with its own
/// transformation (OSR objects cannot be shared between threads).
pub fn reproject_many(
    geoms: &[MultiPolygon<f64>],
    from: &Crs,
    to: &Crs,
) -> Result<Vec<MultiPolygon<f64>>> {
    use geo::{CoordsIter, MapCoordsInPlace};
    use rayon::prelude::*;
    if from.same_as(to) {
        return Ok(geoms.to_vec());
    }
    const CHUNK: usize = 2048;
    let chunks: Vec<Vec<MultiPolygon<f64>>> = geoms
        .par_chunks(CHUNK)
        .map(|part| {
            let t = Transform::new(from, to)?;
            let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = part
                .iter()
                .flat_map(|g| g.coords_iter())
                .map(|c| (c.x, c.y))
                .unzip();
            t.apply(&mut xs, &mut ys)?;
            let k = std::cell::Cell::new(0usize);
            let mut out = part.to_vec();
            for g in &mut out {
                g.map_coords_in_place(|_| {
                    let i = k.get();
                    k.set(i + 1);
                    geo::Coord { x: xs[i], y: ys[i] }
                });
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    Ok(chunks.into_iter().flatten().collect())
}
