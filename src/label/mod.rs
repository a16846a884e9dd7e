//! Height labels: measured from LiDAR ([`lidar`]; a survey degraded to sparse LiDAR by
//! [`sparsify`]) or taken from a footprint attribute ([`attribute`]), OpenStreetMap tags
//! ([`osm`]) or a survey ([`survey`]), with a quality flag per building. Buildings without a usable label stay in
//! the table with their flag; nothing is dropped.

pub mod attribute;
pub mod lidar;
pub mod osm;
pub mod sparse;
pub mod sparsify;
pub mod survey;
pub mod units;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{CityConfig, LabelConfig, LabelDefinition};
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::io::footprints::{read_footprints, Footprints, Request};
use crate::io::table::{Column, Table};
use crate::progress::Progress;

/// Quality of one building's label. Only `ok` labels are used for training and scoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// A usable height: the only labels that train and score models.
    Ok,
    /// Fewer roof points than the configured minimum.
    Sparse,
    /// No roof-class point inside the footprint (LiDAR labels).
    NoRoofPoints,
    /// Roof points but no ground-class point within the ring (LiDAR labels).
    NoGround,
    /// Less than the configured share of the footprint lies inside the survey's tiles.
    OutsideLidar,
    /// The label attribute is null.
    Missing,
    /// The label attribute is zero or negative.
    NotPositive,
    /// The footprint fails the label filter.
    Filtered,
    /// Higher than [`MAX_PLAUSIBLE_M`]: a unit or data error, not a building.
    Implausible,
    /// The footprint has no usable polygon (empty, zero-area or irreparable): it stays in
    /// every output, without measurement, features or prediction.
    NoGeometry,
}

/// No building is taller than this (the tallest is 828 m); a label above it is flagged
/// `implausible` and kept out of training.
pub const MAX_PLAUSIBLE_M: f64 = 1000.0;

impl Flag {
    /// The snake_case name written in the `flag` column (and accepted back from it).
    pub fn as_str(&self) -> &'static str {
        match self {
            Flag::Ok => "ok",
            Flag::Sparse => "sparse",
            Flag::NoRoofPoints => "no_roof_points",
            Flag::NoGround => "no_ground",
            Flag::OutsideLidar => "outside_lidar",
            Flag::Missing => "missing",
            Flag::NotPositive => "not_positive",
            Flag::Filtered => "filtered",
            Flag::Implausible => "implausible",
            Flag::NoGeometry => "no_geometry",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What LiDAR says about one building (heights in metres, in the survey's vertical datum).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LidarStats {
    /// The configured roof statistic.
    pub roof_m: Option<f64>,
    /// The configured ground statistic; `None` without ground points in the ring.
    pub ground_m: Option<f64>,
    /// Median roof-point elevation; `None` without roof points.
    pub roof_p50_m: Option<f64>,
    /// 90th percentile of roof-point elevations; `None` without roof points.
    pub roof_p90_m: Option<f64>,
    /// Highest roof point; `None` without roof points.
    pub roof_max_m: Option<f64>,
    /// Roof-class points inside the footprint.
    pub roof_points: u64,
    /// Roof points per m² of footprint.
    pub roof_density: f64,
    /// Share of the footprint's 1 m cells holding at least one roof point.
    pub coverage: f64,
    /// Ground-class points within the ring around the footprint.
    pub ground_points: u64,
    /// Share of the footprint's area inside the survey's tile extents.
    pub lidar_share: f64,
}

/// One building's label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelRow {
    /// The footprint's id ([`Footprints::ids`]).
    pub id: String,
    /// The measured (or attribute) height in metres whatever the flag; `None` when it could not
    /// be computed. Use [`LabelRow::usable_height`] for training or scoring.
    pub height_m: Option<f64>,
    /// Whether `height_m` can be trusted, and why not.
    pub flag: Flag,
    /// The LiDAR statistics behind a LiDAR label; `None` for attribute labels.
    pub lidar: Option<LidarStats>,
    /// Where the height comes from.
    #[serde(default)]
    pub origin: Origin,
}

/// Where a known height comes from: a measurement (LiDAR, a survey attribute) or an
/// OpenStreetMap tag, which outputs keep apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Measured: LiDAR, or an attribute of measured heights.
    #[default]
    Measured,
    /// An OpenStreetMap `height` tag.
    OsmHeight,
    /// OpenStreetMap storeys × a storey height ([`osm`]).
    OsmLevels,
    /// A file of surveyed heights ([`survey`]).
    Survey,
}

