//! Ablation under leave-one-city-out: what each training choice does to a city the model never
//! saw, measured on the same folds over several seeds (one city's error moves by ±0.3 m with
//! the seed, so a single run cannot tell a 5 % gain from noise).
//!
//! Only the point model is trained (no intervals): the question is the error of the height.

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use super::cv::{cross_validate, Scheme};
pub use super::metrics::{AblationCity, AblationRow, Spread};
use crate::error::{Error, Result};
use crate::features::{relative, wide_context, CityFeatures};
use crate::model::boosting::{GbmParams, Loss};
use crate::model::train::{LevelMode, TrainOptions};
use crate::model::ModelKind;
use crate::progress::Progress;

/// One change to the default training, tried alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The options as given (the row the others are compared with).
    Default,
    /// A random forest instead of gradient boosting.
    Forest,
    /// Pseudo-Huber point loss (slope 1 m).
    Huber,
    /// Squared error of ln(1 + height).
    SquaredLog,
    /// Gamma deviance with a log link.
    Gamma,
    /// No monotone constraint (the default's height may only grow with the built-up ratio).
    Unconstrained,
    /// Training buildings weighted by their resemblance to the held-out city.
    DomainWeights,
    /// District-scale context (0.5 and 1 km windows) added.
    WideContext,
    /// Percentiles within the city of size and density features added.
    CityRanks,
    /// Leaves linear in their path's features (slope penalty [`LINEAR_LEAF_PENALTY`]): trends
    /// extrapolated past the training range instead of held flat.
    LinearLeaves,
    /// Absolute heights: no city level (the default before the roof-top cities).
    AbsoluteLevel,
    /// A new city at the training cities' mean level (no descriptor).
    MeanLevel,
    /// The structure at full weight (no nested choice of its weight).
    FullStructure,
    /// The structure weight never capped by the footprint-area spread (the default caps it).
    NoSpreadCap,
}

/// Slope penalty of [`Variant::LinearLeaves`]. Of 1, 10, 100 and 1000 (seed 1, roof-p70 cities)
/// none beat constant leaves on the mean of the four cities; 1 extrapolated wildly (Amsterdam's
/// RMSE 22 m), 1000 is nearly constant leaves, 100 sits between.
pub const LINEAR_LEAF_PENALTY: f64 = 100.0;

impl Variant {
    /// Every variant but [`Variant::Default`], in table order.
    pub const ALL: [Variant; 13] = [
        Variant::Forest,
        Variant::Huber,
        Variant::SquaredLog,
        Variant::Gamma,
        Variant::Unconstrained,
        Variant::DomainWeights,
        Variant::WideContext,
        Variant::CityRanks,
        Variant::LinearLeaves,
        Variant::AbsoluteLevel,
        Variant::MeanLevel,
        Variant::FullStructure,
        Variant::NoSpreadCap,
    ];

    /// The name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Forest => "forest",
            Variant::Huber => "huber",
            Variant::SquaredLog => "squared-log",
            Variant::Gamma => "gamma",
            Variant::Unconstrained => "unconstrained",
            Variant::DomainWeights => "domain-weights",
            Variant::WideContext => "wide-context",
            Variant::CityRanks => "city-ranks",
            Variant::LinearLeaves => "linear-leaves",
            Variant::AbsoluteLevel => "absolute-level",
            Variant::MeanLevel => "mean-level",
            Variant::FullStructure => "full-structure",
            Variant::NoSpreadCap => "no-spread-cap",
        }
    }

    /// One line on what the variant changes.
    pub fn meaning(&self) -> &'static str {
        match self {
            Variant::Default => "the options as given",
            Variant::Forest => "random forest instead of gradient boosting",
            Variant::Huber => "pseudo-Huber loss (slope 1 m)",
            Variant::SquaredLog => "squared error of ln(1 + height): relative errors",
            Variant::Gamma => "gamma deviance, log link: relative errors",
            Variant::Unconstrained => {
                "no monotone constraint (the default: height non-decreasing in the built-up ratio)"
            }
            Variant::DomainWeights => {
                "training buildings weighted by a classifier's odds of being from the held-out city"
            }
            Variant::WideContext => "adds counts, built-up ratio and mean area in 0.5 and 1 km windows",
            Variant::CityRanks => "adds each building's percentile in its city of area, perimeter, built-up ratio, neighbour count and block area",
            Variant::LinearLeaves => "leaves linear in their path's features (slope penalty 100): trends extrapolated past the training range",
            Variant::AbsoluteLevel => "trees learn absolute heights: no city level (the default before)",
            Variant::MeanLevel => "a new city at the training cities' mean level, no city-wide descriptor",
            Variant::FullStructure => "the within-city structure at full weight, not chosen by nested leave-one-city-out",
            Variant::NoSpreadCap => "the structure weight not capped by the height spread the footprint-area spread predicts (the default caps it)",
        }
    }

    /// The variant named `s` (`all` is not a variant: the caller expands it).
    pub fn parse(s: &str) -> Result<Variant> {
        std::iter::once(Variant::Default)
            .chain(Variant::ALL)
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                Error::invalid(format!(
                    "unknown ablation variant '{s}' (one of: all, {})",
                    names.join(", ")
                ))
            })
    }

    /// `base` with this variant's change, checked like any other options (a change to the
    /// gbm hyperparameters goes through their builder).
    pub fn options(&self, base: &TrainOptions) -> Result<TrainOptions> {
        let mut o = base.clone();
        let gbm = GbmParams::from(base.gbm.clone());
        let gbm = match self {
            Variant::Huber => Some(gbm.loss(Loss::PseudoHuber { slope: 1.0 })),
            Variant::SquaredLog => Some(gbm.loss(Loss::SquaredLogError)),
            Variant::Gamma => Some(gbm.loss(Loss::Gamma)),
            Variant::Unconstrained => Some(gbm.increasing(Vec::new())),
            Variant::LinearLeaves => Some(gbm.linear_leaves(Some(LINEAR_LEAF_PENALTY))),
            Variant::Default
            | Variant::Forest
            | Variant::DomainWeights
            | Variant::WideContext
            | Variant::CityRanks
            | Variant::AbsoluteLevel
            | Variant::MeanLevel
            | Variant::FullStructure
            | Variant::NoSpreadCap => None,
        };
        if let Some(gbm) = gbm {
            o.gbm = gbm.check()?;
        }
        match self {
            Variant::Forest => o.kind = ModelKind::Forest,
            Variant::DomainWeights => o.domain_weights = true,
            Variant::WideContext => o.wide_context = true,
            Variant::AbsoluteLevel => o.level = LevelMode::Absolute,
            Variant::MeanLevel => o.level = LevelMode::MeanLevel,
            Variant::FullStructure => o.level = LevelMode::FullStructure,
            Variant::NoSpreadCap => o.spread_cap = false,
            Variant::Default
            | Variant::CityRanks
            | Variant::Huber
            | Variant::SquaredLog
            | Variant::Gamma
            | Variant::Unconstrained
            | Variant::LinearLeaves => {}
        }
        o.check()?;
        Ok(o)
    }
}

