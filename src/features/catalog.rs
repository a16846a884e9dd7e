//! The one place where every feature is documented (name, unit, meaning): written into output
//! metadata and model files and rendered by reports.

use serde::{Deserialize, Serialize};

/// The feature groups, one per source of evidence; reports and importances are summed per
/// group, and models trained without known heights leave [`Group::KnownHeights`] out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Footprint shape alone ([`super::geometry`]).
    Geometry,
    /// Neighbouring footprints ([`super::context`]).
    Context,
    /// Raster statistics under and around the footprint ([`super::imagery`]).
    Imagery,
    /// Whatever points a thin survey puts on the building ([`super::sparse_lidar`]).
    SparseLidar,
    /// Heights of labelled neighbours ([`super::neighbours`]); only where a city has labels.
    KnownHeights,
    /// A name the catalogue does not know ([`describe`] of a column roofline did not compute;
    /// [`lookup`] says `None` instead).
    Undocumented,
}

impl Group {
    /// The snake_case name used in metadata, reports and model files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Group::Geometry => "geometry",
            Group::Context => "context",
            Group::Imagery => "imagery",
            Group::SparseLidar => "sparse_lidar",
            Group::KnownHeights => "known_heights",
            Group::Undocumented => "undocumented",
        }
    }
}

/// A feature's documentation, as written into output metadata and model files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureDoc {
    /// The column name.
    pub name: String,
    /// Which group the feature belongs to.
    pub group: Group,
    /// Unit as text: `m`, `m²`, `count`, `1` for ratios, ….
    pub unit: String,
    /// One line saying what the value measures.
    pub meaning: String,
}

fn doc(name: &str, group: Group, unit: &str, meaning: impl Into<String>) -> FeatureDoc {
    FeatureDoc {
        name: name.into(),
        group,
        unit: unit.into(),
        meaning: meaning.into(),
    }
}

/// The features with fixed names: name, group, unit, meaning.
#[rustfmt::skip]
const FIXED: [(&str, Group, &str, &str); 26] = {
    use Group::*;
    [
        ("area_m2", Geometry, "m²", "footprint area"),
        ("perimeter_m", Geometry, "m", "length of all rings, holes included"),
        ("compactness", Geometry, "1", "4πA/P²: 1 for a circle, small for ragged outlines"),
        ("vertices", Geometry, "count", "distinct vertices of all rings"),
        ("holes", Geometry, "count", "interior rings (courtyards)"),
        ("parts", Geometry, "count", "polygons in the footprint"),
        ("mrr_length_m", Geometry, "m", "long side of the minimum rotated rectangle"),
        ("mrr_width_m", Geometry, "m", "short side of the minimum rotated rectangle"),
        ("mrr_elongation", Geometry, "1", "long side / short side of the minimum rotated rectangle"),
        ("mrr_orientation_deg", Geometry, "°", "direction of the rectangle's long side, counter-clockwise from east, in [0, 180)"),
        ("mrr_fill", Geometry, "1", "footprint area / minimum rotated rectangle area"),
        ("convex_hull_ratio", Geometry, "1", "footprint area / convex hull area"),
        ("equivalent_radius_m", Geometry, "m", "radius of the circle with the footprint's area"),
        ("log_area", Geometry, "ln m²", "natural logarithm of the area"),
        ("area_rank_100m", Context, "1", "share of buildings within 100 m (centroids) smaller than this one"),
        ("nn_distance_m", Context, "m", "distance to the nearest other footprint (0 when touching)"),
        ("touching_neighbours", Context, "count", "footprints within 0.3 m (attached buildings)"),
        ("shared_perimeter_share", Context, "1", "share of the outline within 0.3 m of a touching neighbour"),
        ("block_buildings", Context, "count", "buildings in this building's block (chains of footprints less than 1 m apart)"),
        ("block_area_m2", Context, "m²", "total footprint area of the block"),
        ("block_area_share", Context, "1", "this footprint's share of its block's area"),
        ("lidar_points", SparseLidar, "count", "unclassified/building points inside the footprint"),
        ("lidar_density", SparseLidar, "points/m²", "those points per m² of footprint"),
        ("lidar_coverage", SparseLidar, "1", "share of the footprint's 1 m cells holding a point"),
        ("lidar_max_m", SparseLidar, "m", "highest point above local ground (p5 of ground points within 4 m)"),
        ("lidar_p90_m", SparseLidar, "m", "90th percentile of the points above local ground"),
    ]
};

