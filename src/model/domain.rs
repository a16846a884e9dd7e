//! Covariate-shift weights: training buildings that look like the region to predict count more.
//!
//! A classifier learns to tell the target region's buildings from the training buildings on the
//! model's own features; a training building's weight is its odds of being taken for a target
//! one (the density ratio p_target(x) / p_train(x), up to a constant). The odds are tempered
//! (square root) and clipped, since cities differ in ways a classifier separates almost
//! perfectly (imagery dates, footprint sources) and raw ratios would leave a handful of
//! buildings carrying the model. Training rows are scored out of fold, so the classifier
//! cannot simply recognise the rows it trained on.

use hessboost::objective::{Objective, RegLoss};
use ndarray::{Array1, Array2, Axis};

use super::boosting::{predict_booster, GbmValidParams};
use crate::error::{Error, Result};
use crate::stats::seeded::{mix, unit};
use linfa::ParamGuard;

/// Folds for the out-of-fold scores of the training rows.
const FOLDS: u64 = 3;
/// Weights are clipped to this factor of the mean weight, both ways.
const CLIP: f64 = 10.0;

/// One weight per row of `train` (mean 1) from how much it resembles the rows of `target`
/// (same columns). `params` give the classifier's seed; its shape is fixed (100 trees of 15
/// leaves, at least 20 buildings per leaf).
pub fn domain_weights(
    train: &Array2<f64>,
    target: &Array2<f64>,
    params: &GbmValidParams,
) -> Result<Vec<f32>> {
    let (n, m) = (train.nrows(), target.nrows());
    if n == 0 || m == 0 || train.ncols() != target.ncols() {
        return Err(Error::invalid(
            "domain weights need training and target rows with the same features",
        ));
    }
    let classifier = crate::model::boosting::GbmParams::new()
        .n_trees(100)
        .learning_rate(0.1)
        .max_leaves(15)
        .min_child_weight(20.0)
        .seed(params.seed)
        .check()?
        .on_threads(params.threads.unwrap_or(1));
    let fold_of = |i: usize| (unit(mix(params.seed, 0xd0a1, i as u64)) * FOLDS as f64) as u64;
    let mut odds = vec![0.0f64; n];
    for f in 0..FOLDS {
        let fit_rows: Vec<usize> = (0..n).filter(|&i| fold_of(i) != f).collect();
        let score_rows: Vec<usize> = (0..n).filter(|&i| fold_of(i) == f).collect();
        if score_rows.is_empty() {
            continue;
        }
        let x = ndarray::concatenate(
            Axis(0),
            &[train.select(Axis(0), &fit_rows).view(), target.view()],
        )
        .map_err(|e| Error::invalid(e.to_string()))?;
        let y = Array1::from_iter(
            std::iter::repeat_n(0.0, fit_rows.len()).chain(std::iter::repeat_n(1.0, m)),
        );
        let booster =
            classifier.train_booster(Objective::BinaryLogistic(RegLoss::default()), &x, &y)?;
        let p = predict_booster(&booster, &train.select(Axis(0), &score_rows))?;
        // The classifier saw `m` target rows against `fit_rows.len()` training ones.
        let prior = fit_rows.len() as f64 / m as f64;
        for (k, &i) in score_rows.iter().enumerate() {
            let q = p[[k, 0]].clamp(1e-6, 1.0 - 1e-6);
            odds[i] = (q / (1.0 - q) * prior).sqrt();
        }
    }
    let mean = odds.iter().sum::<f64>() / n as f64;
    let clipped: Vec<f64> = odds
        .iter()
        .map(|o| o.clamp(mean / CLIP, mean * CLIP))
        .collect();
    let mean = clipped.iter().sum::<f64>() / n as f64;
    Ok(clipped.iter().map(|w| (w / mean) as f32).collect())
}
