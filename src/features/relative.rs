//! City-relative features: where a building stands among its own city's buildings (a
//! percentile), not in metres. "Large for this city" and "dense for this city" transfer where
//! absolute sizes do not: a French village's largest buildings are a Dutch city's average ones.
//!
//! The percentile is over the region the features were computed for, so it is only meaningful
//! for a whole city (not for one tile of a tiled run).

use ndarray::{concatenate, Array2, Axis};

use super::CityFeatures;

/// The features ranked within the city.
pub const RANKED: [&str; 6] = [
    "area_m2",
    "perimeter_m",
    "coverage_50m",
    "coverage_200m",
    "n_within_100m",
    "block_area_m2",
];

/// The name of a feature's city percentile.
pub fn rank_name(feature: &str) -> String {
    format!("{feature}_city_pct")
}

/// The city with one more column per [`RANKED`] feature it has: the building's percentile
/// (mid-rank, in [0, 1]) among the city's buildings with a value; NaN stays NaN.
pub fn with_city_ranks(city: &CityFeatures) -> CityFeatures {
    let mut out = city.clone();
    let mut names = Vec::new();
    let mut cols = Vec::new();
    for f in RANKED {
        let Some(col) = city.column(f) else { continue };
        let mut sorted: Vec<f64> = col.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let pct: Vec<f64> = col
            .iter()
            .map(|v| {
                if !v.is_finite() || n == 0.0 {
                    return f64::NAN;
                }
                let below = sorted.partition_point(|s| s < v) as f64;
                let equal = sorted.partition_point(|s| s <= v) as f64 - below;
                (below + equal / 2.0) / n
            })
            .collect();
        names.push(rank_name(f));
        cols.push(pct);
    }
    if names.is_empty() {
        return out;
    }
    let extra = Array2::from_shape_fn((city.len(), cols.len()), |(i, j)| cols[j][i]);
    out.values = concatenate(Axis(1), &[city.values.view(), extra.view()])
        .expect("same number of buildings");
    out.names.extend(names);
    out
}