/// Context features over squares of ±r m (`<prefix><r>m`): prefix, group, unit, meaning
/// (`{r}` stands for the radius). Checked before [`DISCS`], whose prefixes they extend.
const WINDOWS: [(&str, Group, &str, &str); 3] = [
    (
        "n_window_",
        Group::Context,
        "count",
        "buildings whose centroid lies in the square of ±{r} m around this one's (20 m cells)",
    ),
    (
        "coverage_window_",
        Group::Context,
        "1",
        "built-up ratio of the square of ±{r} m: footprint area of the buildings centred in it / its area",
    ),
    (
        "area_mean_window_",
        Group::Context,
        "m²",
        "mean footprint area of the buildings centred in the square of ±{r} m",
    ),
];

/// Context features over discs of r m, as [`WINDOWS`].
const DISCS: [(&str, Group, &str, &str); 5] = [
    (
        "n_within_",
        Group::Context,
        "count",
        "buildings whose centroid lies within {r} m of this one's (within {r} m)",
    ),
    (
        "area_sum_",
        Group::Context,
        "m²",
        "total footprint area of those buildings (within {r} m)",
    ),
    (
        "area_mean_",
        Group::Context,
        "m²",
        "mean footprint area of those buildings (missing when none) (within {r} m)",
    ),
    (
        "area_max_",
        Group::Context,
        "m²",
        "largest footprint area among those buildings (missing when none) (within {r} m)",
    ),
    (
        "coverage_",
        Group::Context,
        "1",
        "built-up ratio, not a share: whole footprint area of this and those buildings / area of the {r} m disc; exceeds 1 where large footprints reach beyond the disc (within {r} m)",
    ),
];

/// Labelled-neighbour features within r m, as [`WINDOWS`]: their own group, since only
/// cities with labels have them.
const KNOWN: [(&str, Group, &str, &str); 3] = [
    (
        "known_mean_",
        Group::KnownHeights,
        "m",
        "mean label height of other labelled buildings within {r} m (leave-one-out)",
    ),
    (
        "known_idw_",
        Group::KnownHeights,
        "m",
        "inverse-distance-weighted label height of other labelled buildings within {r} m",
    ),
    (
        "known_n_",
        Group::KnownHeights,
        "count",
        "other labelled buildings within {r} m",
    ),
];

/// Documentation of a feature by its name (imagery names are `<raster>_<band>[_ring]_<stat>`);
/// a name roofline does not compute reads as [`Group::Undocumented`], unit `?`.
///
/// [`lookup`] says `None` for such a name instead.
pub fn describe(name: &str) -> FeatureDoc {
    lookup(name).unwrap_or_else(|| doc(name, Group::Undocumented, "?", "undocumented feature"))
}

/// Documentation of a feature by its name; `None` for a name no feature of roofline has.
pub fn lookup(name: &str) -> Option<FeatureDoc> {
    fixed(name)
        .or_else(|| city_percentile(name))
        .or_else(|| radius_family(name))
        .or_else(|| imagery(name))
}

/// A feature of the fixed table; a table, so the catalogue reads as one list.
fn fixed(name: &str) -> Option<FeatureDoc> {
    FIXED
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, group, unit, meaning)| doc(name, group, unit, meaning))
}

/// The radius `r` of a `<prefix><r>m` name, when `name` has that prefix.
fn radius_of(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?
        .trim_end_matches('m')
        .parse::<u32>()
        .ok()
}

