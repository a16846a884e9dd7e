//! What gbm and the forest share: both are tree ensembles held in one hessboost booster, so
//! checked prediction and importance are written once here.

use hessboost::model::BoostedModel;
use ndarray::{Array1, ArrayBase, Data, Ix2};

use super::boosting::{gain_importance, predict_booster};
use crate::error::Result;

/// A fitted tree ensemble.
pub trait TreeEnsemble {
    /// The trees.
    fn booster(&self) -> &BoostedModel;

    /// Predictions (m), or an error when `x` has another column count than the training data
    /// (linfa's `predict` panics there instead).
    fn predict_checked<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<Array1<f64>> {
        Ok(predict_booster(self.booster(), x)?.column(0).to_owned())
    }

    /// Total split gain per feature index (0 for features never split on).
    fn importance(&self) -> Vec<f64> {
        gain_importance(self.booster())
    }
}