/// Leave-one-city-out of [`Variant::Default`] and each of `variants` with every seed in
/// `seeds` (each seed replaces `base.seed`); the same cities and folds for all.
pub fn ablate(
    cities: &[CityFeatures],
    variants: &[Variant],
    seeds: &[u64],
    base: &TrainOptions,
    progress: &Progress,
) -> Result<Vec<AblationRow>> {
    if seeds.is_empty() {
        return Err(Error::invalid("an ablation needs at least one seed"));
    }
    let wide = wide_context::names();
    if variants.contains(&Variant::WideContext)
        && !cities
            .iter()
            .all(|c| wide.iter().all(|n| c.names.contains(n)))
    {
        return Err(Error::invalid(
            "the wide-context variant needs the cities' features computed with FeatureOptions { wide_context: true, .. }",
        ));
    }
    let mut list = vec![Variant::Default];
    list.extend(variants.iter().filter(|v| **v != Variant::Default));
    // Every variant's options checked before the first one trains.
    let options: Vec<TrainOptions> = list
        .iter()
        .map(|v| v.options(base))
        .collect::<Result<_>>()?;
    let ranked: Option<Vec<CityFeatures>> = list
        .contains(&Variant::CityRanks)
        .then(|| cities.iter().map(relative::with_city_ranks).collect());
    let bar = progress.bar((list.len() * seeds.len()) as u64, "ablation", "runs");
    let mut rows = Vec::new();
    for (v, options) in list.into_iter().zip(options) {
        bar.set_message(v.name());
        let input = match (&ranked, v) {
            (Some(r), Variant::CityRanks) => r.as_slice(),
            _ => cities,
        };
        let mut maes: Vec<Vec<f64>> = vec![Vec::new(); cities.len()];
        let mut biases: Vec<Vec<f64>> = vec![Vec::new(); cities.len()];
        let mut means = Vec::new();
        for &seed in seeds {
            let mut o = options.clone().with_seed(seed);
            o.alpha = None;
            let out = cross_validate(input, Scheme::City, &o, &Progress::hidden())?;
            for (k, c) in out.summary.per_city.iter().enumerate() {
                maes[k].push(c.model.mae);
                biases[k].push(c.model.bias);
            }
            let m: Vec<f64> = out.summary.per_city.iter().map(|c| c.model.mae).collect();
            means.push(m.iter().sum::<f64>() / m.len().max(1) as f64);
            bar.inc(1);
        }
        rows.push(AblationRow {
            variant: v.name().into(),
            meaning: v.meaning().into(),
            seeds: seeds.to_vec(),
            per_city: cities
                .iter()
                .enumerate()
                .map(|(k, c)| AblationCity {
                    city: c.city.clone(),
                    mae: Spread::of(&maes[k]),
                    bias: Spread::of(&biases[k]),
                })
                .collect(),
            mean_mae: Spread::of(&means),
        });
    }
    bar.finish_and_clear();
    Ok(rows)
}
