//! Local recalibration: a model trained on other cities, corrected by the buildings of the
//! target region whose height is known (a share of measured labels, or heights measured
//! directly from a sparse survey). Cities differ mostly by a smooth distortion of the height
//! scale (Amsterdam's tall centre, Wageningen's low suburbs) plus neighbourhood effects, so:
//!
//! 1. a global linear map `truth ≈ a + b · predicted`, fitted on the known buildings and shrunk
//!    toward the identity by `n / (n + prior_n)` so a handful of buildings cannot swing it. For
//!    a model with a city level ([`super::level`]) the map is in ln(height): the level is what
//!    a new city does not know, and it is a factor, so a few known buildings move it with a
//!    weaker prior (`prior_level_n`) than the slope;
//! 2. the known buildings' remaining residuals, spread to their neighbours by an exponential
//!    kernel and shrunk toward zero where few are near (a simple kriging of residuals);
//! 3. what is left, spread to buildings *alike* — of like footprint area and height, wherever
//!    they are — by a Gaussian kernel in (ln area, ln height): a model learnt elsewhere gets
//!    a size class wrong across a whole city (Linz's sheds, Chiyoda's slabs), which no map of
//!    the predicted height alone and no neighbourhood can see. Kept when leave-one-out on the
//!    known buildings says it helps;
//! 4. with 100 known buildings or more, what is still left, learnt by a small boosted model
//!    from the footprints' shape and surroundings ([`super::learnt`]): a kind of building
//!    the model gets wrong that size does not name. Kept when cross-fitting says it helps;
//! 5. intervals from the known buildings' leave-one-out (or out-of-fold) residuals (split
//!    conformal inside the target city, at the rank whose *expected* coverage is 90 %,
//!    [`expected_quantile`]),
//!    scaled by the model's own interval width — or by the height, when that is narrower and
//!    enough buildings are known ([`Difficulty`]) — and by how hard buildings alike proved to
//!    be: what makes a 90 % interval hold in a city the model never saw. With too few known
//!    buildings for the level, the model's own interval is shifted by the correction instead.

use ndarray::ArrayView2;
use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde::{Deserialize, Serialize};

use crate::stats::percentile::percentile_select;

/// Known buildings from which the intervals may follow the height rather than the model's
/// own widths ([`Difficulty`]).
pub const MIN_KNOWN_TO_CHOOSE_DIFFICULTY: usize = 100;

/// Settings of [`recalibrate`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalOptions {
    /// Pseudo-buildings of prior weight on "no correction" for the global map.
    pub prior_n: f64,
    /// Length scale (m) of the residual kernel, `exp(-d / scale)`.
    pub kernel_m: f64,
    /// Neighbours farther than this (m) are ignored.
    pub radius_m: f64,
    /// Prior weight (in kernel units) on zero local residual.
    pub prior_weight: f64,
    /// Miscoverage of the intervals (0.1: 90 %).
    pub alpha: f64,
    /// Map ln(height) rather than metres (models with a city level).
    #[serde(default)]
    pub log_scale: bool,
    /// Pseudo-buildings of prior weight on "no shift" of the level, in ln(height).
    #[serde(default = "default_prior_level_n")]
    pub prior_level_n: f64,
    /// Bandwidth of the kernel over buildings alike, in ln(area) and ln(height) alike
    /// (0.3: a third larger or smaller counts about 60 %).
    #[serde(default = "default_alike_bandwidth")]
    pub alike_bandwidth: f64,
    /// Prior weight (in kernel units) on zero residual among buildings alike; infinite
    /// turns the step off.
    #[serde(default = "default_alike_prior_weight")]
    pub alike_prior_weight: f64,
    /// Known buildings most alike that a building's correction averages over.
    #[serde(default = "default_alike_neighbours")]
    pub alike_neighbours: usize,
    /// Prior weight on the city's typical interval score among buildings alike, which
    /// widen or narrow the intervals of their kind; infinite turns it off.
    #[serde(default = "default_alike_scale_prior_weight")]
    pub alike_scale_prior_weight: f64,
    /// Known buildings from which a small boosted model of what is left learns from the
    /// footprints' shape and surroundings (step 4); `usize::MAX` turns it off.
    #[serde(default = "default_learnt_min_known")]
    pub learnt_min_known: usize,
    /// Pseudo-buildings of prior weight on "no learnt correction": it is shrunk by
    /// `n / (n + learnt_prior_n)`.
    #[serde(default = "default_learnt_prior_n")]
    pub learnt_prior_n: f64,
}

fn default_prior_level_n() -> f64 {
    3.0
}

fn default_alike_bandwidth() -> f64 {
    0.3
}

fn default_alike_prior_weight() -> f64 {
    5.0
}

fn default_alike_neighbours() -> usize {
    60
}

fn default_alike_scale_prior_weight() -> f64 {
    5.0
}

fn default_learnt_min_known() -> usize {
    100
}

fn default_learnt_prior_n() -> f64 {
    100.0
}

impl LocalOptions {
    /// The defaults for `model`: in ln(height) when it has a city level.
    pub fn for_model(model: &super::HeightModel) -> LocalOptions {
        LocalOptions {
            log_scale: model.meta.level.is_some(),
            ..LocalOptions::default()
        }
    }
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            prior_n: 10.0,
            kernel_m: 60.0,
            radius_m: 300.0,
            prior_weight: 1.0,
            alpha: 0.1,
            log_scale: false,
            prior_level_n: default_prior_level_n(),
            alike_bandwidth: default_alike_bandwidth(),
            alike_prior_weight: default_alike_prior_weight(),
            alike_neighbours: default_alike_neighbours(),
            alike_scale_prior_weight: default_alike_scale_prior_weight(),
            learnt_min_known: default_learnt_min_known(),
            learnt_prior_n: default_learnt_prior_n(),
        }
    }
}

