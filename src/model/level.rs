//! The height level of a city, apart from the structure within it.
//!
//! A model trained on absolute heights learns whatever separates its training cities: with a
//! dense high-rise centre among them, "dense means tall", which a dense low-rise city then
//! contradicts by 7 m on average (Tokyo Setagaya). roofline therefore splits a height into
//! `ln h = level(city) + structure(building)`: the boosted trees learn the structure, a
//! building's log height above its own city's median, and the level is estimated once per
//! city, from the training cities' median heights and, where it predicted them better under
//! leave-one-city-out, one city-wide descriptor (the median block size, built-up ratio, …).
//! Leave-one-city-out over the six roof-top cities: mean MAE ÷ block-CV MAE 2.84 → 1.4 (README,
//! "A city without any local data").
//!
//! No crate fits a one-variable ridge regression on a handful of cities with a nested
//! leave-one-out choice of the variable; it is a few lines here.

use serde::{Deserialize, Serialize};

use crate::features::CityFeatures;
use crate::stats::percentile::iqr;

/// City-wide descriptors a level may be read from: each a median over the city's buildings
/// (labelled or not) of one feature, except `touching_share`. Their log is used.
pub const DESCRIPTORS: [&str; 9] = [
    "area_m2",
    "coverage_50m",
    "coverage_100m",
    "block_buildings",
    "block_area_m2",
    "n_within_100m",
    "shared_perimeter_share",
    "area_max_100m",
    "touching_share",
];

/// Fewest training cities from which a level is estimated apart from the structure; with
/// fewer, the model learns absolute heights (one or two cities say nothing about how levels
/// vary between cities).
pub const MIN_CITIES: usize = 3;

/// Fewest training cities for which a descriptor may be chosen (its leave-one-out error then
/// rests on at least four fits of three cities).
pub const MIN_CITIES_FOR_DESCRIPTOR: usize = 4;

/// Ridge penalty on the standardised descriptor's slope: shrinks a slope fitted on a handful of
/// cities toward "every city at the mean level".
pub const RIDGE: f64 = 2.0;

/// Structure weights tried by the nested leave-one-city-out in training.
pub const STRUCTURE_WEIGHTS: [f64; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// A height (m, never negative) from its structure in ln(height) at ln level `l`.
pub fn height_at(l: f64, structure: f64) -> f64 {
    (l + structure).exp().max(0.0)
}

/// A 90 % interval from the interval model's raw bounds: in ln(height) above ln level `l`
/// when `log_scale`, else metres; never negative and always holding the point.
pub fn bounds_at(log_scale: bool, l: f64, lo: f64, hi: f64, point: f64) -> (f64, f64) {
    let (lo, hi) = if log_scale {
        ((l + lo).exp(), (l + hi).exp())
    } else {
        (lo, hi)
    };
    (lo.min(point).max(0.0), hi.max(point))
}

/// The log of each of [`DESCRIPTORS`] for a city (`None` where the city lacks the feature).
pub fn descriptors(city: &CityFeatures) -> Vec<Option<f64>> {
    DESCRIPTORS
        .iter()
        .map(|&name| {
            let col = city.column(descriptor_source(name))?;
            descriptor_value(name, &col.to_vec())
        })
        .collect()
}

/// The per-building feature a descriptor summarises.
pub fn descriptor_source(name: &str) -> &str {
    if name == "touching_share" {
        "touching_neighbours"
    } else {
        name
    }
}

/// Descriptor `name` of a city from its buildings' values of [`descriptor_source`]: the log of
/// their median (of the share above zero for `touching_share`); `None` without a finite value.
pub fn descriptor_value(name: &str, values: &[f64]) -> Option<f64> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return None;
    }
    if name == "touching_share" {
        let share = finite.iter().filter(|&&v| v > 0.0).count() as f64 / finite.len() as f64;
        return Some((share + 0.01).ln());
    }
    finite.sort_by(f64::total_cmp);
    let m = crate::stats::percentile::percentile_sorted(&finite, 50.0);
    let floor = if name == "shared_perimeter_share" {
        0.01
    } else {
        1e-3
    };
    Some((m.max(0.0) + floor).ln())
}

