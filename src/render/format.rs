//! Number formatting shared by report.md and report.html, so both print a value the same way.

/// Metres (or any value) to two decimals; "–" where missing.
pub(crate) fn f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".into()
    }
}

/// A share as a percentage with one decimal; "–" where missing.
pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.1} %", 100.0 * x))
}

/// An optional value as [`f`] does it.
pub(crate) fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), f)
}

/// A measure over seeds: the mean, then (min–max) when the seeds disagree.
pub(crate) fn spread(x: &crate::eval::metrics::Spread) -> String {
    if x.max - x.min < 0.005 {
        f(x.mean)
    } else {
        format!("{} ({}–{})", f(x.mean), f(x.min), f(x.max))
    }
}

/// Whether a variant's city MAE is more than 5 % worse than the default's: the bar an
/// ablation change must clear in every city.
pub(crate) fn worse_than(
    row: &crate::eval::metrics::AblationCity,
    default: Option<&crate::eval::metrics::AblationCity>,
) -> bool {
    default.is_some_and(|d| row.mae.mean > 1.05 * d.mae.mean)
}