/// What the recalibration did, for reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalSummary {
    /// Known buildings used.
    pub known: usize,
    /// The shrunk global map: `a + b · predicted`, or `exp(a) · predicted^b` when
    /// [`LocalSummary::log_scale`].
    pub intercept: f64,
    /// `b` of the map above (1 when the model's scale needs no change).
    pub slope: f64,
    /// Conformal multiplier of the difficulty scale ([`LocalSummary::difficulty`]); `None`
    /// when too few buildings were known for the level (the model's interval, moved with its
    /// prediction, is used then).
    pub interval_scale: Option<f64>,
    /// The map is in ln(height).
    #[serde(default)]
    pub log_scale: bool,
    /// Which map the known buildings carried.
    #[serde(default = "line")]
    pub map: MapKind,
    /// Which difficulty scale the intervals follow.
    #[serde(default)]
    pub difficulty: Difficulty,
    /// The correction among buildings alike in size was kept (leave-one-out).
    #[serde(default)]
    pub alike: bool,
    /// The correction learnt from the footprints' shape and surroundings was kept
    /// (cross-fitted).
    #[serde(default)]
    pub learnt: bool,
}

/// What an anchored interval's width follows (the known buildings' conformal quantile
/// multiplies it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    /// The model's own interval width, stretched by the map.
    #[default]
    Model,
    /// The corrected height: errors in proportion to it.
    Relative,
}

fn line() -> MapKind {
    MapKind::Line
}

impl LocalSummary {
    /// The map in words, e.g. `0.40 + 1.10 × predicted` or `1.32 × predicted^0.95`.
    pub fn map_text(&self) -> String {
        let chosen = match self.map {
            MapKind::Nothing => return "the model as it is (leave-one-out chose no change)".into(),
            MapKind::Shift => " (a shift, chosen by leave-one-out)",
            MapKind::Line => "",
        };
        let text = if self.log_scale {
            format!("{:.2} × predicted^{:.2}", self.intercept.exp(), self.slope)
        } else {
            format!("{:.2} + {:.2} × predicted", self.intercept, self.slope)
        };
        let alike = if self.alike {
            ", then by buildings alike in size"
        } else {
            ""
        };
        let learnt = if self.learnt {
            ", then by shape and surroundings"
        } else {
            ""
        };
        text + chosen + alike + learnt
    }

    /// How the intervals were set, e.g. `local intervals ×0.21 the model's half-width`.
    pub fn interval_text(&self) -> String {
        match (self.interval_scale, self.difficulty) {
            (None, _) => "too few for local intervals (the model's, moved)".into(),
            (Some(q), Difficulty::Model) => {
                format!("local intervals ×{q:.2} the model's half-width")
            }
            (Some(q), Difficulty::Relative) => {
                format!("local intervals ±{:.0} % of the height", 100.0 * q)
            }
        }
    }
}

/// Recalibrated heights and intervals for every building.
#[derive(Clone, Debug)]
pub struct Recalibrated {
    /// Corrected height (m) per building, in the order of the inputs.
    pub height_m: Vec<f64>,
    /// Lower bound (m) of the corrected interval.
    pub lo_m: Vec<f64>,
    /// Upper bound (m) of the corrected interval.
    pub hi_m: Vec<f64>,
    /// What the correction did.
    pub summary: LocalSummary,
}

/// Where each building is, how large and of what shape and surroundings, parallel to the
/// predictions: what the known buildings' residuals are spread by.
#[derive(Clone, Copy, Debug)]
pub struct Sites<'a> {
    /// Centroids in the region's working (metric) CRS.
    pub centroids: &'a [[f64; 2]],
    /// Footprint areas (m²); NaN where unknown (such a building is corrected by place only).
    pub area_m2: &'a [f64],
    /// Buildings × footprint features (shape and surroundings,
    /// [`crate::features::CityFeatures::footprint_features`]; NaN = missing) for step 4; no
    /// columns skips it.
    pub features: ArrayView2<'a, f64>,
}