/// One training city: its median label height and descriptors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CityLevel {
    /// The city's name.
    pub city: String,
    /// ln of the median of its labelled heights (m).
    pub log_level: f64,
    /// [`descriptors`] of the city.
    pub descriptors: Vec<Option<f64>>,
    /// Interquartile range of ln(height) of its labels and of ln(footprint area) of all its
    /// buildings ([`area_spread`]), kept only for a [`SpreadCap`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spreads: Option<(f64, f64)>,
}

/// A fitted level: `ln level = intercept + slope × (descriptor − mean) / sd`, or the mean log
/// level of the training cities when no descriptor was chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelModel {
    /// The training cities.
    pub cities: Vec<CityLevel>,
    /// The descriptor chosen (a name of [`DESCRIPTORS`]), or `None`: the mean level.
    pub descriptor: Option<String>,
    /// Mean log level of the training cities.
    pub intercept: f64,
    /// Slope per standard deviation of the descriptor (0 without one).
    pub slope: f64,
    /// The descriptor's mean and standard deviation over the training cities.
    pub mean: f64,
    /// See `mean`.
    pub sd: f64,
    /// Mean absolute leave-one-city-out error of the log level, with the descriptor (or
    /// without, when none was chosen): how far the level of a new city may be off.
    pub loo_error: f64,
    /// Weight of the trees' structure, chosen by nested leave-one-city-out (1 when not
    /// chosen): how much of the within-city structure learnt elsewhere carries to a new city.
    pub structure_weight: f64,
    /// Whether descriptors were offered to the choice (`false`: the mean level by option).
    pub descriptors_tried: bool,
    /// The structure weight capped where a city's heights are likely tight (the default;
    /// `cv --ablate no-spread-cap` measures without it; `None`: no cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_cap: Option<SpreadCap>,
}

/// Interquartile range of ln(footprint area) over a city's buildings (labelled or not): how
/// alike its footprints are, which no height is needed for.
pub fn area_spread(city: &CityFeatures) -> Option<f64> {
    area_spread_of(&city.column(AREA)?.to_vec())
}

/// The per-building feature [`area_spread`] reads.
pub const AREA: &str = "area_m2";

/// [`area_spread`] of footprint areas (m²) in any order: what a tiled run's merge has of the
/// whole region.
pub fn area_spread_of(areas: &[f64]) -> Option<f64> {
    let logs: Vec<f64> = areas
        .iter()
        .filter(|a| a.is_finite() && **a > 0.0)
        .map(|a| a.ln())
        .collect();
    (logs.len() >= 2).then(|| iqr(&logs))
}

/// Lowest expected ln-height spread a cap works with (a line on a handful of cities may fall
/// below zero).
pub const MIN_SPREAD: f64 = 0.05;

/// Multipliers of the expected spread tried by the nested choice of [`SpreadCap::kappa`].
pub const SPREAD_KAPPAS: [f64; 10] = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5];

/// A cap on the structure's weight in a city whose heights are likely tighter than the
/// structure says: a city of alike footprints (Tokyo Setagaya's houses) tends to have alike
/// heights, and structure learnt in other cities then only adds spread. The expected spread
/// (interquartile range of ln height) is a line on the footprint-area spread of the training
/// cities; the weight is at most `kappa` × expected spread ÷ the spread of the structure
/// predicted for the region. The default since it held on the roof-p70 cities, which played no
/// part in picking the descriptor (README, ablation table; `cv --ablate no-spread-cap`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpreadCap {
    /// Expected ln-height spread at area spread 0.
    pub intercept: f64,
    /// Change of the expected ln-height spread per unit of area spread.
    pub slope: f64,
    /// Multiplier of the expected spread, chosen by nested leave-one-city-out.
    pub kappa: f64,
}

