//! City configuration: one TOML file per city (or prediction region) saying where its footprints,
//! point clouds and imagery are and how its height labels are defined. Paths are relative to the
//! config file, so a folder of data plus its configs can be moved as a whole.
//!
//! ```toml
//! name = "amsterdam-centre"
//!
//! [footprints]
//! path = "amsterdam-centre/footprints/bag_pand.geojson"
//! id = "identification"
//!
//! [lidar]
//! paths = ["amsterdam-centre/lidar/*.laz"]
//! crs = "EPSG:28992"          # the LAZ files carry no CRS record
//!
//! [label]
//! source = "lidar"            # roof p70 of class 6 minus ground p5 of classes 2, 9 within 4 m
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crs::Crs;
use crate::error::{AtFile, Error, FileKind, Result};

/// A city or region as written in its TOML file, with paths resolved.
#[derive(Clone, Debug)]
pub struct CityConfig {
    /// The city's name as written (`name = ...`); it names the city in tables, reports and
    /// cross-validation folds, so it should be unique among the cities used together.
    pub name: String,
    /// The config file itself (named in errors).
    pub path: PathBuf,
    /// Overrides the working-CRS rule (footprint CRS if metric, else its UTM zone).
    pub working_crs: Option<Crs>,
    /// `[footprints]`; absent only in configs that are not used for labels or features.
    pub footprints: Option<FootprintsConfig>,
    /// `[lidar]`; needed when `label.source = "lidar"`, optional otherwise.
    pub lidar: Option<LidarConfig>,
    /// `[[imagery]]` rasters, each giving one group of image features; may be empty.
    pub imagery: Vec<ImageryConfig>,
    /// `[label]`: how heights are measured; `None` for a region that is only predicted.
    pub label: Option<LabelConfig>,
}

/// `[footprints]`: the building polygons, one per building, that every table is keyed by.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FootprintsConfig {
    /// Any vector file GDAL reads (GeoJSON, GeoPackage, Shapefile, …), resolved against the
    /// config's folder by [`CityConfig::load`]; or a PostgreSQL/PostGIS connection string
    /// (`PG:dbname=... host=... port=... user=...`, taken as is), read through GDAL's
    /// PostgreSQL driver.
    pub path: PathBuf,
    /// Layer name (for a database: `table` or `schema.table`); the first layer when absent.
    pub layer: Option<String>,
    /// An SQL query whose result are the footprints, instead of a layer (for a database in
    /// PostgreSQL's SQL, e.g. `SELECT * FROM bgt.pand WHERE ... ORDER BY id`; for files in
    /// OGR SQL). Rows are read in the order the query returns them: add an `ORDER BY` for a
    /// stable order.
    pub sql: Option<String>,
    /// Attribute holding the building id (unique, non-null); the feature id (FID) when absent.
    pub id: Option<String>,
    /// CRS to assume when the file has none or a wrong one.
    pub crs: Option<String>,
    /// `where = "..."`: an OGR SQL condition choosing which features are buildings at all
    /// (Lorup's `is_building_31001 = 1` leaves out wind turbines and silos). Features failing it
    /// are not read: no row, no context. Unlike `label.filter`, which keeps a footprint but not
    /// its label.
    #[serde(rename = "where")]
    pub row_filter: Option<String>,
    /// What to do with invalid polygons; repaired by default.
    #[serde(default)]
    pub invalid: InvalidPolicy,
    /// What to do when several features share an id.
    #[serde(default)]
    pub duplicate_ids: DuplicateIds,
}

/// What to do when the id field holds the same value on several features (common in provider
/// files). No policy merges or drops a row: every feature stays a building.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateIds {
    /// Keep going: the second and later features with an id get `<id>~2`, `<id>~3`, …, and a
    /// warning gives the count.
    #[default]
    Suffix,
    /// Identify every footprint by its feature id (FID) instead of the id field, with a warning.
    Fid,
    /// Stop with an error naming the first repeated id and how many features repeat one.
    Error,
}