impl Origin {
    /// The snake_case name outputs write (`labels`' `origin`, `predict`'s `source`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::Measured => "measured",
            Origin::OsmHeight => "osm_height",
            Origin::OsmLevels => "osm_levels",
            Origin::Survey => "survey",
        }
    }
}

impl LabelRow {
    /// The height only where the flag is `ok`: what tables call `height_m`, so that filtering
    /// on "height not null" never picks up a sparse or partly covered measurement (kept in
    /// `height_raw_m`).
    pub fn usable_height(&self) -> Option<f64> {
        self.height_m.filter(|_| self.flag == Flag::Ok)
    }
}

/// Labels of one city, in footprint order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelTable {
    /// The city's name from its config.
    pub city: String,
    /// Which label family the heights belong to (e.g. `roof-p70`).
    pub definition: LabelDefinition,
    /// CRS of the footprints the labels belong to.
    pub crs: Crs,
    /// One row per footprint, parallel to the footprints' ids.
    pub rows: Vec<LabelRow>,
    /// Points read from LiDAR (0 for attribute labels).
    pub points_read: u64,
}

impl LabelTable {
    /// How many buildings carry each flag (flags with no building are absent).
    pub fn flag_counts(&self) -> BTreeMap<Flag, usize> {
        let mut m = BTreeMap::new();
        for r in &self.rows {
            *m.entry(r.flag).or_default() += 1;
        }
        m
    }

    /// Heights of `ok` labels.
    pub fn ok_heights(&self) -> Vec<f64> {
        self.rows
            .iter()
            .filter(|r| r.flag == Flag::Ok)
            .filter_map(|r| r.height_m)
            .collect()
    }

    /// The table for writing; geometry from `footprints` when given (same order).
    pub fn to_table(&self, footprints: Option<&Footprints>) -> Table {
        let rows = &self.rows;
        let mut t = Table {
            crs: Some(self.crs.clone()),
            geometry: footprints.map(|f| f.geometries.clone()),
            ..Default::default()
        };
        t.push(Column::str("id", rows.iter().map(|r| r.id.clone())));
        t.push(Column::str("city", rows.iter().map(|_| self.city.clone())));
        t.push(Column::opt_f64(
            "height_m",
            rows.iter().map(LabelRow::usable_height),
        ));
        t.push(Column::str("flag", rows.iter().map(|r| r.flag.as_str())));
        t.push(Column::opt_f64(
            "height_raw_m",
            rows.iter().map(|r| r.height_m),
        ));
        t.push(Column::str(
            "label",
            rows.iter().map(|_| self.definition.name.clone()),
        ));
        t.push(Column::str(
            "label_detail",
            rows.iter().map(|_| self.definition.detail.clone()),
        ));
        if rows.iter().any(|r| r.origin != Origin::Measured) {
            // Tagged heights say where each came from: a `height` tag or storeys converted.
            t.push(Column::str(
                "origin",
                rows.iter().map(|r| match r.flag {
                    Flag::Ok => r.origin.as_str(),
                    _ => "",
                }),
            ));
        }
        if rows.iter().any(|r| r.lidar.is_some()) {
            let l = |f: fn(&LidarStats) -> Option<f64>| {
                rows.iter().map(move |r| r.lidar.as_ref().and_then(f))
            };
            t.push(Column::opt_f64("roof_m", l(|s| s.roof_m)));
            t.push(Column::opt_f64("ground_m", l(|s| s.ground_m)));
            t.push(Column::opt_f64("roof_p50_m", l(|s| s.roof_p50_m)));
            t.push(Column::opt_f64("roof_p90_m", l(|s| s.roof_p90_m)));
            t.push(Column::opt_f64("roof_max_m", l(|s| s.roof_max_m)));
            t.push(Column::i64(
                "roof_points",
                rows.iter()
                    .map(|r| r.lidar.as_ref().map_or(0, |s| s.roof_points as i64)),
            ));
            t.push(Column::opt_f64("roof_density", l(|s| Some(s.roof_density))));
            t.push(Column::opt_f64("coverage", l(|s| Some(s.coverage))));
            t.push(Column::i64(
                "ground_points",
                rows.iter()
                    .map(|r| r.lidar.as_ref().map_or(0, |s| s.ground_points as i64)),
            ));
            t.push(Column::opt_f64("lidar_share", l(|s| Some(s.lidar_share))));
        }
        t.metadata.insert(
            "roofline".into(),
            serde_json::json!({
                "table": "labels",
                "city": self.city,
                "label": self.definition,
                "crs": self.crs.label,
                "height_unit": "m",
                "columns": {
                    "height_m": "the label where flag is ok, else null",
                    "height_raw_m": "the measured (or attribute) value whatever the flag; not for use where flag is not ok",
                },
                "roofline_version": env!("CARGO_PKG_VERSION"),
            })
            .to_string(),
        );
        t
    }
}