impl SpreadCap {
    /// Least-squares line of ln-height spread on area spread over `(area, height)` spreads
    /// (flat at their mean when the areas do not vary).
    pub fn line(points: &[(f64, f64)]) -> (f64, f64) {
        let n = points.len().max(1) as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if sxx <= 1e-12 {
            return (my, 0.0);
        }
        let b = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
        (my - b * mx, b)
    }

    /// The expected ln-height spread of a city of this area spread.
    pub fn expected(&self, area_spread: f64) -> f64 {
        (self.intercept + self.slope * area_spread).max(MIN_SPREAD)
    }

    /// The factor (0–1] on a region's weighted structure: 1 when the structure is no wider
    /// than `kappa` × the expected spread.
    pub fn factor(&self, area_spread: Option<f64>, structure: &[f64]) -> f64 {
        let (Some(a), p) = (area_spread, iqr(structure)) else {
            return 1.0;
        };
        if p <= 1e-12 {
            return 1.0;
        }
        (self.kappa * self.expected(a) / p).min(1.0)
    }
}

/// The ridge fit on `cities` of descriptor `d` (`None`: the mean).
fn fit_one(cities: &[&CityLevel], d: Option<usize>) -> (f64, f64, f64, f64) {
    let n = cities.len() as f64;
    let y: Vec<f64> = cities.iter().map(|c| c.log_level).collect();
    let intercept = y.iter().sum::<f64>() / n;
    let Some(d) = d else {
        return (intercept, 0.0, 0.0, 1.0);
    };
    let x: Vec<f64> = cities
        .iter()
        .map(|c| c.descriptors[d].unwrap_or(f64::NAN))
        .collect();
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    if sd.is_nan() || sd <= 1e-9 {
        return (intercept, 0.0, mean, 1.0);
    }
    let z: Vec<f64> = x.iter().map(|v| (v - mean) / sd).collect();
    let slope = z
        .iter()
        .zip(&y)
        .map(|(a, b)| a * (b - intercept))
        .sum::<f64>()
        / (z.iter().map(|a| a * a).sum::<f64>() + RIDGE);
    (intercept, slope, mean, sd)
}

fn predict_one(
    (intercept, slope, mean, sd): (f64, f64, f64, f64),
    d: Option<usize>,
    c: &[Option<f64>],
) -> f64 {
    match d.and_then(|d| c.get(d).copied().flatten()) {
        Some(v) if v.is_finite() => intercept + slope * (v - mean) / sd,
        _ => intercept,
    }
}

/// Mean absolute leave-one-out error of descriptor `d` over `cities`.
fn loo_error(cities: &[&CityLevel], d: Option<usize>) -> f64 {
    let errs: Vec<f64> = (0..cities.len())
        .map(|i| {
            let rest: Vec<&CityLevel> = cities
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| *c)
                .collect();
            (predict_one(fit_one(&rest, d), d, &cities[i].descriptors) - cities[i].log_level).abs()
        })
        .collect();
    errs.iter().sum::<f64>() / errs.len().max(1) as f64
}

impl LevelModel {
    /// Fits the level on `cities` (at least one): with `use_descriptors`, the descriptor with
    /// the smallest leave-one-out error, when there are [`MIN_CITIES_FOR_DESCRIPTOR`] cities and
    /// it beats the mean level's; else the mean. The structure weight starts at 1.
    pub fn fit(cities: Vec<CityLevel>, use_descriptors: bool) -> LevelModel {
        let refs: Vec<&CityLevel> = cities.iter().collect();
        let usable = |d: usize| {
            refs.iter()
                .all(|c| c.descriptors[d].is_some_and(f64::is_finite))
        };
        let none_error = if refs.len() >= 2 {
            loo_error(&refs, None)
        } else {
            f64::INFINITY
        };
        let mut choice: (Option<usize>, f64) = (None, none_error);
        if use_descriptors && refs.len() >= MIN_CITIES_FOR_DESCRIPTOR {
            for d in (0..DESCRIPTORS.len()).filter(|&d| usable(d)) {
                let e = loo_error(&refs, Some(d));
                if e < choice.1 - 1e-12 {
                    choice = (Some(d), e);
                }
            }
        }
        let (intercept, slope, mean, sd) = fit_one(&refs, choice.0);
        LevelModel {
            descriptor: choice.0.map(|d| DESCRIPTORS[d].to_string()),
            intercept,
            slope,
            mean,
            sd,
            loo_error: choice.1,
            structure_weight: 1.0,
            descriptors_tried: use_descriptors,
            spread_cap: None,
            cities,
        }
    }

