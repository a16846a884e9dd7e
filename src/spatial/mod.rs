//! Spatial grouping shared by training (block-wise calibration) and evaluation (block CV):
//! square [`blocks`] and the folds made of them.

pub mod blocks;