/// What to do with footprints that are not valid polygons (self-intersections, empty rings).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InvalidPolicy {
    /// Repair with GEOS MakeValid; features that cannot be repaired are skipped with a warning.
    #[default]
    Repair,
    /// Skip invalid features with a warning.
    Skip,
    /// Stop with an error naming the first invalid feature.
    Error,
}

/// `[lidar]`: the point clouds heights are measured from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LidarConfig {
    /// Files or glob patterns (LAS/LAZ).
    pub paths: Vec<String>,
    /// CRS for files without a CRS record (a CRS record in the file wins).
    pub crs: Option<String>,
    /// Metres per z unit, when the file's CRS does not say (e.g. 0.3048 for feet).
    pub z_unit_m: Option<f64>,
    /// Resolved file list (filled in by [`CityConfig::load`]).
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

/// `[[imagery]]`: one multi-band raster (e.g. a Landsat scene) sampled under each footprint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageryConfig {
    /// Any raster GDAL reads; resolved against the config's folder.
    pub path: PathBuf,
    /// A short name used as the feature-name prefix, e.g. `l8`.
    pub name: String,
    /// One name per band, in band order (`red` and `nir` enable NDVI).
    pub bands: Vec<String>,
    /// CRS to assume when the raster has none (a CRS in the file wins).
    pub crs: Option<String>,
    /// Scale for the stored values, replacing the file's own (Landsat surface reflectance
    /// files carry none; theirs is 0.0001).
    pub scale: Option<f64>,
    /// Offset added after scaling, replacing the file's own.
    pub offset: Option<f64>,
    /// A classification raster (e.g. Landsat cfmask) and the values that count as clear.
    pub mask: Option<MaskConfig>,
}

/// A per-pixel quality raster: pixels whose value is not in `clear` (cloud, shadow, snow, …)
/// are left out of the imagery statistics.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// The classification raster, looked up under each imagery pixel's centre (it may have
    /// another grid or CRS); resolved against the config's folder.
    pub path: PathBuf,
    /// Mask values that mark a usable pixel (e.g. `[0]` for Landsat cfmask "clear").
    pub clear: Vec<i64>,
}

/// How a city's height labels are defined.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum LabelConfig {
    /// `source = "lidar"`: measured from the `[lidar]` point clouds.
    Lidar(LidarLabelConfig),
    /// `source = "attribute"`: read from a field of the footprints.
    Attribute(AttributeLabelConfig),
    /// `source = "osm"`: OpenStreetMap `height` and `building:levels` tags of the footprints
    /// (the few buildings a city has heights for; [`crate::label::osm`]).
    Osm(OsmLabelConfig),
    /// `source = "survey"`: a file of surveyed heights joined to the footprints by id or by
    /// location ([`crate::label::survey`]).
    Survey(SurveyLabelConfig),
}

/// Known heights from a file of their own (CSV, GeoPackage, any vector format GDAL reads):
/// joined to the footprints by `id`, else by the footprint each row's point lies in.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SurveyLabelConfig {
    /// Family the heights are taken as (`roof-top`, `roof-p70`, `eave`).
    pub name: String,
    /// The survey file, relative to the config.
    pub path: PathBuf,
    /// Its layer (default: the first).
    pub layer: Option<String>,
    /// The field with the height.
    pub field: String,
    /// The survey's field holding the footprint id: join by id. Without it, by location.
    pub id: Option<String>,
    /// Coordinate columns of a CSV survey (with `crs`).
    pub x: Option<String>,
    /// See `x`.
    pub y: Option<String>,
    /// The survey's CRS when the file has none (a CSV's coordinate columns).
    pub crs: Option<String>,
    /// The unit of `field`; `None` reads metres (and lets the unit check ask about feet).
    pub unit: Option<LengthUnit>,
    /// The heights are right as they are: skips the unit check.
    #[serde(default)]
    pub heights_checked: bool,
}