    /// [`LevelModel::log_level`] from the per-building values of the chosen descriptor's
    /// [`descriptor_source`] alone (what a tiled run's merge has of the whole region).
    pub fn log_level_from_values(&self, values: &[f64]) -> f64 {
        let d: Vec<Option<f64>> = DESCRIPTORS
            .iter()
            .map(|&n| match &self.descriptor {
                Some(chosen) if chosen == n => descriptor_value(n, values),
                _ => None,
            })
            .collect();
        self.log_level(&d)
    }

    /// ln of the estimated level (m) of a city with these [`descriptors`], kept within the
    /// training cities' levels widened by the leave-one-out error on each side: a descriptor
    /// far beyond every training city's (Helsinki's large blocks, say) must not extrapolate the
    /// line to a level no city had, while a city a little beyond them (Venice's lots, below
    /// every other level) keeps most of its estimate.
    pub fn log_level(&self, descriptors: &[Option<f64>]) -> f64 {
        let d = self
            .descriptor
            .as_ref()
            .and_then(|n| DESCRIPTORS.iter().position(|x| x == n));
        let v = predict_one(
            (self.intercept, self.slope, self.mean, self.sd),
            d,
            descriptors,
        );
        let (lo, hi) = self.log_level_range();
        let margin = if self.loo_error.is_finite() {
            self.loo_error
        } else {
            0.0
        };
        if lo <= hi {
            v.clamp(lo - margin, hi + margin)
        } else {
            v
        }
    }

    /// The lowest and highest ln level of the training cities (infinite bounds reversed when
    /// there are none).
    pub fn log_level_range(&self) -> (f64, f64) {
        self.cities
            .iter()
            .map(|c| c.log_level)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), l| {
                (a.min(l), b.max(l))
            })
    }

    /// The level of training city `i` as a model of the other training cities would estimate
    /// it (the descriptor chosen again without it): what the level of a new city may be off
    /// by, measured.
    pub fn held_out_log_level(&self, i: usize) -> f64 {
        let rest: Vec<CityLevel> = self
            .cities
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c.clone())
            .collect();
        LevelModel::fit(rest, self.descriptors_tried).log_level(&self.cities[i].descriptors)
    }

    /// One line for `train`'s summary.
    pub fn describe(&self) -> String {
        let level = |c: &CityLevel| format!("{} {:.1} m", c.city, c.log_level.exp());
        let how = match &self.descriptor {
            Some(d) => format!(
                "from the median {d} (slope {:+.2} per sd, leave-one-city-out error ×{:.2})",
                self.slope,
                self.loo_error.exp()
            ),
            None => format!(
                "the training cities' mean (leave-one-city-out error ×{:.2})",
                self.loo_error.exp()
            ),
        };
        format!(
            "city level {how}; structure weight {:.1}; training levels: {}",
            self.structure_weight,
            self.cities.iter().map(level).collect::<Vec<_>>().join(", ")
        )
    }
}