/// Corrects `predicted` (with interval `lo`–`hi`) using the buildings whose `known` height is
/// given. Every building gets a corrected value, known ones included (their leave-one-out
/// value: a known building never corrects itself).
pub fn recalibrate(
    predicted: &[f64],
    lo: &[f64],
    hi: &[f64],
    sites: Sites<'_>,
    known: &[Option<f64>],
    opts: &LocalOptions,
) -> Recalibrated {
    let centroids = sites.centroids;
    let n = predicted.len();
    let k: Vec<usize> = (0..n)
        .filter(|&i| {
            known[i].is_some_and(f64::is_finite)
                && predicted[i].is_finite()
                && centroids[i][0].is_finite()
        })
        .collect();
    // In ln(height) the map and the residuals are relative; heights under 0.1 m are 0.1 m.
    let to = |v: f64| if opts.log_scale { v.max(0.1).ln() } else { v };
    // Back to metres, never negative.
    let back = |v: f64| if opts.log_scale { v.exp() } else { v.max(0.0) };
    let kx: Vec<f64> = k.iter().map(|&i| to(predicted[i])).collect();
    // The known heights in the map's scale as they are (step 4 learns from these); for the
    // global map, pulled in where far off.
    let raw: Vec<f64> = k.iter().map(|&i| to(known[i].expect("known"))).collect();
    let mut ky = raw.clone();
    if opts.log_scale {
        winsorise_residuals(&kx, &mut ky);
    }
    let prior_level_n = if opts.log_scale {
        opts.prior_level_n
    } else {
        opts.prior_n
    };
    // In metres (models without a city level) the line, as it always was.
    let kind = if opts.log_scale {
        choose_map(&kx, &ky, f64::exp, opts.prior_n, prior_level_n)
    } else {
        MapKind::Line
    };
    let (a, b) = Sums::of(&kx, &ky).map(kind, opts.prior_n, prior_level_n);
    let mapped: Vec<f64> = predicted.iter().map(|&p| a + b * to(p)).collect();
    let mut residual = vec![f64::NAN; n];
    for (j, &i) in k.iter().enumerate() {
        residual[i] = ky[j] - mapped[i];
    }
    let tree: RTree<GeomWithData<[f64; 2], usize>> = RTree::bulk_load(
        k.iter()
            .map(|&i| GeomWithData::new(centroids[i], i))
            .collect(),
    );
    let local: Vec<f64> = (0..n)
        .map(|i| {
            let c = centroids[i];
            if !c[0].is_finite() {
                return 0.0;
            }
            let (mut sw, mut swr) = (0.0, 0.0);
            for p in tree.locate_within_distance(c, opts.radius_m * opts.radius_m) {
                if p.data == i {
                    continue;
                }
                let d = (p.geom()[0] - c[0]).hypot(p.geom()[1] - c[1]);
                let w = (-d / opts.kernel_m).exp();
                sw += w;
                swr += w * residual[p.data];
            }
            swr / (sw + opts.prior_weight)
        })
        .collect();
    let placed: Vec<f64> = (0..n).map(|i| mapped[i] + local[i]).collect();
    // Steps 3 and 4 are kept only when they predict the known buildings better (each with the
    // value it gets left out of its own correction), in metres: a few known buildings in a
    // city the model sizes right would otherwise add their noise.
    let helps = |before: &[f64], correction: &[f64]| -> bool {
        let error = |with: bool| -> f64 {
            k.iter()
                .map(|&i| {
                    let v = before[i] + if with { correction[i] } else { 0.0 };
                    (back(v) - known[i].expect("known")).abs()
                })
                .sum()
        };
        error(true) < error(false)
    };
    let like = Alike::new(&placed, sites.area_m2, opts);
    let mut alike = vec![0.0; n];
    if opts.alike_prior_weight.is_finite() {
        let left: Vec<(usize, f64)> = k
            .iter()
            .zip(&ky)
            .map(|(&i, y)| (i, y - placed[i]))
            .collect();
        let fitted = like.mean(&left, 0.0, opts.alike_prior_weight);
        if helps(&placed, &fitted) {
            alike = fitted;
        }
    }
    let alikened: Vec<f64> = (0..n).map(|i| placed[i] + alike[i]).collect();
    // The known heights as they are: pulling in outliers protects the global map (step 1),
    // but a kind of building far off is what this step is for.
    let learnt = super::learnt::correction(sites.features, &alikened, &k, &raw, opts)
        .filter(|fitted| helps(&alikened, fitted));
    let height: Vec<f64> = (0..n)
        .map(|i| back(alikened[i] + learnt.as_ref().map_or(0.0, |l| l[i])))
        .collect();
    // The model's half-width in metres, stretched by the map's slope there, is the
    // difficulty scale (in ln(height) the map's derivative is b · e^a · p^(b - 1)).
    let stretch = |p: f64| {
        if opts.log_scale {
            b * a.exp() * p.max(0.1).powf(b - 1.0)
        } else {
            b
        }
    };
    let model_half: Vec<f64> = (0..n)
        .map(|i| (stretch(predicted[i]) * (hi[i] - lo[i]) / 2.0).max(0.5))
        .collect();
    // A model learnt elsewhere may know which buildings are hard here, or not (Chiyoda's
    // errors follow the height better than its model widths: 4.2× the block-CV error against
    // 4.5×): the relative scale, the corrected height itself, is the other candidate, and the
    // one whose conformal intervals are narrower at the median is used. Both cover 90 % in
    // expectation; picking the narrower is only safe with many known buildings — with 20, it
    // picks the luckier draw (Venice's 90 % intervals covered 81 %).
    let mut candidates = vec![(Difficulty::Model, model_half)];
    if k.len() >= MIN_KNOWN_TO_CHOOSE_DIFFICULTY {
        let relative: Vec<f64> = height.iter().map(|h| h.max(1.0)).collect();
        candidates.push((Difficulty::Relative, relative));
    }
    let (difficulty, q, half) = candidates
        .into_iter()
        .map(|(kind, scale)| {
            let (q, half) = half_widths(&scale, &height, known, &k, &like, opts);
            (kind, q, half)
        })
        .min_by(|x, y| {
            let median = |h: &[f64]| percentile_select(&mut h.to_vec(), 50.0);
            let (mx, my) = (median(&x.2), median(&y.2));
            // Infinite q (too few known) sorts last; the model's scale first on ties.
            (!x.1.is_finite(), mx)
                .partial_cmp(&(!y.1.is_finite(), my))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .expect("the model's scale is a candidate");
    let (lo_m, hi_m): (Vec<f64>, Vec<f64>) = if q.is_finite() {
        (0..n)
            .map(|i| ((height[i] - half[i]).max(0.0), height[i] + half[i]))
            .unzip()
    } else {
        (0..n)
            .map(|i| {
                // The model's own interval, moved with its prediction: by a factor in
                // ln(height), else by a shift.
                let (l, h) = if opts.log_scale {
                    let f = height[i] / predicted[i].max(0.1);
                    (lo[i] * f, hi[i] * f)
                } else {
                    let shift = height[i] - predicted[i];
                    (lo[i] + shift, hi[i] + shift)
                };
                (l.min(height[i]).max(0.0), h.max(height[i]))
            })
            .unzip()
    };
    Recalibrated {
        height_m: height,
        lo_m,
        hi_m,
        summary: LocalSummary {
            known: k.len(),
            intercept: a,
            slope: b,
            interval_scale: q.is_finite().then_some(q),
            difficulty,
            alike: alike.iter().any(|&v| v != 0.0),
            learnt: learnt.is_some(),
            log_scale: opts.log_scale,
            map: kind,
        },
    }
}

/// The score at fractional rank (n + 1)(1 - alpha) of the `n` sorted scores, interpolated
/// between its neighbours: a new building exchangeable with the known ones is covered with
/// probability 1 - alpha on average. Split conformal's ⌈(n + 1)(1 - alpha)⌉-th score covers
/// *at least* 1 - alpha, which with a city's 17 known buildings means the largest score — one
/// odd building sets every interval (Delfshaven's 90 % intervals covered 94 %). Infinite when
/// the rank passes n (fewer than 9 scores at 90 %).
fn expected_quantile(scores: &[f64], alpha: f64) -> f64 {
    let n = scores.len();
    let rank = (n as f64 + 1.0) * (1.0 - alpha);
    if n == 0 || rank > n as f64 + 1e-9 {
        return f64::INFINITY;
    }
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let below = (rank.floor() as usize).clamp(1, n);
    let frac = rank - below as f64;
    if below == n || frac < 1e-12 {
        return s[below - 1];
    }
    s[below - 1] + frac * (s[below] - s[below - 1])
}

/// The interval half-widths (m) around `height` for the difficulty `scale`: the conformal
/// quantile `q` of the known buildings' scores `|known - height| / scale`, each score first
/// divided by how hard buildings alike proved (their mean score over the city's, step 5), and
/// `q · scale · hardness` per building. `q` is infinite when too few buildings are known.
fn half_widths(
    scale: &[f64],
    height: &[f64],
    known: &[Option<f64>],
    k: &[usize],
    like: &Alike,
    opts: &LocalOptions,
) -> (f64, Vec<f64>) {
    let raw: Vec<f64> = k
        .iter()
        .map(|&i| (known[i].expect("known") - height[i]).abs() / scale[i])
        .collect();
    let typical = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
    let harder: Vec<f64> = if opts.alike_scale_prior_weight.is_finite() && typical > 0.0 {
        let pairs: Vec<(usize, f64)> = k.iter().copied().zip(raw.iter().copied()).collect();
        like.mean(&pairs, typical, opts.alike_scale_prior_weight)
            .into_iter()
            .map(|m| m / typical)
            .collect()
    } else {
        vec![1.0; scale.len()]
    };
    let scores: Vec<f64> = k.iter().zip(&raw).map(|(&i, z)| z / harder[i]).collect();
    let q = expected_quantile(&scores, opts.alpha);
    let half = scale.iter().zip(&harder).map(|(s, h)| q * s * h).collect();
    (q, half)
}

/// Buildings placed by likeness — (ln area, ln height) over the bandwidth — for steps 3 and
/// 5 of the module: a kernel mean over the known buildings most alike, itself left out,
/// shrunk toward a prior value.
struct Alike {
    /// Each building's point; `None` without an area or a usable height.
    points: Vec<Option<[f64; 2]>>,
    neighbours: usize,
}

impl Alike {
    /// `height` in the map's scale (ln(height) when `opts.log_scale`).
    fn new(height: &[f64], area_m2: &[f64], opts: &LocalOptions) -> Alike {
        let points = height
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let a = area_m2.get(i).copied().unwrap_or(f64::NAN);
                let h = if opts.log_scale { v } else { v.max(0.1).ln() };
                let p = [
                    a.max(1.0).ln() / opts.alike_bandwidth,
                    h / opts.alike_bandwidth,
                ];
                (a.is_finite() && p[1].is_finite()).then_some(p)
            })
            .collect();
        Alike {
            points,
            neighbours: opts.alike_neighbours,
        }
    }

    /// Per building, `(Σ w·v + prior_weight · prior) / (Σ w + prior_weight)` over the known
    /// `(building, value)` pairs most alike, `w = exp(-d² / 2)`; `prior` for a building
    /// without a point.
    fn mean(&self, known: &[(usize, f64)], prior: f64, prior_weight: f64) -> Vec<f64> {
        let tree: RTree<GeomWithData<[f64; 2], (usize, f64)>> = RTree::bulk_load(
            known
                .iter()
                .filter_map(|&(i, v)| self.points[i].map(|p| GeomWithData::new(p, (i, v))))
                .collect(),
        );
        (0..self.points.len())
            .map(|i| {
                let Some(p) = self.points[i] else {
                    return prior;
                };
                let (mut sw, mut swv) = (prior_weight, prior_weight * prior);
                for q in tree
                    .nearest_neighbor_iter(&p)
                    .filter(|q| q.data.0 != i)
                    .take(self.neighbours)
                {
                    let d2 = (q.geom()[0] - p[0]).powi(2) + (q.geom()[1] - p[1]).powi(2);
                    let w = (-0.5 * d2).exp();
                    sw += w;
                    swv += w * q.data.1;
                }
                swv / sw
            })
            .collect()
    }
}

