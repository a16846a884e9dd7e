//! Rendering: what earlier stages measured, as files a person reads — a cross-validation's
//! folder ([`report`]: `metrics.json`, predictions, [`markdown`] and [`html`] with its
//! [`plots`]) and the 3D [`map`] of predictions (`predict -o x.html`). Nothing here computes a
//! metric or a height.

mod format;
pub mod html;
pub mod map;
pub mod markdown;
pub mod plots;
pub mod report;