/// Heights (m) of a point model's rows: its output as is, or, where `level` gives a row's
/// (ln level, structure weight), `exp(level + weight × output)`.
pub(crate) fn heights_of(
    point: &hessboost::model::BoostedModel,
    x: &ndarray::Array2<f64>,
    level: impl Fn(usize) -> Option<(f64, f64)>,
) -> crate::error::Result<ndarray::Array1<f64>> {
    let raw = super::boosting::predict_booster(point, x)?;
    Ok(ndarray::Array1::from_iter((0..x.nrows()).map(
        |i| match level(i) {
            Some((l, w)) => (l + w * raw[[i, 0]]).exp(),
            None => raw[[i, 0]],
        },
    )))
}

/// MAE (m) of a held-out city's (structure, ln level, heights) at structure weight `w`.
fn held_out_mae((s, l, h): &(Vec<f64>, f64, Vec<f64>), w: f64) -> f64 {
    s.iter()
        .zip(h)
        .map(|(s, h)| ((l + w * s).exp() - h).abs())
        .sum::<f64>()
        / h.len().max(1) as f64
}

/// The structure weight (of [`STRUCTURE_WEIGHTS`]) with the smallest mean relative error over
/// held-out cities: for each city, `structure[i]` is its buildings' structure predicted by a
/// model of the other cities, `log_level` its level estimated without it and `heights` its
/// labels; each city's MAE is divided by its MAE at weight 0 (level alone), so every city
/// counts equally whatever its size and height.
pub fn choose_structure_weight(held_out: &[(Vec<f64>, f64, Vec<f64>)]) -> f64 {
    if held_out.is_empty() {
        return 1.0;
    }
    let mut best = (1.0, f64::INFINITY);
    for &w in &STRUCTURE_WEIGHTS {
        let score: f64 = held_out
            .iter()
            .map(|c| held_out_mae(c, w) / held_out_mae(c, 0.0).max(1e-9))
            .sum();
        if score < best.1 - 1e-12 {
            best = (w, score);
        }
    }
    best.0
}