/// Known heights from OpenStreetMap tags: `height` where tagged, else storeys
/// (`building:levels` + `roof:levels`) × a storey height.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OsmLabelConfig {
    /// Family the heights are taken as: `roof-top` (OSM's `height` is to the top of the roof).
    pub name: String,
    /// Metres per storey; default: the median of height ÷ storeys over the buildings tagged
    /// with both (at least [`crate::label::osm::MIN_PAIRS`]), else
    /// [`crate::label::osm::DEFAULT_STOREY_M`].
    pub storey_m: Option<f64>,
}

/// Height = roof statistic of roof-class points inside the footprint minus ground statistic of
/// ground-class points within `ring_m` of it. Defaults follow 3DBAG (roof p70, ground p5, 4 m).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LidarLabelConfig {
    /// Family name for compatibility checks; `roof-<statistic>` when absent.
    pub name: Option<String>,
    /// Statistic of roof-point elevations inside the footprint (default p70, as 3DBAG).
    #[serde(default = "default_roof")]
    pub roof: Statistic,
    /// ASPRS classes counted as roof (default 6, building); must not be empty.
    #[serde(default = "default_roof_classes")]
    pub roof_classes: Vec<u8>,
    /// Statistic of ground-point elevations around the footprint (default p5).
    #[serde(default = "default_ground")]
    pub ground: Statistic,
    /// ASPRS classes counted as ground (default 2 ground, 9 water); must not be empty.
    #[serde(default = "default_ground_classes")]
    pub ground_classes: Vec<u8>,
    /// Width in metres of the ring around the footprint where ground points are taken
    /// (default 4); must be positive.
    #[serde(default = "default_ring")]
    pub ring_m: f64,
    /// Fewer roof points than this flags a label `sparse`.
    #[serde(default = "default_min_roof_points")]
    pub min_roof_points: usize,
    /// Footprints with less than this share of their area inside the survey's tiles are
    /// flagged `outside_lidar`.
    #[serde(default = "default_min_lidar_share")]
    pub min_lidar_share: f64,
}

fn default_roof() -> Statistic {
    Statistic::Percentile(70.0)
}
fn default_ground() -> Statistic {
    Statistic::Percentile(5.0)
}
fn default_roof_classes() -> Vec<u8> {
    vec![6]
}
fn default_ground_classes() -> Vec<u8> {
    vec![2, 9]
}
fn default_ring() -> f64 {
    4.0
}
fn default_min_roof_points() -> usize {
    5
}
/// A roof percentile stays representative while three quarters of the roof is sampled; below
/// that the label is flagged rather than trusted.
fn default_min_lidar_share() -> f64 {
    0.75
}

impl LidarLabelConfig {
    /// The classes the definition reads: roof classes, then ground classes.
    pub fn point_classes(&self) -> Vec<u8> {
        let mut c = self.roof_classes.clone();
        c.extend(&self.ground_classes);
        c
    }
}

impl Default for LidarLabelConfig {
    fn default() -> Self {
        LidarLabelConfig {
            name: None,
            roof: default_roof(),
            roof_classes: default_roof_classes(),
            ground: default_ground(),
            ground_classes: default_ground_classes(),
            ring_m: default_ring(),
            min_roof_points: default_min_roof_points(),
            min_lidar_share: default_min_lidar_share(),
        }
    }
}

/// Heights given by an attribute of the footprints (e.g. BD TOPO `HAUTEUR`, 3DBAG `h_70p`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeLabelConfig {
    /// Family name, e.g. `roof-p70` or `eave`; labels of different names are never mixed.
    pub name: String,
    /// Field with the height in metres (or the roof altitude when `ground_field` is set).
    pub field: String,
    /// Field with the ground altitude, subtracted from `field`.
    pub ground_field: Option<String>,
    /// OGR SQL condition; footprints failing it keep no label (flag `filtered`).
    pub filter: Option<String>,
    /// The unit `field` and `ground_field` are written in; heights are converted to metres.
    /// `None` (not said) reads metres, but lets the unit check ask where feet are likely.
    #[serde(default)]
    pub unit: Option<LengthUnit>,
    /// The heights are right as they are, though they do not look like metres above ground
    /// ([`crate::label::units`]: e.g. a city of towers); skips that check.
    #[serde(default)]
    pub heights_checked: bool,
}

