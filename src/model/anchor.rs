//! Anchoring: a region's known buildings (its measured labels, heights measured directly from
//! a sparse survey, or a what-if sample of them) correct the model for the rest. One step that
//! `predict`, the tiled plan's merge and cross-validation's scenarios all run, so what `cv`
//! measures is what `predict` does. The correction itself is [`super::local::recalibrate`].

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::local::{recalibrate, LocalOptions, LocalSummary, Sites};
use crate::error::{Error, Result};
use crate::label::sparse::SparseHeights;
use crate::label::Origin;

/// Where a building's height comes from, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The region's own label (full LiDAR survey or attribute), flag `ok`.
    Measured,
    /// The region's OpenStreetMap `height` tag ([`crate::label::osm`]).
    OsmHeight,
    /// The region's OpenStreetMap storey count × a storey height.
    OsmLevels,
    /// A surveyed height from a file of its own ([`crate::label::survey`]).
    Survey,
    /// Measured directly from a few points of the region's sparse survey.
    SparseLidar,
    /// The model, corrected with the region's known buildings ([`super::local`]).
    Recalibrated,
    /// The model alone (learnt from other cities).
    Predicted,
}

impl Source {
    /// Every source, best first.
    pub const ALL: [Source; 7] = [
        Source::Measured,
        Source::Survey,
        Source::OsmHeight,
        Source::OsmLevels,
        Source::SparseLidar,
        Source::Recalibrated,
        Source::Predicted,
    ];

    /// The snake_case name written in the `source` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Measured => Origin::Measured.as_str(),
            Source::OsmHeight => Origin::OsmHeight.as_str(),
            Source::OsmLevels => Origin::OsmLevels.as_str(),
            Source::Survey => Origin::Survey.as_str(),
            Source::SparseLidar => "sparse_lidar",
            Source::Recalibrated => "recalibrated",
            Source::Predicted => "predicted",
        }
    }

    /// A height the region brought in its labels (measured or tagged), not one made here.
    pub fn is_label(&self) -> bool {
        matches!(
            self,
            Source::Measured | Source::OsmHeight | Source::OsmLevels | Source::Survey
        )
    }

    /// The source of a label row of this origin.
    pub fn of_label(origin: Origin) -> Source {
        match origin {
            Origin::Measured => Source::Measured,
            Origin::OsmHeight => Source::OsmHeight,
            Origin::OsmLevels => Source::OsmLevels,
            Origin::Survey => Source::Survey,
        }
    }

    /// The source a `source` column names, if any.
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// How many of a region's labelled buildings a what-if keeps as known.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reveal {
    /// A share in (0, 1) of them, at least one.
    Share(f64),
    /// This many of them (all when fewer are labelled).
    Count(usize),
}

impl FromStr for Reveal {
    type Err = Error;
    /// `0.02` is a share, `20` a count of buildings.
    fn from_str(s: &str) -> Result<Reveal> {
        let bad = || {
            Error::invalid(format!(
                "local labels '{s}': give a share in (0, 1) such as 0.02, or a count of buildings such as 20"
            ))
        };
        if let Ok(n) = s.trim().parse::<usize>() {
            return if n >= 1 {
                Ok(Reveal::Count(n))
            } else {
                Err(bad())
            };
        }
        match s.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v < 1.0 => Ok(Reveal::Share(v)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Reveal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reveal::Share(s) => write!(f, "{s}"),
            Reveal::Count(n) => write!(f, "{n}"),
        }
    }
}

impl Reveal {
    /// How many of `n` labelled buildings stay known.
    pub fn of(&self, n: usize) -> usize {
        match *self {
            Reveal::Share(s) if n > 0 => ((s * n as f64).round() as usize).max(1),
            Reveal::Share(_) => 0,
            Reveal::Count(k) => k,
        }
        .min(n)
    }
}

/// Where the known buildings lie: a random sample of the city, or one district's worth
/// (OpenStreetMap tags and surveys are usually clustered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Draw {
    /// Seeded uniformly over the labelled buildings.
    #[default]
    Spread,
    /// The labelled buildings nearest one seeded labelled building.
    Clustered,
}

