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

/// Documentation of a feature by its name (imagery names are `<raster>_<band>[_ring]_<stat>`).
pub fn describe(name: &str) -> FeatureDoc {
    use Group::*;
    let fixed = match name {
        "area_m2" => Some(doc(name, Geometry, "m²", "footprint area")),
        "perimeter_m" => Some(doc(
            name,
            Geometry,
            "m",
            "length of all rings, holes included",
        )),
        "compactness" => Some(doc(
            name,
            Geometry,
            "1",
            "4πA/P²: 1 for a circle, small for ragged outlines",
        )),
        "vertices" => Some(doc(
            name,
            Geometry,
            "count",
            "distinct vertices of all rings",
        )),
        "holes" => Some(doc(name, Geometry, "count", "interior rings (courtyards)")),
        "parts" => Some(doc(name, Geometry, "count", "polygons in the footprint")),
        "mrr_length_m" => Some(doc(
            name,
            Geometry,
            "m",
            "long side of the minimum rotated rectangle",
        )),
        "mrr_width_m" => Some(doc(
            name,
            Geometry,
            "m",
            "short side of the minimum rotated rectangle",
        )),
        "mrr_elongation" => Some(doc(
            name,
            Geometry,
            "1",
            "long side / short side of the minimum rotated rectangle",
        )),
        "mrr_orientation_deg" => Some(doc(
            name,
            Geometry,
            "°",
            "direction of the rectangle's long side, counter-clockwise from east, in [0, 180)",
        )),
        "mrr_fill" => Some(doc(
            name,
            Geometry,
            "1",
            "footprint area / minimum rotated rectangle area",
        )),
        "convex_hull_ratio" => Some(doc(
            name,
            Geometry,
            "1",
            "footprint area / convex hull area",
        )),
        "equivalent_radius_m" => Some(doc(
            name,
            Geometry,
            "m",
            "radius of the circle with the footprint's area",
        )),
        "log_area" => Some(doc(
            name,
            Geometry,
            "ln m²",
            "natural logarithm of the area",
        )),
        "area_rank_100m" => Some(doc(
            name,
            Context,
            "1",
            "share of buildings within 100 m (centroids) smaller than this one",
        )),
        "nn_distance_m" => Some(doc(
            name,
            Context,
            "m",
            "distance to the nearest other footprint (0 when touching)",
        )),
        "touching_neighbours" => Some(doc(
            name,
            Context,
            "count",
            "footprints within 0.3 m (attached buildings)",
        )),
        "shared_perimeter_share" => Some(doc(
            name,
            Context,
            "1",
            "share of the outline within 0.3 m of a touching neighbour",
        )),
        "block_buildings" => Some(doc(
            name,
            Context,
            "count",
            "buildings in this building's block (chains of footprints less than 1 m apart)",
        )),
        "block_area_m2" => Some(doc(
            name,
            Context,
            "m²",
            "total footprint area of the block",
        )),
        "block_area_share" => Some(doc(
            name,
            Context,
            "1",
            "this footprint's share of its block's area",
        )),
        "lidar_points" => Some(doc(
            name,
            SparseLidar,
            "count",
            "unclassified/building points inside the footprint",
        )),
        "lidar_density" => Some(doc(
            name,
            SparseLidar,
            "points/m²",
            "those points per m² of footprint",
        )),
        "lidar_coverage" => Some(doc(
            name,
            SparseLidar,
            "1",
            "share of the footprint's 1 m cells holding a point",
        )),
        "lidar_max_m" => Some(doc(
            name,
            SparseLidar,
            "m",
            "highest point above local ground (p5 of ground points within 4 m)",
        )),
        "lidar_p90_m" => Some(doc(
            name,
            SparseLidar,
            "m",
            "90th percentile of the points above local ground",
        )),
        _ => None,
    };
    if let Some(d) = fixed {
        return d;
    }
    if let Some(base) = name.strip_suffix("_city_pct") {
        let of = describe(base);
        return doc(
            name,
            of.group,
            "1",
            format!(
                "percentile (0–1) among the city's buildings of: {}",
                of.meaning
            ),
        );
    }
    let num = |s: &str| s.trim_end_matches('m').parse::<u32>().ok();
    for (prefix, unit, meaning) in [
        (
            "n_window_",
            "count",
            "buildings whose centroid lies in the square of ±{r} m around this one's (20 m cells)",
        ),
        (
            "coverage_window_",
            "1",
            "built-up ratio of the square of ±{r} m: footprint area of the buildings centred in it / its area",
        ),
        (
            "area_mean_window_",
            "m²",
            "mean footprint area of the buildings centred in the square of ±{r} m",
        ),
    ] {
        if let Some(r) = name.strip_prefix(prefix).and_then(num) {
            return doc(name, Context, unit, meaning.replace("{r}", &r.to_string()));
        }
    }
    for (prefix, meaning) in [
        (
            "n_within_",
            "buildings whose centroid lies within {r} m of this one's",
        ),
        ("area_sum_", "total footprint area of those buildings"),
        (
            "area_mean_",
            "mean footprint area of those buildings (missing when none)",
        ),
        (
            "area_max_",
            "largest footprint area among those buildings (missing when none)",
        ),
        (
            "coverage_",
            "built-up ratio, not a share: whole footprint area of this and those buildings / area of the {r} m disc; exceeds 1 where large footprints reach beyond the disc",
        ),
    ] {
        if let Some(r) = name.strip_prefix(prefix).and_then(num) {
            let unit = match prefix {
                "n_within_" => "count",
                "coverage_" => "1",
                _ => "m²",
            };
            return doc(
                name,
                Context,
                unit,
                format!("{} (within {r} m)", meaning.replace("{r}", &r.to_string())),
            );
        }
    }
    for (prefix, unit, meaning) in [
        (
            "known_mean_",
            "m",
            "mean label height of other labelled buildings within {r} m (leave-one-out)",
        ),
        (
            "known_idw_",
            "m",
            "inverse-distance-weighted label height of other labelled buildings within {r} m",
        ),
        ("known_n_", "count", "other labelled buildings within {r} m"),
    ] {
        if let Some(r) = name.strip_prefix(prefix).and_then(num) {
            return doc(
                name,
                KnownHeights,
                unit,
                meaning.replace("{r}", &r.to_string()),
            );
        }
    }
    // Imagery: <raster>_<band>[_ring]_<stat>
    if let Some((rest, stat)) = name.rsplit_once('_') {
        if super::imagery::STATS.contains(&stat) {
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
            return doc(
                name,
                Imagery,
                unit,
                format!("{stat_text} of raster '{raster}' {what} over {zone}, pixels weighted by the exact fraction covered"),
            );
        }
    }
    doc(name, Geometry, "?", "undocumented feature")
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
            let d = describe(&n);
            assert_ne!(d.unit, "?", "{n} undocumented");
        }
        assert_eq!(describe("l8_ndvi_ring_mean").group, Group::Imagery);
        assert_eq!(describe("coverage_100m").unit, "1");
        assert_eq!(describe("coverage_window_1000m").group, Group::Context);
        assert_eq!(describe("area_m2_city_pct").group, Group::Geometry);
        assert!(describe("coverage_50m_city_pct").meaning.contains("50 m"));
    }
}