/// " (in ft)" for a label definition's detail; nothing for metres, said or not.
fn unit_detail(unit: Option<LengthUnit>) -> String {
    match unit.unwrap_or_default() {
        LengthUnit::Metre => String::new(),
        u => format!(" (in {u})"),
    }
}

/// The unit of an attribute's heights (`[label] unit`); every table holds metres.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum LengthUnit {
    /// Metres (the default).
    #[default]
    #[serde(rename = "m")]
    Metre,
    /// International feet (0.3048 m), e.g. Los Angeles County's `HEIGHT`.
    #[serde(rename = "ft")]
    Foot,
    /// Centimetres.
    #[serde(rename = "cm")]
    Centimetre,
    /// Millimetres.
    #[serde(rename = "mm")]
    Millimetre,
}

impl LengthUnit {
    /// Metres per unit.
    pub fn metres(self) -> f64 {
        match self {
            LengthUnit::Metre => 1.0,
            LengthUnit::Foot => 0.3048,
            LengthUnit::Centimetre => 0.01,
            LengthUnit::Millimetre => 0.001,
        }
    }
}

impl fmt::Display for LengthUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LengthUnit::Metre => "m",
            LengthUnit::Foot => "ft",
            LengthUnit::Centimetre => "cm",
            LengthUnit::Millimetre => "mm",
        })
    }
}

/// A statistic of point heights: `p70`, `p5`, `median`, `max`, `min`, `mean`.
///
/// ```
/// use roofline::config::Statistic;
/// let s: Statistic = "p70".parse().unwrap();
/// assert_eq!(s, Statistic::Percentile(70.0));
/// let p70 = s.of_sorted(&[1.0, 2.0, 3.0, 4.0, 10.0]).unwrap();
/// assert!((p70 - 3.8).abs() < 1e-12);
/// assert!("p170".parse::<Statistic>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Statistic {
    /// The p-th percentile (0 to 100), linearly interpolated between sorted values.
    Percentile(f64),
    /// The lowest value.
    Min,
    /// The highest value.
    Max,
    /// The arithmetic mean.
    Mean,
}