/// [`choose_structure_weight`] with a [`SpreadCap`]'s `kappa` chosen with it: each held-out
/// city also carries its expected spread (from a line on the other cities), and its weight is
/// `min(w, kappa × expected ÷ spread of its raw structure)`. `None` for kappa when no cap beat
/// the weight alone. A held-out city's structure spread is over its labelled buildings (the
/// training set holds no others), a region's at prediction over all its buildings.
pub fn choose_capped_weight(
    held_out: &[(Vec<f64>, f64, Vec<f64>)],
    expected: &[f64],
) -> (f64, Option<f64>) {
    let w0 = choose_structure_weight(held_out);
    if held_out.is_empty() {
        return (w0, None);
    }
    let score = |kappa: Option<f64>, w: f64| -> f64 {
        held_out
            .iter()
            .zip(expected)
            .map(|(c, &e)| {
                let p = iqr(&c.0);
                let wc = match kappa {
                    Some(k) if p > 1e-12 => w.min(k * e / p),
                    _ => w,
                };
                held_out_mae(c, wc) / held_out_mae(c, 0.0).max(1e-9)
            })
            .sum()
    };
    let mut best = (w0, None, score(None, w0));
    for &w in &STRUCTURE_WEIGHTS {
        for &k in &SPREAD_KAPPAS {
            let sc = score(Some(k), w);
            if sc < best.2 - 1e-12 {
                best = (w, Some(k), sc);
            }
        }
    }
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn city(name: &str, level_m: f64, d: f64) -> CityLevel {
        CityLevel {
            city: name.into(),
            log_level: level_m.ln(),
            descriptors: (0..DESCRIPTORS.len())
                .map(|k| {
                    Some(if k == 4 {
                        d
                    } else {
                        (k as f64 * 7.3 + level_m).sin()
                    })
                })
                .collect(),
            spreads: None,
        }
    }

    #[test]
    fn a_descriptor_that_predicts_levels_is_chosen_and_one_that_does_not_is_not() {
        // Levels that follow descriptor 4 (block area) exactly, the others noise.
        let cities: Vec<CityLevel> = [
            (5.0, 0.0),
            (7.0, 1.0),
            (10.0, 2.0),
            (14.0, 3.0),
            (20.0, 4.0),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(h, d))| city(&format!("c{i}"), h, d))
        .collect();
        let m = LevelModel::fit(cities.clone(), true);
        assert_eq!(m.descriptor.as_deref(), Some("block_area_m2"));
        // A new city at descriptor 2 is put near 10 m (the ridge shrinks the slope a little).
        let mut new = cities[2].descriptors.clone();
        new[4] = Some(2.0);
        let l = m.log_level(&new).exp();
        assert!((l - 10.0).abs() < 1.0, "{l}");
        // Far beyond every training city's descriptor: the tallest training level and the
        // leave-one-out error, no more.
        new[4] = Some(40.0);
        let far = m.log_level(&new).exp();
        let cap = 20.0 * m.loo_error.exp();
        assert!(
            m.loo_error > 0.0 && (far - cap).abs() < 1e-9,
            "{far} against {cap}"
        );
        // With three cities no descriptor is tried: the geometric mean level.
        let m3 = LevelModel::fit(cities[..3].to_vec(), true);
        assert!(m3.descriptor.is_none());
        let gm = ((5.0f64.ln() + 7.0f64.ln() + 10.0f64.ln()) / 3.0).exp();
        assert!((m3.log_level(&new).exp() - gm).abs() < 1e-9);
        // Without descriptors offered, the mean even with five cities.
        assert!(LevelModel::fit(cities, false).descriptor.is_none());
    }

    #[test]
    fn a_cap_holds_the_structure_back_only_where_heights_are_expected_tight() {
        // Two cities with the same wide raw structure (IQR 1): in the first the truth follows
        // it, in the second it scatters tightly around the level whatever the structure says.
        // Only the second is expected tight (0.05 against 1.0).
        let s: Vec<f64> = (0..40).map(|i| (i as f64 / 39.0 - 0.5) * 2.0).collect();
        let follows: Vec<f64> = s.iter().map(|v| (2.0 + v).exp()).collect();
        let flat: Vec<f64> = (0..40)
            .map(|i| (2.0 + 0.1 * (i as f64 * 2.7).sin()).exp())
            .collect();
        let held = [(s.clone(), 2.0, follows), (s.clone(), 2.0, flat)];
        // Without a cap one weight serves both, and the flat city pulls it below 1.
        let w = choose_structure_weight(&held);
        assert!(w < 1.0, "weight {w}");
        let (w_cap, kappa) = choose_capped_weight(&held, &[1.0, 0.05]);
        let kappa = kappa.expect("a cap beats one compromise weight");
        assert_eq!(
            w_cap, 1.0,
            "the structure at full weight where it is expected wide"
        );
        assert!(
            kappa * 0.05 / iqr(&s) < 0.1,
            "kappa {kappa} leaves the tight city little"
        );
        // The cap's factor on a region: 1 when its structure is no wider than expected.
        let cap = SpreadCap {
            intercept: 0.1,
            slope: 0.5,
            kappa: 1.0,
        };
        assert!((cap.factor(Some(1.0), &s) - 0.6 / iqr(&s)).abs() < 1e-12);
        assert_eq!(cap.factor(Some(4.0), &s), 1.0);
        assert_eq!(cap.factor(None, &s), 1.0);
        assert_eq!(
            SpreadCap::line(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]),
            (1.0, 2.0)
        );
    }

    #[test]
    fn structure_weight_follows_whether_the_structure_helps() {
        // Truth = level × e^s: the structure helps fully.
        let s = vec![-0.5, 0.0, 0.5, 1.0];
        let h: Vec<f64> = s.iter().map(|v: &f64| (2.0 + v).exp()).collect();
        assert_eq!(choose_structure_weight(&[(s.clone(), 2.0, h)]), 1.0);
        // Truth flat at the level: any structure hurts.
        let flat = vec![2.0f64.exp(); 4];
        assert_eq!(choose_structure_weight(&[(s, 2.0, flat)]), 0.0);
    }
}
