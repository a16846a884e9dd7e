//! Heights measured directly from a sparse survey. A building that a thin survey still hits a
//! few times is better measured than predicted: its roof statistic over the few roof points,
//! minus the ground around it. Thin surveys often miss the ground in a 4 m ring (narrow streets,
//! courtyards), so a building with roof points but no ground takes the median ground of its
//! nearest measured neighbours — ground varies far less than roofs.

use geo::Centroid;
use rstar::primitives::GeomWithData;
use rstar::RTree;

use crate::config::LidarLabelConfig;
use crate::error::Result;
use crate::io::footprints::Footprints;
use crate::io::pointcloud::PointCloudFile;
use crate::label::lidar::lidar_labels_filtered;
use crate::label::sparsify::SparsifyPlan;
use crate::label::Flag;
use crate::progress::Progress;
use crate::stats::percentile::percentile_sorted;

/// Buildings with fewer thinned roof points get no direct estimate.
pub const MIN_ROOF_POINTS: usize = 3;
/// Ground from neighbours: the nearest this many buildings with ground, within the radius.
const GROUND_NEIGHBOURS: usize = 8;
/// How far (m) a building without ground in its ring borrows its neighbours' ground.
pub const GROUND_RADIUS_M: f64 = 200.0;

/// Direct estimates for every footprint (in footprint order).
#[derive(Clone, Debug)]
pub struct SparseHeights {
    /// Roof statistic minus ground (m); `None` where too few roof points were hit.
    pub height_m: Vec<Option<f64>>,
    /// Half-width (m) of the estimate's 90 % interval: sampling spread of the few roof points
    /// plus what borrowing the ground costs.
    pub half_width_m: Vec<f64>,
    /// Roof points hit per footprint after thinning.
    pub roof_points: Vec<u64>,
    /// The ground came from neighbouring buildings, not the building's own ring.
    pub ground_borrowed: Vec<bool>,
    /// Points read after thinning.
    pub points_read: u64,
}

impl SparseHeights {
    /// How many footprints got a direct estimate.
    pub fn estimated(&self) -> usize {
        self.height_m.iter().filter(|h| h.is_some()).count()
    }
}

/// Measures what a (possibly thinned) survey says about each footprint under `def`, keeping
/// estimates from at least `min_roof_points` roof points.
pub fn direct_estimates(
    fp: &Footprints,
    clouds: &[PointCloudFile],
    def: &LidarLabelConfig,
    filter: Option<&SparsifyPlan>,
    min_roof_points: usize,
    progress: &Progress,
) -> Result<SparseHeights> {
    let def = LidarLabelConfig {
        min_roof_points: min_roof_points.max(1),
        ..def.clone()
    };
    let out = lidar_labels_filtered(fp, clouds, &def, filter, progress)?;
    let centroids: Vec<[f64; 2]> = fp
        .geometries
        .iter()
        .map(|g| g.centroid().map_or([f64::NAN; 2], |c| [c.x(), c.y()]))
        .collect();
    let grounds: Vec<Option<f64>> = out
        .rows
        .iter()
        .map(|r| r.lidar.as_ref().and_then(|s| s.ground_m))
        .collect();
    let tree: RTree<GeomWithData<[f64; 2], usize>> = RTree::bulk_load(
        (0..fp.len())
            .filter(|&i| grounds[i].is_some() && centroids[i][0].is_finite())
            .map(|i| GeomWithData::new(centroids[i], i))
            .collect(),
    );
    let n = fp.len();
    let mut s = SparseHeights {
        height_m: vec![None; n],
        half_width_m: vec![f64::NAN; n],
        roof_points: vec![0; n],
        ground_borrowed: vec![false; n],
        points_read: out.points_read,
    };
    for (i, r) in out.rows.iter().enumerate() {
        let Some(st) = &r.lidar else { continue };
        s.roof_points[i] = st.roof_points;
        let usable = matches!(r.flag, Flag::Ok | Flag::NoGround)
            && st.roof_points >= def.min_roof_points as u64;
        let (Some(roof), true) = (st.roof_m, usable) else {
            continue;
        };
        let (ground, borrowed) = match st.ground_m {
            Some(g) => (Some(g), false),
            None => (neighbour_ground(&tree, &grounds, centroids[i]), true),
        };
        let Some(ground) = ground else { continue };
        s.height_m[i] = Some(roof - ground);
        s.ground_borrowed[i] = borrowed;
        // The roof points' own spread (p90 - p50 is ~1.28 sd for a normal roof) shrinks with
        // their count; a borrowed ground adds up to a metre.
        let spread = match (st.roof_p90_m, st.roof_p50_m) {
            (Some(a), Some(b)) => (a - b) / 1.28,
            _ => 0.0,
        };
        let sampling = 1.645 * spread * (1.0 + 1.0 / (st.roof_points as f64).sqrt());
        s.half_width_m[i] = sampling + if borrowed { 1.0 } else { 0.5 };
    }
    Ok(s)
}

fn neighbour_ground(
    tree: &RTree<GeomWithData<[f64; 2], usize>>,
    grounds: &[Option<f64>],
    at: [f64; 2],
) -> Option<f64> {
    if !at[0].is_finite() {
        return None;
    }
    let mut near: Vec<f64> = tree
        .nearest_neighbor_iter_with_distance_2(&at)
        .take_while(|(_, d2)| *d2 <= GROUND_RADIUS_M * GROUND_RADIUS_M)
        .take(GROUND_NEIGHBOURS)
        .filter_map(|(p, _)| grounds[p.data])
        .collect();
    if near.is_empty() {
        return None;
    }
    near.sort_by(f64::total_cmp);
    Some(percentile_sorted(&near, 50.0))
}