impl Statistic {
    /// The same value as [`Statistic::of_sorted`] on the sorted values, bit for bit, by
    /// selection where the statistic allows (percentiles, min, max); reorders `values`.
    pub fn of_unsorted(&self, values: &mut [f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let first_by = |a: &&f64, b: &&f64| a.total_cmp(b);
        Some(match *self {
            Statistic::Percentile(p) => crate::stats::percentile::percentile_select(values, p),
            Statistic::Min => *values.iter().min_by(first_by).expect("non-empty"),
            Statistic::Max => *values.iter().max_by(first_by).expect("non-empty"),
            // A sum depends on the order of its terms: sort, as `of_sorted` sums sorted values.
            Statistic::Mean => {
                values.sort_unstable_by(f64::total_cmp);
                return self.of_sorted(values);
            }
        })
    }

    /// The statistic of sorted values; `None` when there are none.
    pub fn of_sorted(&self, sorted: &[f64]) -> Option<f64> {
        if sorted.is_empty() {
            return None;
        }
        Some(match *self {
            Statistic::Percentile(p) => crate::stats::percentile::percentile_sorted(sorted, p),
            Statistic::Min => sorted[0],
            Statistic::Max => sorted[sorted.len() - 1],
            Statistic::Mean => sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Percentile(p) => write!(f, "p{p}"),
            Statistic::Min => f.write_str("min"),
            Statistic::Max => f.write_str("max"),
            Statistic::Mean => f.write_str("mean"),
        }
    }
}

impl std::str::FromStr for Statistic {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "min" => Ok(Statistic::Min),
            "max" => Ok(Statistic::Max),
            "mean" => Ok(Statistic::Mean),
            "median" => Ok(Statistic::Percentile(50.0)),
            _ => {
                let p: f64 = t
                    .strip_prefix('p')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        format!("unknown statistic '{s}' (use p0..p100, median, min, max, mean)")
                    })?;
                if (0.0..=100.0).contains(&p) {
                    Ok(Statistic::Percentile(p))
                } else {
                    Err(format!("percentile '{s}' is outside p0..p100"))
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Statistic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Statistic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The name (family) and full description of a label definition. Two cities can share a model
/// or a cross-validation only when their names agree.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LabelDefinition {
    /// The family, e.g. `roof-p70`: the only part compared between cities and models.
    pub name: String,
    /// Human-readable description (statistics, classes, ring or field), for reports.
    pub detail: String,
}

impl LabelConfig {
    /// The definition's family name and description; LiDAR labels without a `name` are
    /// `roof-<statistic>`.
    pub fn definition(&self) -> LabelDefinition {
        match self {
            LabelConfig::Lidar(l) => LabelDefinition {
                name: l.name.clone().unwrap_or_else(|| format!("roof-{}", l.roof)),
                detail: format!(
                    "LiDAR: roof {} of classes {:?} inside the footprint minus ground {} of classes {:?} within {} m",
                    l.roof, l.roof_classes, l.ground, l.ground_classes, l.ring_m
                ),
            },
            LabelConfig::Attribute(a) => LabelDefinition {
                name: a.name.clone(),
                detail: format!(
                    "attribute {}{}{}{}",
                    a.field,
                    a.ground_field.as_ref().map(|g| format!(" minus {g}")).unwrap_or_default(),
                    unit_detail(a.unit),
                    a.filter.as_ref().map(|f| format!(" where {f}")).unwrap_or_default()
                ),
            },
            LabelConfig::Osm(o) => LabelDefinition {
                name: o.name.clone(),
                detail: format!(
                    "OpenStreetMap height tags, else storeys × {}",
                    o.storey_m
                        .map_or("a storey height estimated on the buildings tagged with both".into(), |m| format!("{m} m"))
                ),
            },
            LabelConfig::Survey(v) => LabelDefinition {
                name: v.name.clone(),
                detail: format!(
                    "survey {} field {}{}, joined by {}",
                    v.path.display(),
                    v.field,
                    unit_detail(v.unit),
                    v.id.as_ref()
                        .map_or("location".to_string(), |id| format!("id ({id})"))
                ),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    working_crs: Option<String>,
    footprints: Option<FootprintsConfig>,
    lidar: Option<LidarConfig>,
    #[serde(default)]
    imagery: Vec<ImageryConfig>,
    label: Option<RawLabel>,
}

/// `[label]` as written: one flat table, so an unknown key or a wrong type is reported with its
/// own name and line (serde's internally tagged enums buffer the table and lose both).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    source: String,
    name: Option<String>,
    roof: Option<Statistic>,
    roof_classes: Option<Vec<u8>>,
    ground: Option<Statistic>,
    ground_classes: Option<Vec<u8>>,
    ring_m: Option<f64>,
    min_roof_points: Option<usize>,
    min_lidar_share: Option<f64>,
    field: Option<String>,
    ground_field: Option<String>,
    filter: Option<String>,
    unit: Option<LengthUnit>,
    heights_checked: Option<bool>,
    storey_m: Option<f64>,
    path: Option<PathBuf>,
    layer: Option<String>,
    id: Option<String>,
    x: Option<String>,
    y: Option<String>,
    crs: Option<String>,
}

impl RawLabel {
    fn into_label(self) -> std::result::Result<LabelConfig, String> {
        let lidar_keys = [
            ("roof", self.roof.is_some()),
            ("roof_classes", self.roof_classes.is_some()),
            ("ground", self.ground.is_some()),
            ("ground_classes", self.ground_classes.is_some()),
            ("ring_m", self.ring_m.is_some()),
            ("min_roof_points", self.min_roof_points.is_some()),
            ("min_lidar_share", self.min_lidar_share.is_some()),
        ];
        let attribute_keys = [
            ("field", self.field.is_some()),
            ("ground_field", self.ground_field.is_some()),
            ("filter", self.filter.is_some()),
            ("unit", self.unit.is_some()),
            ("heights_checked", self.heights_checked.is_some()),
        ];
        let osm_keys = [("storey_m", self.storey_m.is_some())];
        let survey_keys = [
            ("path", self.path.is_some()),
            ("layer", self.layer.is_some()),
            ("id", self.id.is_some()),
            ("x", self.x.is_some()),
            ("y", self.y.is_some()),
            ("crs", self.crs.is_some()),
        ];
        let stray = |keys: &[(&str, bool)], source: &str| match keys.iter().find(|(_, set)| *set) {
            Some((k, _)) => Err(format!(
                "label.{k} does not apply to label.source = \"{source}\""
            )),
            None => Ok(()),
        };
        match self.source.as_str() {
            "lidar" => {
                stray(&attribute_keys, "lidar")?;
                stray(&osm_keys, "lidar")?;
                stray(&survey_keys, "lidar")?;
                let d = LidarLabelConfig::default();
                Ok(LabelConfig::Lidar(LidarLabelConfig {
                    name: self.name,
                    roof: self.roof.unwrap_or(d.roof),
                    roof_classes: self.roof_classes.unwrap_or(d.roof_classes),
                    ground: self.ground.unwrap_or(d.ground),
                    ground_classes: self.ground_classes.unwrap_or(d.ground_classes),
                    ring_m: self.ring_m.unwrap_or(d.ring_m),
                    min_roof_points: self.min_roof_points.unwrap_or(d.min_roof_points),
                    min_lidar_share: self.min_lidar_share.unwrap_or(d.min_lidar_share),
                }))
            }
            "attribute" => {
                stray(&lidar_keys, "attribute")?;
                stray(&osm_keys, "attribute")?;
                stray(&survey_keys, "attribute")?;
                Ok(LabelConfig::Attribute(AttributeLabelConfig {
                    name: self
                        .name
                        .ok_or("label.source = \"attribute\" needs label.name")?,
                    field: self
                        .field
                        .ok_or("label.source = \"attribute\" needs label.field")?,
                    ground_field: self.ground_field,
                    filter: self.filter,
                    unit: self.unit,
                    heights_checked: self.heights_checked.unwrap_or(false),
                }))
            }
            "osm" => {
                stray(&lidar_keys, "osm")?;
                stray(&attribute_keys, "osm")?;
                stray(&survey_keys, "osm")?;
                if let Some(m) = self.storey_m {
                    if !(m.is_finite() && (1.5..=10.0).contains(&m)) {
                        return Err(format!(
                            "label.storey_m = {m}: a storey is 1.5–10 m (3 m is typical)"
                        ));
                    }
                }
                Ok(LabelConfig::Osm(OsmLabelConfig {
                    name: self.name.unwrap_or_else(|| "roof-top".into()),
                    storey_m: self.storey_m,
                }))
            }
            "survey" => {
                stray(&lidar_keys, "survey")?;
                stray(&osm_keys, "survey")?;
                stray(
                    &[
                        ("ground_field", self.ground_field.is_some()),
                        ("filter", self.filter.is_some()),
                    ],
                    "survey",
                )?;
                Ok(LabelConfig::Survey(SurveyLabelConfig {
                    name: self
                        .name
                        .ok_or("label.source = \"survey\" needs label.name")?,
                    path: self
                        .path
                        .ok_or("label.source = \"survey\" needs label.path (the survey file)")?,
                    layer: self.layer,
                    field: self
                        .field
                        .ok_or("label.source = \"survey\" needs label.field (the height)")?,
                    id: self.id,
                    x: self.x,
                    y: self.y,
                    crs: self.crs,
                    unit: self.unit,
                    heights_checked: self.heights_checked.unwrap_or(false),
                }))
            }
            other => Err(format!(
                "label.source = \"{other}\" is unknown (use \"lidar\", \"attribute\", \"osm\" or \"survey\")"
            )),
        }
    }
}

/// Parses a config's text; an error names the line and the key (`lidar.z_unit_m`) at fault.
/// The raw config, or the key at fault (where serde knows it) and a one-line message.
fn parse_raw(text: &str) -> std::result::Result<RawConfig, (Option<String>, String)> {
    let de =
        toml::Deserializer::parse(text).map_err(|e| (None, describe_toml_error(text, &e, "")))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = (key != ".").then_some(key);
        let msg = describe_toml_error(text, e.inner(), key.as_deref().unwrap_or(""));
        (key, msg)
    })
}

fn describe_toml_error(text: &str, e: &toml::de::Error, key: &str) -> String {
    let line = e
        .span()
        .map(|s| {
            format!(
                "line {}: ",
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            )
        })
        .unwrap_or_default();
    let key = if key.is_empty() {
        String::new()
    } else {
        format!("key '{key}': ")
    };
    format!("{line}{key}{}", e.message().trim())
}

impl CityConfig {
    /// Reads and checks a config; every referenced file must exist and every glob must match.
    pub fn load(path: impl AsRef<Path>) -> Result<CityConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).at_kind(FileKind::Config, path)?;
        CityConfig::from_toml(&text, path, path.parent().unwrap_or(Path::new(".")))
    }

