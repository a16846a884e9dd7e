//! Conversion of roofline's f64 feature matrices into hessboost's f32 row-major `DMatrix`
//! (NaN stays NaN, which hessboost routes as missing; infinities become missing too).

use hessboost::data::DMatrix;
use ndarray::{ArrayBase, ArrayView1, Data, Ix2};

use crate::error::Result;

/// Rows of `x` (and labels `y`, for training) as an f32 `DMatrix`; non-finite values become
/// missing. Values keep f32's about 7 significant digits (well below a millimetre for heights).
pub fn to_dmatrix<D: Data<Elem = f64>>(
    x: &ArrayBase<D, Ix2>,
    y: Option<ArrayView1<'_, f64>>,
) -> Result<DMatrix> {
    let (n, k) = x.dim();
    let values: Vec<f32> = x
        .rows()
        .into_iter()
        .flat_map(|r| {
            r.into_iter()
                .map(|v| if v.is_finite() { *v as f32 } else { f32::NAN })
                .collect::<Vec<_>>()
        })
        .collect();
    let m = DMatrix::from_dense_vec(values, n, k)?;
    Ok(match y {
        Some(y) => m.with_labels(&y.iter().map(|v| *v as f32).collect::<Vec<_>>())?,
        None => m,
    })
}
