//! Sparse-survey scenarios: a dense point cloud degraded the way real sparse LiDAR is sparse —
//! a low-density national survey (random thinning), a few flight strips over part of a city,
//! or spaceborne tracks (ICESat-2/GEDI-like lines). Applied while points are read, like a PDAL
//! filter stage, so cross-validation can ask "what if this city only had that?" of a city whose
//! full survey is kept as the truth.
//!
//! Every decision is a pure function of (seed, file, point index, position): the same points are
//! kept whatever the chunking or thread count.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::io::pointcloud::{PointChunk, PointCloudFile};
use crate::stats::seeded::{mix, unit};

/// Period of the strip pattern (m): strips of `share × STRIP_PERIOD_M` every `STRIP_PERIOD_M`.
/// Real swaths are wider, but a city crop of 1–2 km must see several strips and gaps for the
/// scenario to measure anything but luck.
pub const STRIP_PERIOD_M: f64 = 500.0;
/// Half-width of a spaceborne track (m): GEDI's footprints are ~25 m, ICESat-2's beams ~12 m.
pub const TRACK_HALF_WIDTH_M: f64 = 6.0;

/// How a survey is degraded.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sparsify {
    /// Random thinning to this many roof and ground points per m² of the survey's extent.
    Density {
        /// Target density (points per m²) of the kept roof and ground points.
        points_per_m2: f64,
    },
    /// Parallel strips covering this share of the area (the rest has no points).
    Strips {
        /// Share of the area inside strips, in (0, 1].
        share: f64,
    },
    /// Points within [`TRACK_HALF_WIDTH_M`] of parallel lines this far apart (m).
    Tracks {
        /// Distance between neighbouring tracks (m).
        spacing_m: f64,
    },
}

impl FromStr for Sparsify {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "`sparse_lidar` '{s}': {why} (expected density=PTS_PER_M2, strips=SHARE or tracks=SPACING_M, e.g. density=0.05)"
            ))
        };
        let (key, value) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| bad("the value is not a number"))?;
        let out = match key.trim() {
            "density" if v > 0.0 && v.is_finite() => Sparsify::Density { points_per_m2: v },
            "strips" if v > 0.0 && v <= 1.0 => Sparsify::Strips { share: v },
            "tracks" if v > 2.0 * TRACK_HALF_WIDTH_M && v.is_finite() => {
                Sparsify::Tracks { spacing_m: v }
            }
            "density" | "strips" | "tracks" => return Err(bad("value out of range")),
            _ => return Err(bad("unknown kind")),
        };
        Ok(out)
    }
}

impl fmt::Display for Sparsify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sparsify::Density { points_per_m2 } => write!(f, "density={points_per_m2}"),
            Sparsify::Strips { share } => write!(f, "strips={share}"),
            Sparsify::Tracks { spacing_m } => write!(f, "tracks={spacing_m}"),
        }
    }
}

/// A [`Sparsify`] resolved for one survey: keep probabilities per file, pattern angle and
/// offset drawn from the seed.
#[derive(Clone, Debug)]
pub struct SparsifyPlan {
    /// The thinning asked for.
    pub kind: Sparsify,
    seed: u64,
    /// Per file: probability of keeping a roof/ground point (density thinning).
    keep_probability: Vec<f64>,
    /// Unit normal of the strips or tracks and the pattern's offset along it.
    normal: [f64; 2],
    offset_m: f64,
    /// Classes the thinning counts (the rest are dropped: they are not roof or ground).
    classes: [bool; 256],
}

impl SparsifyPlan {
    /// Resolves `kind` for files holding `counted[f]` points of `classes` over `area_m2[f]`.
    pub fn new(
        kind: Sparsify,
        seed: u64,
        counted: &[u64],
        area_m2: &[f64],
        classes: &[u8],
    ) -> SparsifyPlan {
        let total: u64 = counted.iter().sum();
        let area: f64 = area_m2.iter().sum();
        let keep_probability = counted
            .iter()
            .map(|_| match kind {
                Sparsify::Density { points_per_m2 } if total > 0 && area > 0.0 => {
                    (points_per_m2 * area / total as f64).min(1.0)
                }
                _ => 1.0,
            })
            .collect();
        let angle = std::f64::consts::PI * unit(mix(seed, 0x005E_EDA9, 0));
        let period = match kind {
            Sparsify::Strips { .. } => STRIP_PERIOD_M,
            Sparsify::Tracks { spacing_m } => spacing_m,
            Sparsify::Density { .. } => 1.0,
        };
        let mut mask = [false; 256];
        for &c in classes {
            mask[c as usize] = true;
        }
        SparsifyPlan {
            kind,
            seed,
            keep_probability,
            normal: [angle.cos(), angle.sin()],
            offset_m: period * unit(mix(seed, 0x000F_F5E7, 1)),
            classes: mask,
        }
    }