    /// A config from its text, as [`CityConfig::load`] checks it: `path` names it in errors and
    /// relative paths in it are in `dir` (a config built in memory, e.g. by the Python package,
    /// whose footprints may be a GDAL `/vsimem/` file).
    pub fn from_toml(text: &str, path: &Path, dir: &Path) -> Result<CityConfig> {
        let raw = parse_raw(text).map_err(|(key, msg)| match key {
            Some(key) => Error::config_key(path, &key, msg),
            None => Error::of(FileKind::Config, path, msg),
        })?;
        let mut label = raw
            .label
            .map(RawLabel::into_label)
            .transpose()
            .map_err(|msg| Error::of(FileKind::Config, path, msg))?;
        let files = ConfigFiles { path, dir };
        if let Some(LabelConfig::Survey(s)) = &mut label {
            if !is_in_memory(&s.path) {
                s.path = files.resolve(&s.path)?;
            }
        }
        let working_crs = raw
            .working_crs
            .as_deref()
            .map(Crs::from_user)
            .transpose()
            .at_kind(FileKind::Config, path)?;
        let footprints = raw.footprints.map(|f| files.footprints(f)).transpose()?;
        let lidar = raw.lidar.map(|l| files.lidar(l)).transpose()?;
        let mut imagery = raw.imagery;
        for im in &mut imagery {
            im.path = files.resolve(&im.path)?;
            if let Some(m) = &mut im.mask {
                m.path = files.resolve(&m.path)?;
            }
        }
        check_label(path, label.as_ref(), lidar.is_some(), footprints.is_some())?;
        Ok(CityConfig {
            name: raw.name,
            path: path.to_path_buf(),
            working_crs,
            footprints,
            lidar,
            imagery,
            label,
        })
    }

