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