/// Which global map the known buildings carry: chosen by leave-one-out in ln(height) (the
/// map that predicts each known building best from the others, in metres, simplest on ties),
/// so a handful whose heights do not agree on a shift or a slope leaves a model that was right
/// as it is. A sample that agrees but is biased (a city's tagged landmarks) is not caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// The model as it is.
    Nothing,
    /// One shift (a factor in ln(height)).
    Shift,
    /// A shift and a slope.
    Line,
}

/// Running sums of known (predicted, true) pairs, so a map without one pair costs O(1).
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
}

impl Sums {
    fn of(x: &[f64], y: &[f64]) -> Sums {
        let mut s = Sums::default();
        for (a, b) in x.iter().zip(y) {
            s.n += 1.0;
            s.x += a;
            s.y += b;
            s.xx += a * a;
            s.xy += a * b;
        }
        s
    }

    fn without(&self, x: f64, y: f64) -> Sums {
        Sums {
            n: self.n - 1.0,
            x: self.x - x,
            y: self.y - y,
            xx: self.xx - x * x,
            xy: self.xy - x * y,
        }
    }

    /// The map `y ≈ a + b x` of `kind`: least squares with the slope shrunk toward 1 by
    /// `n / (n + prior_n)` and the mean shift toward 0 by `n / (n + prior_level_n)`; slope kept
    /// in [0.5, 3] so a few buildings cannot flip or explode the scale. With fewer than three
    /// points, or no spread in `x`, a line is only the mean shift (shrunk).
    fn map(&self, kind: MapKind, prior_n: f64, prior_level_n: f64) -> (f64, f64) {
        if kind == MapKind::Nothing || self.n < 0.5 {
            return (0.0, 1.0);
        }
        let n = self.n;
        let shrink = n / (n + prior_n);
        let shift = n / (n + prior_level_n);
        let (mx, my) = (self.x / n, self.y / n);
        let sxx = self.xx - n * mx * mx;
        let sxy = self.xy - n * mx * my;
        if kind == MapKind::Shift || n < 2.5 || sxx <= 1e-9 {
            return (shift * (my - mx), 1.0);
        }
        let b_fit = (sxy / sxx).clamp(0.5, 3.0);
        let b = 1.0 + shrink * (b_fit - 1.0);
        // The line passes through the (shrunk) mean point.
        let a = (mx + shift * (my - mx)) - b * mx;
        (a, b)
    }
}