    /// The footprints section, or an error saying this config has none.
    pub fn require_footprints(&self) -> Result<&FootprintsConfig> {
        self.footprints
            .as_ref()
            .ok_or_else(|| Error::of(FileKind::Config, &self.path, "has no [footprints] section"))
    }
}

/// A config's file and folder: paths in it are relative to the folder, errors name the file.
struct ConfigFiles<'a> {
    path: &'a Path,
    dir: &'a Path,
}

impl ConfigFiles<'_> {
    /// `p` relative to the config's folder; an error when nothing is there, so a typo fails
    /// at load rather than hours into a run.
    fn resolve(&self, p: &Path) -> Result<PathBuf> {
        let full = self.dir.join(p);
        if full.exists() {
            Ok(full)
        } else {
            Err(Error::of(
                FileKind::Config,
                self.path,
                format!("{} does not exist", full.display()),
            ))
        }
    }

    /// The `[footprints]` section with its path resolved (a database connection string is
    /// not a path relative to the config).
    fn footprints(&self, mut f: FootprintsConfig) -> Result<FootprintsConfig> {
        if f.sql.is_some() && f.layer.is_some() {
            return Err(Error::config_key(
                self.path,
                "footprints.sql",
                "give footprints.layer or footprints.sql, not both",
            ));
        }
        if !is_postgis(&f.path) && !is_in_memory(&f.path) {
            f.path = self.resolve(&f.path)?;
        }
        Ok(f)
    }

    /// The `[lidar]` section with its globs expanded and its z unit checked.
    fn lidar(&self, mut l: LidarConfig) -> Result<LidarConfig> {
        l.files = expand_globs(self.path, self.dir, &l.paths)?;
        if let Some(z) = l.z_unit_m {
            if !(z.is_finite() && z > 0.0) {
                return Err(Error::config_key(
                    self.path,
                    "lidar.z_unit_m",
                    format!("lidar.z_unit_m must be positive, got {z}"),
                ));
            }
        }
        Ok(l)
    }
}

