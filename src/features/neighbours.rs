//! Known neighbour heights: where some buildings of a city have labels, the heights of labelled
//! buildings nearby are a strong hint (streets are built in one go). Always leave-one-out — a
//! building never sees its own label — and computed from whatever labels the caller passes, so
//! cross-validation recomputes them per fold from that fold's training buildings only.

use rayon::prelude::*;
use rstar::primitives::GeomWithData;
use rstar::RTree;

/// Search radii (m) around each building's centroid.
pub const RADII: [f64; 2] = [100.0, 250.0];
/// Distances below this (m) weigh as this, so a labelled building at 0 m does not dominate.
const MIN_DISTANCE_M: f64 = 1.0;

/// Feature names of this group, in column order: mean, IDW mean and count per radius.
pub fn names() -> Vec<String> {
    RADII
        .iter()
        .flat_map(|r| {
            let r = *r as u32;
            [
                format!("known_mean_{r}m"),
                format!("known_idw_{r}m"),
                format!("known_n_{r}m"),
            ]
        })
        .collect()
}

/// For every building (`centroids`), the mean and inverse-distance-weighted mean height of the
/// *other* buildings with a known height within each radius, and their count. Missing (NaN)
/// where no labelled building is near.
pub fn neighbour_heights(centroids: &[[f64; 2]], known: &[Option<f64>]) -> Vec<Vec<f64>> {
    assert_eq!(centroids.len(), known.len());
    let tree: RTree<GeomWithData<[f64; 2], usize>> = RTree::bulk_load(
        centroids
            .iter()
            .zip(known)
            .enumerate()
            .filter(|(_, (c, h))| h.is_some_and(f64::is_finite) && c[0].is_finite())
            .map(|(i, (c, _))| GeomWithData::new(*c, i))
            .collect(),
    );
    let rmax = RADII[RADII.len() - 1];
    centroids
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut near: Vec<(f64, usize)> = if c[0].is_finite() {
                tree.locate_within_distance(*c, rmax * rmax)
                    .filter(|p| p.data != i)
                    .map(|p| ((p.geom()[0] - c[0]).hypot(p.geom()[1] - c[1]), p.data))
                    .collect()
            } else {
                Vec::new()
            };
            near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut row = Vec::with_capacity(3 * RADII.len());
            for r in RADII {
                let (mut n, mut s, mut sw, mut swh) = (0usize, 0.0, 0.0, 0.0);
                for &(d, j) in near.iter().take_while(|(d, _)| *d <= r) {
                    let h = known[j].expect("only known heights are indexed");
                    let w = 1.0 / d.max(MIN_DISTANCE_M);
                    n += 1;
                    s += h;
                    sw += w;
                    swh += w * h;
                }
                if n == 0 {
                    row.extend([f64::NAN, f64::NAN, 0.0]);
                } else {
                    row.extend([s / n as f64, swh / sw, n as f64]);
                }
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_one_out_and_missing() {
        let c = [[0.0, 0.0], [50.0, 0.0], [0.0, 200.0], [1000.0, 0.0]];
        let h = [Some(10.0), Some(20.0), Some(30.0), None];
        let f = neighbour_heights(&c, &h);
        // Building 0 sees 20 m at 50 m (within 100) and 30 m at 200 m (within 250) — not itself.
        assert_eq!(f[0][0], 20.0);
        assert_eq!(f[0][2], 1.0);
        assert_eq!(f[0][3], 25.0);
        let idw = (20.0 / 50.0 + 30.0 / 200.0) / (1.0 / 50.0 + 1.0 / 200.0);
        assert!((f[0][4] - idw).abs() < 1e-12);
        // Building 3 is far from every label: missing, count 0.
        assert!(f[3][0].is_nan() && f[3][1].is_nan());
        assert_eq!(f[3][2], 0.0);
    }
}