/// Known buildings as text (`cv --local-labels`, the Python package's `local_labels`): a
/// [`Reveal`], then, after `:`, how they are drawn when said (`20:clustered`).
pub fn parse_known(s: &str) -> Result<(Reveal, Option<Draw>)> {
    match s.split_once(':') {
        Some((k, d)) => Ok((
            k.parse()?,
            Some(
                d.parse::<Draw>()
                    .map_err(|_| Error::invalid("the draw after ':' is spread or clustered"))?,
            ),
        )),
        None => Ok((s.parse()?, None)),
    }
}

impl std::str::FromStr for Draw {
    type Err = String;
    /// `spread` or `clustered` (any case).
    fn from_str(s: &str) -> Result<Draw, String> {
        match s.to_ascii_lowercase().as_str() {
            "spread" => Ok(Draw::Spread),
            "clustered" => Ok(Draw::Clustered),
            _ => Err(format!("unknown draw '{s}' (spread or clustered)")),
        }
    }
}

impl fmt::Display for Draw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Draw::Spread => "spread",
            Draw::Clustered => "clustered",
        })
    }
}

/// A what-if sample of known buildings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Known {
    /// How many stay known.
    pub reveal: Reveal,
    /// Where they lie.
    pub draw: Draw,
    /// Seed of the choice.
    pub seed: u64,
}

/// Which of `candidates` (building indices) stay known under `known`, in ascending order.
pub fn reveal(candidates: &[usize], centroids: &[[f64; 2]], known: &Known) -> Vec<usize> {
    let k = known.reveal.of(candidates.len());
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(known.seed ^ 0x10CA_1AB5);
    let mut pool = candidates.to_vec();
    match known.draw {
        Draw::Spread => pool.shuffle(&mut rng),
        Draw::Clustered => {
            let Some(&centre) = pool.choose(&mut rng) else {
                return Vec::new();
            };
            let c = centroids[centre];
            let d = |i: usize| (centroids[i][0] - c[0]).hypot(centroids[i][1] - c[1]);
            pool.sort_by(|&a, &b| d(a).total_cmp(&d(b)).then(a.cmp(&b)));
        }
    }
    pool.truncate(k);
    pool.sort_unstable();
    pool
}

/// Local data a region brings to its own prediction.
#[derive(Clone, Debug, Default)]
pub struct LocalData {
    /// Heights measured directly from the region's sparse survey, and the label family they
    /// follow (used only when it is the model's).
    pub sparse: Option<(SparseHeights, String)>,
    /// Correct the model with the region's known buildings (measured and directly estimated).
    pub recalibrate: bool,
    /// A what-if: keep only this sample of the region's labelled buildings as known.
    pub known: Option<Known>,
}

/// The rows of a predictions record that anchoring reads (the model's own prediction and
/// interval) and rewrites (the height to use, its interval and its source), all parallel.
pub struct HeightRows<'a> {
    /// The model's prediction (m).
    pub predicted_m: &'a [f64],
    /// Lower bound (m) of the model's interval.
    pub predicted_lo_m: &'a [f64],
    /// Upper bound (m) of the model's interval.
    pub predicted_hi_m: &'a [f64],
    /// The height to use (m).
    pub height_m: &'a mut [f64],
    /// Its lower bound (m).
    pub lo_m: &'a mut [f64],
    /// Its upper bound (m).
    pub hi_m: &'a mut [f64],
    /// Where it comes from.
    pub source: &'a mut [Source],
}

impl HeightRows<'_> {
    /// Row `i` falls back to the model alone.
    fn forget(&mut self, i: usize) {
        self.source[i] = Source::Predicted;
        self.height_m[i] = self.predicted_m[i];
        self.lo_m[i] = self.predicted_lo_m[i];
        self.hi_m[i] = self.predicted_hi_m[i];
    }
}

