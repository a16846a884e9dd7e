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
    let (lo, hi, frac) = ranks(n, p);
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// The two ranks a type-7 percentile interpolates between, and the weight of the upper one.
fn ranks(n: usize, p: f64) -> (usize, usize, f64) {
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    (lo, hi, rank - lo as f64)
}

/// The same value as [`percentile_sorted`] on the sorted values, bit for bit, found by
/// selection (O(n)) instead of sorting (O(n log n)); reorders `values`. `values` must be
/// non-empty and NaN-free.
///
/// ```
/// use roofline::stats::percentile::{percentile_sorted, percentile_select};
/// let mut v = [20.0, 11.0, 13.0, 10.0, 12.0];
/// assert_eq!(percentile_select(&mut v, 70.0), percentile_sorted(&[10.0, 11.0, 12.0, 13.0, 20.0], 70.0));
/// ```
pub fn percentile_select(values: &mut [f64], p: f64) -> f64 {
    debug_assert!(!values.is_empty());
    let n = values.len();
    if n == 1 {
        return values[0];
    }
    let (lo, hi, frac) = ranks(n, p);
    let (_, at_lo, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let at_lo = *at_lo;
    let at_hi = if hi == lo {
        at_lo
    } else {
        *above
            .iter()
            .min_by(|a, b| a.total_cmp(b))
            .expect("hi < n: values above lo")
    };
    at_lo + (at_hi - at_lo) * frac
}

/// Sorts in place (NaN-free input) and returns the percentile; `None` for no values.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    Some(percentile_sorted(values, p))
}

/// Interquartile range of the finite `values` (0 with fewer than two).
pub fn iqr(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    percentile_sorted(&v, 75.0) - percentile_sorted(&v, 25.0)
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

    /// Selection agrees bit for bit with sorting, ties and signed zeros included.
    #[test]
    fn selection_equals_sorting() {
        use crate::stats::seeded::{mix, unit};
        for n in [1usize, 2, 3, 7, 100, 1001] {
            let v: Vec<f64> = (0..n)
                .map(|i| match i % 5 {
                    0 => (unit(mix(3, i as u64, n as u64)) * 10.0).round(),
                    1 => -0.0,
                    _ => unit(mix(5, i as u64, n as u64)) * 40.0 - 5.0,
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable_by(f64::total_cmp);
            for p in [0.0, 5.0, 37.5, 50.0, 70.0, 90.0, 99.9, 100.0] {
                let mut w = v.clone();
                let a = percentile_select(&mut w, p);
                let b = percentile_sorted(&sorted, p);
                assert_eq!(a.to_bits(), b.to_bits(), "n {n} p{p}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn single_value_and_empty() {
        assert_eq!(percentile_sorted(&[4.5], 70.0), 4.5);
        assert_eq!(percentile(&mut [], 50.0), None);
        assert_eq!(percentile(&mut [3.0, 1.0, 2.0], 50.0), Some(2.0));
    }
}