/// `<feature>_city_pct`: the percentile takes the group of the feature it ranks, so an
/// ablation of that group drops its ranks too.
fn city_percentile(name: &str) -> Option<FeatureDoc> {
    let of = lookup(name.strip_suffix("_city_pct")?)?;
    Some(doc(
        name,
        of.group,
        "1",
        format!(
            "percentile (0–1) among the city's buildings of: {}",
            of.meaning
        ),
    ))
}

/// `<prefix><r>m` of the radius families, one table each ([`WINDOWS`], [`DISCS`],
/// [`KNOWN`]) so a new radius feature is a line, not a function.
fn radius_family(name: &str) -> Option<FeatureDoc> {
    WINDOWS
        .iter()
        .chain(&DISCS)
        .chain(&KNOWN)
        .find_map(|&(prefix, group, unit, meaning)| {
            let r = radius_of(name, prefix)?;
            Some(doc(
                name,
                group,
                unit,
                meaning.replace("{r}", &r.to_string()),
            ))
        })
}

/// `<raster>_<band>[_ring]_<stat>`: the raster and band names come from the city config, so
/// the name is read from its end (statistic, then the optional ring).
fn imagery(name: &str) -> Option<FeatureDoc> {
    let (rest, stat) = name.rsplit_once('_')?;
    if !super::imagery::STATS.contains(&stat) {
        return None;
    }
    let (rest, zone) = match rest.strip_suffix("_ring") {
        Some(r) => (
            r,
            format!("a 0–{} m ring around the footprint", super::imagery::RING_M),
        ),
        None => (rest, "the footprint".to_string()),
    };
    let (raster, band) = rest.split_once('_').unwrap_or((rest, ""));
    let unit = match band {
        "ndvi" => "1",
        _ => "band units (reflectance for surface-reflectance products)",
    };
    let what = match band {
        "ndvi" => "NDVI (nir − red)/(nir + red)".to_string(),
        "brightness" => "brightness (mean of all bands)".to_string(),
        b => format!("band '{b}'"),
    };
    let stat_text = match stat {
        "mean" => "coverage-weighted mean",
        "std" => "coverage-weighted standard deviation",
        "min" => "minimum",
        _ => "maximum",
    };
    Some(doc(
        name,
        Group::Imagery,
        unit,
        format!("{stat_text} of raster '{raster}' {what} over {zone}, pixels weighted by the exact fraction covered"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every feature roofline computes is documented.
    #[test]
    fn every_feature_has_a_doc() {
        let cfg = crate::config::ImageryConfig {
            path: "x.tif".into(),
            name: "l8".into(),
            bands: vec!["red".into(), "nir".into()],
            crs: None,
            scale: None,
            offset: None,
            mask: None,
        };
        let all: Vec<String> = super::super::geometry::NAMES
            .iter()
            .map(|s| s.to_string())
            .chain(super::super::context::names())
            .chain(
                super::super::sparse_lidar::NAMES
                    .iter()
                    .map(|s| s.to_string()),
            )
            .chain(super::super::neighbours::names())
            .chain(super::super::imagery::names(&cfg))
            .chain(super::super::wide_context::names())
            .chain(
                super::super::relative::RANKED
                    .iter()
                    .map(|f| super::super::relative::rank_name(f)),
            )
            .collect();
        for n in all {
            assert!(lookup(&n).is_some(), "{n} undocumented");
            assert_ne!(describe(&n).group, Group::Undocumented, "{n}");
        }
        assert_eq!(lookup("no_such_feature"), None);
        assert_eq!(describe("no_such_feature").group, Group::Undocumented);
        assert_eq!(lookup("no_such_feature_city_pct"), None);
        assert_eq!(describe("l8_ndvi_ring_mean").group, Group::Imagery);
        assert_eq!(describe("coverage_100m").unit, "1");
        assert_eq!(describe("coverage_window_1000m").group, Group::Context);
        assert_eq!(describe("area_m2_city_pct").group, Group::Geometry);
        assert!(describe("coverage_50m_city_pct").meaning.contains("50 m"));
    }
}