/// Recalibrates the model on every row whose source is not [`Source::Predicted`] and
/// rewrites the predicted rows as [`Source::Recalibrated`]; `None` (rows untouched) when no
/// row is known.
pub fn anchor(rows: HeightRows<'_>, sites: Sites<'_>, opts: &LocalOptions) -> Option<LocalSummary> {
    let known: Vec<Option<f64>> = (0..rows.source.len())
        .map(|i| (rows.source[i] != Source::Predicted).then_some(rows.height_m[i]))
        .collect();
    if !known.iter().any(Option::is_some) {
        return None;
    }
    let r = recalibrate(
        rows.predicted_m,
        rows.predicted_lo_m,
        rows.predicted_hi_m,
        sites,
        &known,
        opts,
    );
    for i in 0..known.len() {
        if rows.source[i] == Source::Predicted {
            rows.source[i] = Source::Recalibrated;
            rows.height_m[i] = r.height_m[i];
            rows.lo_m[i] = r.lo_m[i];
            rows.hi_m[i] = r.hi_m[i];
        }
    }
    Some(r.summary)
}

/// The region's local data applied to a model's predictions (`label`: the model's family):
/// the what-if sample of measured buildings first, then direct sparse-LiDAR estimates where
/// nothing is measured, then (when asked) [`anchor`] on all of them.
pub fn apply_local(
    mut rows: HeightRows<'_>,
    sites: Sites<'_>,
    local: &LocalData,
    label: &str,
    opts: &LocalOptions,
) -> Option<LocalSummary> {
    let n = rows.source.len();
    if let Some(known) = &local.known {
        let measured: Vec<usize> = (0..n).filter(|&i| rows.source[i].is_label()).collect();
        let keep = reveal(&measured, sites.centroids, known);
        for &i in &measured {
            if keep.binary_search(&i).is_err() {
                rows.forget(i);
            }
        }
    }
    if let Some((s, family)) = &local.sparse {
        if family == label {
            for i in 0..n {
                if let (Source::Predicted, Some(h)) = (rows.source[i], s.height_m[i]) {
                    let w = s.half_width_m[i];
                    rows.source[i] = Source::SparseLidar;
                    rows.height_m[i] = h;
                    rows.lo_m[i] = (h - w).max(0.0);
                    rows.hi_m[i] = h + w;
                }
            }
        }
    }
    if local.recalibrate {
        anchor(rows, sites, opts)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reveal_parses_shares_and_counts() {
        assert_eq!("0.02".parse::<Reveal>().unwrap(), Reveal::Share(0.02));
        assert_eq!("20".parse::<Reveal>().unwrap(), Reveal::Count(20));
        for bad in ["0", "1.5", "-3", "1.0", "x"] {
            assert!(bad.parse::<Reveal>().is_err(), "{bad}");
        }
        assert_eq!(Reveal::Share(0.001).of(100), 1);
        assert_eq!(Reveal::Share(0.02).of(1000), 20);
        assert_eq!(Reveal::Count(20).of(7), 7);
    }

    #[test]
    fn clustered_draws_are_near_each_other_and_spread_ones_are_not() {
        // A 40 × 40 grid of buildings 10 m apart; 20 known.
        let centroids: Vec<[f64; 2]> = (0..1600)
            .map(|i| [(i % 40) as f64 * 10.0, (i / 40) as f64 * 10.0])
            .collect();
        let all: Vec<usize> = (0..1600).collect();
        let extent = |rows: &[usize]| {
            let xs = rows.iter().map(|&i| centroids[i][0]);
            xs.clone().fold(f64::MIN, f64::max) - xs.fold(f64::MAX, f64::min)
        };
        let known = |draw| Known {
            reveal: Reveal::Count(20),
            draw,
            seed: 7,
        };
        let spread = reveal(&all, &centroids, &known(Draw::Spread));
        let clustered = reveal(&all, &centroids, &known(Draw::Clustered));
        assert_eq!((spread.len(), clustered.len()), (20, 20));
        assert!(extent(&clustered) <= 60.0, "{}", extent(&clustered));
        assert!(extent(&spread) >= 200.0, "{}", extent(&spread));
        assert_eq!(spread, reveal(&all, &centroids, &known(Draw::Spread)));
    }
}