    /// Resolves `kind` for a survey: density thinning counts the points of `classes` in each
    /// file first (one extra pass), over the files' header extents.
    pub fn for_clouds(
        kind: Sparsify,
        seed: u64,
        clouds: &[PointCloudFile],
        working: &Crs,
        classes: &[u8],
    ) -> Result<SparsifyPlan> {
        let area: Vec<f64> = clouds
            .iter()
            .map(|c| (c.bounds[2] - c.bounds[0]) * (c.bounds[3] - c.bounds[1]))
            .collect();
        let mut counted = vec![0u64; clouds.len()];
        if matches!(kind, Sparsify::Density { .. }) {
            let mut mask = [false; 256];
            for &c in classes {
                mask[c as usize] = true;
            }
            let mut chunk = PointChunk::default();
            for (f, c) in clouds.iter().enumerate() {
                let mut stream = c.stream(working, 1 << 20)?;
                while stream.next_chunk(&mut chunk)? {
                    counted[f] += chunk.class.iter().filter(|&&k| mask[k as usize]).count() as u64;
                }
            }
        }
        Ok(SparsifyPlan::new(kind, seed, &counted, &area, classes))
    }

    /// Whether point `index` of file `file` at (x, y) of class `class` survives.
    pub fn keep(&self, file: usize, index: u64, x: f64, y: f64, class: u8) -> bool {
        if !self.classes[class as usize] {
            return false;
        }
        match self.kind {
            Sparsify::Density { .. } => {
                unit(mix(self.seed, file as u64, index)) < self.keep_probability[file]
            }
            Sparsify::Strips { share } => {
                let t = self.along(x, y, STRIP_PERIOD_M);
                t < share * STRIP_PERIOD_M
            }
            Sparsify::Tracks { spacing_m } => {
                let t = self.along(x, y, spacing_m);
                t <= TRACK_HALF_WIDTH_M || t >= spacing_m - TRACK_HALF_WIDTH_M
            }
        }
    }

    /// Position within the pattern's period, in [0, period).
    fn along(&self, x: f64, y: f64, period: f64) -> f64 {
        (x * self.normal[0] + y * self.normal[1] + self.offset_m).rem_euclid(period)
    }

    /// The keep probability of density thinning (1 for the spatial patterns).
    pub fn keep_probability(&self) -> f64 {
        self.keep_probability.iter().copied().fold(1.0, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in ["density=0.05", "strips=0.2", "tracks=70"] {
            let k: Sparsify = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
        }
        for bad in ["density", "density=-1", "strips=1.5", "tracks=5", "dens=1"] {
            assert!(bad.parse::<Sparsify>().is_err(), "{bad}");
        }
    }

    #[test]
    fn thinning_keeps_the_asked_share() {
        // 1e5 points over 1e4 m² (10 pts/m²) thinned to 0.5 pts/m²: keep ~5 %.
        let kind = Sparsify::Density { points_per_m2: 0.5 };
        let plan = SparsifyPlan::new(kind, 7, &[100_000], &[10_000.0], &[2, 6]);
        let kept = (0..100_000u64)
            .filter(|&i| plan.keep(0, i, 0.0, 0.0, 6))
            .count();
        assert!((4_700..=5_300).contains(&kept), "{kept}");
        // Other classes are dropped.
        assert!(!(0..1000u64).any(|i| plan.keep(0, i, 0.0, 0.0, 5)));
    }

    #[test]
    fn strips_and_tracks_cover_their_share() {
        let grid = |plan: &SparsifyPlan| {
            let mut kept = 0;
            for i in 0..400 {
                for j in 0..400 {
                    kept += plan.keep(0, 0, i as f64 * 5.0, j as f64 * 5.0, 2) as usize;
                }
            }
            kept as f64 / 160_000.0
        };
        let strips = SparsifyPlan::new(Sparsify::Strips { share: 0.2 }, 3, &[1], &[1.0], &[2]);
        let s = grid(&strips);
        assert!((s - 0.2).abs() < 0.02, "{s}");
        let tracks = SparsifyPlan::new(Sparsify::Tracks { spacing_m: 70.0 }, 3, &[1], &[1.0], &[2]);
        let t = grid(&tracks);
        assert!((t - 12.0 / 70.0).abs() < 0.02, "{t}");
    }
}