/// Pulls each known `y` whose residual `y - x` lies more than two robust standard deviations
/// (1.4826 × MAD) from the median residual back to that bound. A shed or a mast among a
/// few known buildings is a large residual in ln(height) and would otherwise move the whole
/// city's level; the conformal scores still use the true heights.
fn winsorise_residuals(x: &[f64], y: &mut [f64]) {
    if x.len() < 3 {
        return;
    }
    let mut r: Vec<f64> = x.iter().zip(y.iter()).map(|(a, b)| b - a).collect();
    let med = percentile_select(&mut r.clone(), 50.0);
    r.iter_mut().for_each(|v| *v = (*v - med).abs());
    let spread = 2.0 * 1.4826 * percentile_select(&mut r, 50.0);
    for (a, b) in x.iter().zip(y.iter_mut()) {
        *b = a + (*b - a).clamp(med - spread, med + spread);
    }
}

/// [`MapKind::Line`] on the pairs.
#[cfg(test)]
fn global_map(x: &[f64], y: &[f64], prior_n: f64, prior_level_n: f64) -> (f64, f64) {
    Sums::of(x, y).map(MapKind::Line, prior_n, prior_level_n)
}

/// The map kind with the smallest leave-one-out error in metres (`back` turns the scale of
/// `x` and `y` into metres); the simpler on ties.
fn choose_map(
    x: &[f64],
    y: &[f64],
    back: impl Fn(f64) -> f64,
    prior_n: f64,
    prior_level_n: f64,
) -> MapKind {
    let all = Sums::of(x, y);
    let loo = |kind: MapKind| -> f64 {
        x.iter()
            .zip(y)
            .map(|(&xi, &yi)| {
                let (a, b) = all.without(xi, yi).map(kind, prior_n, prior_level_n);
                (back(a + b * xi) - back(yi)).abs()
            })
            .sum()
    };
    let mut best = (MapKind::Nothing, loo(MapKind::Nothing));
    for kind in [MapKind::Shift, MapKind::Line] {
        let e = loo(kind);
        if e < best.1 - 1e-9 * best.1.abs() {
            best = (kind, e);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    /// `n` centroids scattered at random over a 3 km square (`seed` picks which).
    fn scattered(n: u64, seed: u64) -> Vec<[f64; 2]> {
        use crate::stats::seeded::{mix, unit};
        (0..n)
            .map(|i| {
                [
                    unit(mix(seed, i, 0)) * 3000.0,
                    unit(mix(seed, i, 1)) * 3000.0,
                ]
            })
            .collect()
    }

    /// A sum of 12 uniforms less 6: roughly a standard normal draw, building `i` of `seed`.
    fn normal(seed: u64, i: u64) -> f64 {
        use crate::stats::seeded::{mix, unit};
        (0..12).map(|k| unit(mix(seed, i, k))).sum::<f64>() - 6.0
    }

    /// Sites without footprint features: steps 1–3 alone.
    static NO_FEATURES: std::sync::LazyLock<Array2<f64>> =
        std::sync::LazyLock::new(|| Array2::zeros((0, 0)));

    #[test]
    fn global_map_shrinks_toward_identity() {
        // Truth = 2 * predicted: 100 known buildings pull the slope near 2, 3 barely move it.
        let x: Vec<f64> = (0..100).map(|v| 5.0 + v as f64 * 0.2).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        let (a, b) = global_map(&x, &y, 10.0, 10.0);
        assert!((b - (1.0 + 100.0 / 110.0)).abs() < 1e-9, "{b}");
        assert!((a + b * 10.0 - 2.0 * 10.0).abs() < 2.5, "{a}");
        let (_, b3) = global_map(&x[..3], &y[..3], 10.0, 10.0);
        assert!(b3 < 1.3, "{b3}");
        assert_eq!(global_map(&[], &[], 10.0, 10.0), (0.0, 1.0));
    }

    #[test]
    fn neighbours_correct_a_local_bias_and_intervals_cover() {
        // A street whose buildings are all 6 m taller than predicted, one building in four known.
        let n = 200;
        let centroids: Vec<[f64; 2]> = (0..n).map(|i| [i as f64 * 10.0, 0.0]).collect();
        let truth: Vec<f64> = (0..n).map(|i| 10.0 + (i % 7) as f64).collect();
        let pred: Vec<f64> = truth.iter().map(|t| t - 6.0).collect();
        let lo: Vec<f64> = pred.iter().map(|p| p - 2.0).collect();
        let hi: Vec<f64> = pred.iter().map(|p| p + 2.0).collect();
        let known: Vec<Option<f64>> = (0..n).map(|i| (i % 4 == 0).then_some(truth[i])).collect();
        let area = vec![f64::NAN; n];
        let sites = Sites {
            centroids: &centroids,
            area_m2: &area,
            features: NO_FEATURES.view(),
        };
        let r = recalibrate(&pred, &lo, &hi, sites, &known, &LocalOptions::default());
        let unknown: Vec<usize> = (0..n).filter(|i| i % 4 != 0).collect();
        let mae = unknown
            .iter()
            .map(|&i| (r.height_m[i] - truth[i]).abs())
            .sum::<f64>()
            / unknown.len() as f64;
        assert!(mae < 2.5, "MAE after recalibration {mae} (6 before)");
        let covered = unknown
            .iter()
            .filter(|&&i| r.lo_m[i] <= truth[i] && truth[i] <= r.hi_m[i])
            .count() as f64
            / unknown.len() as f64;
        assert!(covered >= 0.8, "{covered}");
        assert!(r.summary.interval_scale.is_some());
    }

    /// A city of 2 000 buildings with log-normal scatter around the model (σ 0.25), either at
    /// the model's level or 1.8× taller; 20 known.
    fn city(factor: f64) -> (Vec<f64>, Vec<f64>, Vec<[f64; 2]>) {
        use crate::stats::seeded::{mix, unit};
        let n = 2000;
        let pred: Vec<f64> = (0..n).map(|i| 4.0 + 20.0 * unit(mix(1, i, 0))).collect();
        let truth: Vec<f64> = (0..n)
            .map(|i| {
                // Sum of uniforms: roughly normal, σ 0.25.
                let z = normal(2, i);
                pred[i as usize] * factor * (0.25 * z).exp()
            })
            .collect();
        let centroids = scattered(n, 3);
        (pred, truth, centroids)
    }

    #[test]
    fn twenty_known_buildings_fix_a_wrong_level_and_leave_a_right_one() {
        let opts = LocalOptions {
            log_scale: true,
            ..LocalOptions::default()
        };
        for factor in [1.0, 1.8] {
            let (pred, truth, centroids) = city(factor);
            let n = pred.len();
            let known: Vec<Option<f64>> =
                (0..n).map(|i| (i % 100 == 0).then_some(truth[i])).collect();
            let lo: Vec<f64> = pred.iter().map(|p| p * 0.6).collect();
            let hi: Vec<f64> = pred.iter().map(|p| p * 1.6).collect();
            let area: Vec<f64> = (0..n).map(|i| 40.0 + (i % 37) as f64 * 10.0).collect();
            let sites = Sites {
                centroids: &centroids,
                area_m2: &area,
                features: NO_FEATURES.view(),
            };
            let r = recalibrate(&pred, &lo, &hi, sites, &known, &opts);
            let mae = |h: &[f64]| {
                let rows: Vec<usize> = (0..n).filter(|i| i % 100 != 0).collect();
                rows.iter().map(|&i| (h[i] - truth[i]).abs()).sum::<f64>() / rows.len() as f64
            };
            let (before, after) = (mae(&pred), mae(&r.height_m));
            assert_eq!(r.summary.known, 20);
            if factor == 1.0 {
                // Right already: the 20 must not make it noticeably worse.
                assert!(after <= before * 1.03, "{before:.2} -> {after:.2} m");
            } else {
                // 80 % too low: the level moves most of the way.
                assert!(after < 0.6 * before, "{before:.2} -> {after:.2} m");
                assert_ne!(r.summary.map, MapKind::Nothing);
            }
        }
    }

    #[test]
    fn buildings_alike_in_size_correct_a_size_class_the_model_got_wrong() {
        // Sheds and garages (under 60 m²) predicted twice their height, everywhere in the
        // city, the rest right up to a σ 0.25 scatter; one building in twenty known. No place
        // and no map of the predicted height alone sees the sheds: their size does.
        use crate::stats::seeded::{mix, unit};
        let n = 3000;
        let area: Vec<f64> = (0..n)
            .map(|i| 20.0 * 100f64.powf(unit(mix(4, i, 0))))
            .collect();
        let truth: Vec<f64> = (0..n)
            .map(|i| {
                let z = normal(5, i);
                (1.5 * area[i as usize].ln() - 1.0) * (0.25 * z).exp()
            })
            .collect();
        let pred: Vec<f64> = (0..n as usize)
            .map(|i| {
                let typical = 1.5 * area[i].ln() - 1.0;
                if area[i] < 60.0 {
                    2.0 * typical
                } else {
                    typical
                }
            })
            .collect();
        let centroids = scattered(n, 6);
        let known: Vec<Option<f64>> = (0..n as usize)
            .map(|i| (i % 20 == 0).then_some(truth[i]))
            .collect();
        let lo: Vec<f64> = pred.iter().map(|p| p * 0.6).collect();
        let hi: Vec<f64> = pred.iter().map(|p| p * 1.6).collect();
        let sites = Sites {
            centroids: &centroids,
            area_m2: &area,
            features: NO_FEATURES.view(),
        };
        let sheds_mae = |opts: &LocalOptions| {
            let r = recalibrate(&pred, &lo, &hi, sites, &known, opts);
            let rows: Vec<usize> = (0..n as usize)
                .filter(|&i| i % 20 != 0 && area[i] < 60.0)
                .collect();
            let e = rows.iter().map(|&i| (r.height_m[i] - truth[i]).abs());
            e.sum::<f64>() / rows.len() as f64
        };
        let with = LocalOptions {
            log_scale: true,
            ..LocalOptions::default()
        };
        let without = LocalOptions {
            alike_prior_weight: f64::INFINITY,
            ..with
        };
        let (before, after) = (sheds_mae(&without), sheds_mae(&with));
        assert!(after < 0.6 * before, "sheds {before:.2} -> {after:.2} m");
    }

    #[test]
    fn known_buildings_teach_a_kind_the_model_got_wrong_and_noise_teaches_nothing() {
        // 3 000 buildings, one in ten known, scattered at random (no place to learn from),
        // of sizes unrelated to the error. A third are of a kind (a footprint feature says
        // which, e.g. courtyard blocks) that is 1.6× taller than predicted; the others are
        // right. Beside it, a feature of pure noise.
        use crate::stats::seeded::{mix, unit};
        let n = 3000u64;
        let pred: Vec<f64> = (0..n).map(|i| 4.0 + 20.0 * unit(mix(12, i, 0))).collect();
        let kind: Vec<bool> = (0..n).map(|i| unit(mix(13, i, 0)) < 1.0 / 3.0).collect();
        let truth: Vec<f64> = (0..n as usize)
            .map(|i| {
                let z = normal(14, i as u64);
                pred[i] * if kind[i] { 1.6 } else { 1.0 } * (0.1 * z).exp()
            })
            .collect();
        let centroids = scattered(n, 15);
        let area: Vec<f64> = (0..n).map(|i| 50.0 + 500.0 * unit(mix(16, i, 0))).collect();
        let noise = |i: usize| unit(mix(17, i as u64, 0));
        let informative = Array2::from_shape_fn((n as usize, 2), |(i, j)| match j {
            0 => f64::from(u8::from(kind[i])),
            _ => noise(i),
        });
        let uninformative = Array2::from_shape_fn((n as usize, 1), |(i, _)| noise(i));
        let known: Vec<Option<f64>> = (0..n as usize)
            .map(|i| (i % 10 == 0).then_some(truth[i]))
            .collect();
        let lo: Vec<f64> = pred.iter().map(|p| p * 0.6).collect();
        let hi: Vec<f64> = pred.iter().map(|p| p * 1.6).collect();
        let opts = LocalOptions {
            log_scale: true,
            ..LocalOptions::default()
        };
        let run = |features: &Array2<f64>, truth: &[f64]| {
            let known: Vec<Option<f64>> = known
                .iter()
                .enumerate()
                .map(|(i, k)| k.map(|_| truth[i]))
                .collect();
            let sites = Sites {
                centroids: &centroids,
                area_m2: &area,
                features: features.view(),
            };
            let r = recalibrate(&pred, &lo, &hi, sites, &known, &opts);
            let rows: Vec<usize> = (0..n as usize).filter(|i| i % 10 != 0).collect();
            let mae = rows
                .iter()
                .map(|&i| (r.height_m[i] - truth[i]).abs())
                .sum::<f64>()
                / rows.len() as f64;
            let covered = rows
                .iter()
                .filter(|&&i| r.lo_m[i] <= truth[i] && truth[i] <= r.hi_m[i])
                .count() as f64
                / rows.len() as f64;
            // How far the kind is still off (ln ratio to the truth, mean over its buildings).
            let of_kind: Vec<usize> = rows.iter().copied().filter(|&i| kind[i]).collect();
            let off = of_kind
                .iter()
                .map(|&i| (r.height_m[i] / truth[i]).ln())
                .sum::<f64>()
                / of_kind.len() as f64;
            (mae, covered, r.summary.learnt, off)
        };
        let (before, _, learnt, off_before) = run(&NO_FEATURES, &truth);
        assert!(!learnt);
        let (after, covered, learnt, off_after) = run(&informative, &truth);
        assert!(learnt, "the kind's feature was not used");
        // 300 known shrink the step to 3/4, and the noise (σ 0.1, ~1.1 m) stays.
        assert!(after < 0.6 * before, "{before:.2} -> {after:.2} m");
        assert!(
            off_after.abs() < 0.35 * off_before.abs(),
            "the kind off by {off_before:+.3} -> {off_after:+.3} in ln(height)"
        );
        assert!((0.85..=0.95).contains(&covered), "coverage {covered}");
        // Without a kind, only noise to learn from: no worse than without features.
        let plain: Vec<f64> = (0..n as usize)
            .map(|i| truth[i] / if kind[i] { 1.6 } else { 1.0 })
            .collect();
        let (before, ..) = run(&NO_FEATURES, &plain);
        let (after, ..) = run(&uninformative, &plain);
        assert!(after <= 1.01 * before, "noise {before:.3} -> {after:.3} m");
    }

    #[test]
    fn intervals_follow_whichever_scale_the_errors_follow() {
        // 3 000 buildings, one in ten known. Errors in ln(height) of spread σ_i that differs
        // per building (0.05 to 0.45); the model's interval either knows σ_i or is noise.
        use crate::stats::seeded::{mix, unit};
        let n = 3000u64;
        let pred: Vec<f64> = (0..n).map(|i| 4.0 + 20.0 * unit(mix(7, i, 0))).collect();
        let sigma: Vec<f64> = (0..n).map(|i| 0.05 + 0.4 * unit(mix(8, i, 0))).collect();
        let truth: Vec<f64> = (0..n as usize)
            .map(|i| {
                let z = normal(9, i as u64);
                pred[i] * (sigma[i] * z).exp()
            })
            .collect();
        let centroids = scattered(n, 10);
        let area = vec![f64::NAN; n as usize];
        let sites = Sites {
            centroids: &centroids,
            area_m2: &area,
            features: NO_FEATURES.view(),
        };
        let known: Vec<Option<f64>> = (0..n as usize)
            .map(|i| (i % 10 == 0).then_some(truth[i]))
            .collect();
        let opts = LocalOptions {
            log_scale: true,
            ..LocalOptions::default()
        };
        let informed: Vec<f64> = (0..n as usize).map(|i| 1.6 * sigma[i] * pred[i]).collect();
        let noise: Vec<f64> = (0..n)
            .map(|i| 0.5 * pred[i as usize] * 8f64.powf(unit(mix(11, i, 0))))
            .collect();
        for (half, expected) in [(informed, Difficulty::Model), (noise, Difficulty::Relative)] {
            let lo: Vec<f64> = pred.iter().zip(&half).map(|(p, h)| p - h).collect();
            let hi: Vec<f64> = pred.iter().zip(&half).map(|(p, h)| p + h).collect();
            let r = recalibrate(&pred, &lo, &hi, sites, &known, &opts);
            assert_eq!(r.summary.difficulty, expected);
            let rows: Vec<usize> = (0..n as usize).filter(|i| i % 10 != 0).collect();
            let covered = rows
                .iter()
                .filter(|&&i| r.lo_m[i] <= truth[i] && truth[i] <= r.hi_m[i])
                .count() as f64
                / rows.len() as f64;
            assert!((0.85..=0.95).contains(&covered), "{expected:?}: {covered}");
        }
    }

    #[test]
    fn expected_quantile_interpolates_the_conformal_rank() {
        let scores: Vec<f64> = (1..=17).rev().map(f64::from).collect();
        // (17 + 1) × 0.9 = 16.2: a fifth of the way from the 16th score to the 17th.
        assert!((expected_quantile(&scores, 0.1) - 16.2).abs() < 1e-9);
        let nineteen: Vec<f64> = (1..=19).map(f64::from).collect();
        assert!((expected_quantile(&nineteen, 0.1) - 18.0).abs() < 1e-9);
        assert!(expected_quantile(&scores[..8], 0.1).is_infinite());
        assert!(expected_quantile(&[], 0.1).is_infinite());
    }

    #[test]
    fn leave_one_out_picks_the_map_the_data_carries() {
        // Truth is the prediction: nothing beats nothing. Truth is twice the prediction
        // (a pure shift in ln): a shift or a line, never nothing.
        let x: Vec<f64> = (0..30).map(|i| (3.0 + i as f64).ln()).collect();
        let same = choose_map(&x, &x, f64::exp, 10.0, 3.0);
        assert_eq!(same, MapKind::Nothing);
        let twice: Vec<f64> = x.iter().map(|v| v + 2f64.ln()).collect();
        assert_ne!(
            choose_map(&x, &twice, f64::exp, 10.0, 3.0),
            MapKind::Nothing
        );
        // Removing a pair from the sums is the same as never adding it.
        let all = Sums::of(&x, &twice).without(x[3], twice[3]);
        let mut xs = x.clone();
        let mut ys = twice.clone();
        xs.remove(3);
        ys.remove(3);
        let direct = Sums::of(&xs, &ys);
        let (a1, b1) = all.map(MapKind::Line, 10.0, 3.0);
        let (a2, b2) = direct.map(MapKind::Line, 10.0, 3.0);
        assert!((a1 - a2).abs() < 1e-9 && (b1 - b2).abs() < 1e-9);
    }
}