/// The labels table `roofline labels` writes: one row per footprint, those without a usable
/// polygon last (flag `no_geometry`, empty geometry).
pub fn labels_output(labels: &LabelTable, footprints: &Footprints) -> Table {
    let mut table = labels.to_table(Some(footprints));
    table.append_unusable(
        &footprints.skipped,
        &[
            ("city", labels.city.as_str()),
            ("flag", Flag::NoGeometry.as_str()),
            ("label", labels.definition.name.as_str()),
            ("label_detail", labels.definition.detail.as_str()),
        ],
    );
    table
}

/// Reads a city's footprints and measures (or reads) its labels.
///
/// The footprints come back too (same order as the label rows) since every later stage needs
/// both. Labels that cannot be building heights (zero, negative, above [`MAX_PLAUSIBLE_M`]) are
/// flagged, never dropped. An error when the config has no `[label]` or `[footprints]`, or
/// when the point clouds miss the footprints entirely (usually a wrong CRS).
///
/// ```
/// use roofline::config::CityConfig;
/// use roofline::label::{label_city, Flag};
/// use roofline::progress::Progress;
///
/// // Delft, 3dfier's test area: BGT footprints and AHN3 LiDAR, 3DBAG's roof-p70 definition.
/// let city = CityConfig::load("data/cities/delft-3dfier.toml")?;
/// let (footprints, labels) = label_city(&city, &Progress::hidden())?;
/// assert_eq!(labels.rows.len(), footprints.len());
/// assert_eq!(labels.definition.name, "roof-p70");
/// let ok = labels.flag_counts().get(&Flag::Ok).copied().unwrap_or(0);
/// assert!(ok > 100, "{ok} buildings with an ok label");
/// // Heights are in metres: Delft's houses and blocks are a few metres to a few tens of metres.
/// let mut heights = labels.ok_heights();
/// heights.sort_by(f64::total_cmp);
/// let median = heights[heights.len() / 2];
/// assert!((3.0..30.0).contains(&median), "median height {median} m");
/// # Ok::<(), roofline::Error>(())
/// ```
pub fn label_city(city: &CityConfig, progress: &Progress) -> Result<(Footprints, LabelTable)> {
    let footprints = read_city_footprints(city)?;
    let table = label_footprints(city, &footprints, progress)?;
    Ok((footprints, table))
}

/// What a city's labels need read along with its footprints (an attribute and its filter).
pub fn footprint_request(city: &CityConfig) -> Request {
    match &city.label {
        Some(LabelConfig::Attribute(a)) => Request {
            numeric: std::iter::once(a.field.clone())
                .chain(a.ground_field.clone())
                .collect(),
            filter: a.filter.clone(),
            text: Vec::new(),
        },
        Some(LabelConfig::Osm(_)) => Request {
            text: osm::TAGS
                .iter()
                .chain(std::iter::once(&osm::OTHER_TAGS))
                .map(|t| t.to_string())
                .collect(),
            ..Request::default()
        },
        _ => Request::default(),
    }
}

/// A city's footprints as every stage reads them (with what its labels need).
pub fn read_city_footprints(city: &CityConfig) -> Result<Footprints> {
    read_footprints(
        city.require_footprints()?,
        city.working_crs.as_ref(),
        &footprint_request(city),
    )
}

