//! What gbm and the forest share: both are tree ensembles held in one hessboost booster, so
//! checked prediction and importance are written once here.

use hessboost::model::{BoostedModel, ImportanceType, Iterations};
use ndarray::{Array1, Array2, ArrayBase, Data, Ix2};

use super::matrix::to_dmatrix;
use crate::error::{Error, Result};

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

/// Predictions of a single-output booster, checked.
pub fn predict_booster<D: Data<Elem = f64>>(
    booster: &BoostedModel,
    x: &ArrayBase<D, Ix2>,
) -> Result<Array2<f64>> {
    if x.ncols() != booster.n_features() {
        return Err(Error::invalid(format!(
            "the model expects {} features, got {}",
            booster.n_features(),
            x.ncols()
        )));
    }
    let p = booster.predict(&to_dmatrix(x, None)?, Iterations::Best)?;
    let w = p.width();
    Ok(Array2::from_shape_vec(
        (x.nrows(), w),
        p.as_slice().iter().map(|v| *v as f64).collect(),
    )
    .expect("prediction shape"))
}

/// Total split gain per feature index of a booster (0 for features never split on); the
/// importance reported in model files and reports.
pub fn gain_importance(b: &BoostedModel) -> Vec<f64> {
    let mut v = vec![0.0; b.n_features()];
    for (k, g) in b.feature_importance(ImportanceType::TotalGain) {
        if k < v.len() {
            v[k] = g;
        }
    }
    v
}