/// A `[label]` needs footprints to label, and a LiDAR label needs points and classes: refused
/// at load, before any file is read.
fn check_label(
    path: &Path,
    label: Option<&LabelConfig>,
    has_lidar: bool,
    has_footprints: bool,
) -> Result<()> {
    if let Some(LabelConfig::Lidar(l)) = label {
        if l.roof_classes.is_empty() || l.ground_classes.is_empty() {
            return Err(Error::config_key(
                path,
                "label.roof_classes",
                "label.roof_classes and label.ground_classes must not be empty",
            ));
        }
        if !(l.ring_m.is_finite() && l.ring_m > 0.0) {
            return Err(Error::config_key(
                path,
                "label.ring_m",
                format!("label.ring_m must be positive, got {}", l.ring_m),
            ));
        }
        if !has_lidar {
            return Err(Error::of(
                FileKind::Config,
                path,
                "label.source = \"lidar\" needs a [lidar] section",
            ));
        }
    }
    if label.is_some() && !has_footprints {
        return Err(Error::of(
            FileKind::Config,
            path,
            "a [label] needs a [footprints] section",
        ));
    }
    Ok(())
}

fn expand_globs(config: &Path, dir: &Path, patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for pattern in patterns {
        let full = dir.join(pattern);
        let full_str = full.to_string_lossy();
        let matched: Vec<PathBuf> = glob::glob(&full_str)
            .map_err(|e| {
                Error::of(
                    FileKind::Config,
                    config,
                    format!("bad glob '{pattern}': {e}"),
                )
            })?
            .filter_map(|p| p.ok())
            .filter(|p| p.is_file())
            .collect();
        if matched.is_empty() {
            return Err(Error::of(
                FileKind::Config,
                config,
                format!("{full_str} does not exist (or matches no file)"),
            ));
        }
        files.extend(matched);
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// True when `path` is a file in GDAL's memory (`/vsimem/...`): footprints or known heights
/// handed over in memory, which GDAL reads like a file and no file system holds.
pub fn is_in_memory(path: &Path) -> bool {
    path.starts_with("/vsimem")
}

/// True when `path` is a GDAL PostgreSQL connection string (`PG:...`, any case) rather than a
/// file.
pub fn is_postgis(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("PG:")))
}
