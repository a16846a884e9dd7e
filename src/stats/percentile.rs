//! Exact percentiles.

/// The `p`-th percentile (0–100) of sorted values, interpolating linearly between the two
/// nearest ranks (NumPy's default, "type 7"). `sorted` must be non-empty and ascending.
///
/// ```
/// use roofline::stats::percentile::percentile_sorted;
/// let roof = [10.0, 11.0, 12.0, 13.0, 20.0];
/// assert_eq!(percentile_sorted(&roof, 50.0), 12.0);
/// assert!((percentile_sorted(&roof, 70.0) - 12.8).abs() < 1e-12);
/// ```
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Sorts in place (NaN-free input) and returns the percentile; `None` for no values.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    Some(percentile_sorted(values, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [0, 5, 50, 70, 90, 100])
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        let expect = [
            (0.0, 1.0),
            (5.0, 1.2),
            (50.0, 3.0),
            (70.0, 3.8),
            (90.0, 7.6),
            (100.0, 10.0),
        ];
        for (p, e) in expect {
            assert!((percentile_sorted(&v, p) - e).abs() < 1e-12, "p{p}");
        }
    }

    #[test]
    fn single_value_and_empty() {
        assert_eq!(percentile_sorted(&[4.5], 70.0), 4.5);
        assert_eq!(percentile(&mut [], 50.0), None);
        assert_eq!(percentile(&mut [3.0, 1.0, 2.0], 50.0), Some(2.0));
    }
}
