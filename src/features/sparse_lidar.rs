//! Sparse LiDAR: in regions whose survey is too thin for a label, or covers only part of the
//! region, whatever points fall on a building still say a lot about its height. Uses the label
//! machinery with a permissive definition: unclassified and building points inside, ground
//! points within 4 m; heights above that local ground.

use super::CityFeatures;
use crate::config::{CityConfig, LabelConfig, LidarLabelConfig, Statistic};
use crate::error::Result;
use crate::io::footprints::Footprints;
use crate::io::pointcloud::open_point_clouds;
use crate::io::pointcloud::PointCloudFile;
use crate::label::lidar::lidar_labels;
use crate::label::sparse::{direct_estimates, SparseHeights, MIN_ROOF_POINTS};
use crate::label::sparsify::{Sparsify, SparsifyPlan};
use crate::progress::Progress;

/// Feature names of this group, in column order.
pub const NAMES: [&str; 5] = [
    "lidar_points",
    "lidar_density",
    "lidar_coverage",
    "lidar_max_m",
    "lidar_p90_m",
];

/// Rows of [`NAMES`]: missing where the survey does not reach the building (or has no ground
/// near it); zero points is a real zero inside the survey.
pub fn sparse_lidar_features(
    fp: &Footprints,
    clouds: &[PointCloudFile],
    progress: &Progress,
) -> Result<Vec<Vec<f64>>> {
    let def = LidarLabelConfig {
        roof: Statistic::Percentile(90.0),
        roof_classes: vec![0, 1, 6],
        ground: Statistic::Percentile(5.0),
        ground_classes: vec![2],
        min_roof_points: 1,
        ..Default::default()
    };
    let out = lidar_labels(fp, clouds, &def, progress)?;
    Ok(out
        .rows
        .iter()
        .map(|r| {
            let s = r.lidar.as_ref().expect("LiDAR rows carry statistics");
            if s.lidar_share < def.min_lidar_share {
                return vec![f64::NAN; NAMES.len()];
            }
            let above = |v: Option<f64>| match (v, s.ground_m) {
                (Some(v), Some(g)) => v - g,
                _ => f64::NAN,
            };
            vec![
                s.roof_points as f64,
                s.roof_density,
                s.coverage,
                above(s.roof_max_m),
                above(s.roof_p90_m),
            ]
        })
        .collect())
}

/// Heights measured directly from a region's own sparse survey (its `[lidar]`, when that is not
/// its label source) under the 3DBAG roof-p70 definition, optionally thinned further for a
/// what-if. `None` when the region lists no such survey.
pub fn region_direct_estimates(
    cfg: &CityConfig,
    region: &CityFeatures,
    thin: Option<(Sparsify, u64)>,
    progress: &Progress,
) -> Result<Option<SparseHeights>> {
    let Some(lidar) = &cfg.lidar else {
        return Ok(None);
    };
    if matches!(cfg.label, Some(LabelConfig::Lidar(_))) {
        return Ok(None);
    }
    let clouds = open_point_clouds(lidar, &region.crs)?;
    let def = LidarLabelConfig::default();
    let plan = match thin {
        Some((kind, seed)) => Some(SparsifyPlan::for_clouds(
            kind,
            seed,
            &clouds,
            &region.crs,
            &def.point_classes(),
        )?),
        None => None,
    };
    let fp = region.footprints(&cfg.path);
    Ok(Some(direct_estimates(
        &fp,
        &clouds,
        &def,
        plan.as_ref(),
        MIN_ROOF_POINTS,
        progress,
    )?))
}

/// The label family of [`region_direct_estimates`]: only models of this family may use them.
pub fn direct_estimate_family() -> String {
    LabelConfig::Lidar(LidarLabelConfig::default())
        .definition()
        .name
}