/// Labels of already-read footprints (all of a city's, or one tiled job's share of them, read
/// with [`footprint_request`]); LiDAR labels read the config's point clouds.
pub fn label_footprints(
    city: &CityConfig,
    footprints: &Footprints,
    progress: &Progress,
) -> Result<LabelTable> {
    let label = city
        .label
        .as_ref()
        .ok_or_else(|| Error::file(&city.path, "has no [label] section"))?;
    // What became of known heights from tags or a survey: said once they pass the unit check.
    let mut note = None;
    let (rows, points_read) = match label {
        LabelConfig::Attribute(a) => (attribute::attribute_labels(footprints, a), 0),
        LabelConfig::Osm(o) => {
            let (rows, summary) = osm::osm_labels(footprints, o);
            note = Some(summary.describe(&footprints.path));
            (rows, 0)
        }
        LabelConfig::Survey(v) => {
            let (rows, summary) = survey::survey_labels(footprints, v)?;
            note = Some(summary.describe(&v.path));
            (rows, 0)
        }
        LabelConfig::Lidar(def) => {
            let lidar = city
                .lidar
                .as_ref()
                .expect("checked when the config was loaded");
            let clouds = crate::io::pointcloud::open_point_clouds(lidar, &footprints.crs)?;
            crate::io::pointcloud::check_overlap(
                &clouds,
                crate::io::pointcloud::footprints_bbox(&footprints.geometries),
                &city.path,
            )?;
            let out = lidar::lidar_labels(footprints, &clouds, def, progress)?;
            (out.rows, out.points_read)
        }
    };
    let said = match label {
        LabelConfig::Attribute(a) => Some(units::Said::from(a)),
        LabelConfig::Survey(v) => Some(units::Said::from(v)),
        _ => None,
    };
    if let Some(said) = said {
        let heights: Vec<f64> = rows
            .iter()
            .filter(|r| r.flag == Flag::Ok)
            .filter_map(|r| r.height_m)
            .collect();
        if let Some(msg) = units::check(&heights, said, &provenance(footprints)) {
            return Err(Error::config_key(&city.path, "label.unit", msg));
        }
    }
    if let Some(note) = note {
        tracing::warn!("{note}");
    }
    let mut rows = rows;
    flag_implausible(&mut rows, &city.path);
    let table = LabelTable {
        city: city.name.clone(),
        definition: label.definition(),
        crs: footprints.crs.clone(),
        rows,
        points_read,
    };
    Ok(table)
}

/// Where a city's footprints lie and what unit their file measures in, for the feet question.
fn provenance(fp: &Footprints) -> units::Provenance {
    let e = fp.summary.extent;
    let lon_lat = crate::crs::Crs::from_epsg(4326)
        .and_then(|wgs84| crate::crs::Transform::new(&fp.crs, &wgs84))
        .and_then(|t| {
            let (mut x, mut y) = ([(e[0] + e[2]) / 2.0], [(e[1] + e[3]) / 2.0]);
            t.apply(&mut x, &mut y)?;
            Ok((x[0], y[0]))
        })
        .ok()
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    units::Provenance {
        lon_lat,
        crs_label: fp.source_crs.label.clone(),
        crs_unit_m: fp.source_crs.linear_unit_m(),
    }
}

/// Flags `ok` labels that cannot be building heights (zero or negative: roof below ground;
/// above [`MAX_PLAUSIBLE_M`]) so they never reach training, and says how many there were.
fn flag_implausible(rows: &mut [LabelRow], config: &std::path::Path) {
    let mut first: Option<String> = None;
    let mut n = 0;
    for r in rows.iter_mut().filter(|r| r.flag == Flag::Ok) {
        let flag = match r.height_m {
            Some(h) if h <= 0.0 => Flag::NotPositive,
            Some(h) if h > MAX_PLAUSIBLE_M => Flag::Implausible,
            Some(_) => continue,
            None => Flag::Missing,
        };
        r.flag = flag;
        n += 1;
        first.get_or_insert_with(|| format!("{} = {:?} m", r.id, r.height_m));
    }
    if n > 0 {
        tracing::warn!(
            "{}: {n} labels are not plausible building heights (zero, negative or above {MAX_PLAUSIBLE_M} m; first: {}); flagged, not used for training",
            config.display(),
            first.unwrap_or_default()
        );
    }
}
