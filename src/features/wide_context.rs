//! Urban context at the scale of a district (0.5–1 km): how built-up the wider surroundings
//! are, which tells a town centre from a suburb of the same street pattern.
//!
//! At these radii a dense centre holds thousands of buildings per window, so the disc counts of
//! [`super::context`] would compare millions of pairs. Here buildings are binned by centroid
//! into a fixed grid anchored at the CRS origin and the windows are squares of whole cells,
//! summed from a prefix-sum table: O(1) per building. Areas are summed as whole dm² in
//! integers, so a window's sum does not depend on the grid's extent or the summation order.
//! Computed only when asked for (`cv --ablate wide-context`): tiled runs' halos
//! ([`crate::plan::halo_m`]) do not reach [`reach_m`].

/// Half-widths (m) of the square windows.
pub const HALF_WIDTHS_M: [f64; 2] = [500.0, 1000.0];
/// Grid cell size (m).
pub const CELL_M: f64 = 20.0;

/// Feature names of this group, in column order.
pub fn names() -> Vec<String> {
    let mut n = Vec::new();
    for h in HALF_WIDTHS_M {
        let h = h as u32;
        n.push(format!("n_window_{h}m"));
        n.push(format!("coverage_window_{h}m"));
        n.push(format!("area_mean_window_{h}m"));
    }
    n
}

/// Cells from a building's cell to the window's edge.
fn cells(half_width_m: f64) -> i64 {
    (half_width_m / CELL_M).round() as i64
}

/// How far (m) a window reaches from a building's centroid: to the far corner of the
/// farthest cell.
pub fn reach_m() -> f64 {
    let k = cells(HALF_WIDTHS_M[HALF_WIDTHS_M.len() - 1]) as f64;
    (k + 1.0) * CELL_M * std::f64::consts::SQRT_2
}

/// Wide-context features for every building (rows in input order, columns as [`names`]),
/// from centroids (working CRS, m) and footprint areas (m²); a building without a finite
/// centroid gets NaN.
pub fn wide_context_features(centroids: &[[f64; 2]], areas: &[f64]) -> Vec<Vec<f64>> {
    let cell_of = |c: &[f64; 2]| -> Option<(i64, i64)> {
        (c[0].is_finite() && c[1].is_finite()).then(|| {
            (
                (c[0] / CELL_M).floor() as i64,
                (c[1] / CELL_M).floor() as i64,
            )
        })
    };
    let cellv: Vec<Option<(i64, i64)>> = centroids.iter().map(cell_of).collect();
    let nan_rows = || vec![vec![f64::NAN; names().len()]; centroids.len()];
    let (Some(x0), Some(x1), Some(y0), Some(y1)) = (
        cellv.iter().flatten().map(|c| c.0).min(),
        cellv.iter().flatten().map(|c| c.0).max(),
        cellv.iter().flatten().map(|c| c.1).min(),
        cellv.iter().flatten().map(|c| c.1).max(),
    ) else {
        return nan_rows();
    };
    let (w, h) = ((x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize);
    // Prefix sums with a zero row and column: (w + 1) × (h + 1).
    let mut count = vec![0i64; (w + 1) * (h + 1)];
    let mut area = vec![0i64; (w + 1) * (h + 1)];
    let at = |x: usize, y: usize| y * (w + 1) + x;
    for (c, a) in cellv.iter().zip(areas) {
        if let Some((cx, cy)) = c {
            let (x, y) = ((cx - x0) as usize + 1, (cy - y0) as usize + 1);
            count[at(x, y)] += 1;
            if a.is_finite() {
                area[at(x, y)] += (a * 100.0).round() as i64;
            }
        }
    }
    for y in 1..=h {
        for x in 1..=w {
            let i = at(x, y);
            count[i] += count[at(x - 1, y)] + count[at(x, y - 1)] - count[at(x - 1, y - 1)];
            area[i] += area[at(x - 1, y)] + area[at(x, y - 1)] - area[at(x - 1, y - 1)];
        }
    }
    // Sum over cells [xa, xb] × [ya, yb] (grid indices, clamped to the occupied extent).
    let window = |t: &[i64], cx: i64, cy: i64, k: i64| -> i64 {
        let xa = (cx - k).max(x0) - x0;
        let xb = (cx + k).min(x1) - x0 + 1;
        let ya = (cy - k).max(y0) - y0;
        let yb = (cy + k).min(y1) - y0 + 1;
        let (xa, xb, ya, yb) = (xa as usize, xb as usize, ya as usize, yb as usize);
        t[at(xb, yb)] - t[at(xa, yb)] - t[at(xb, ya)] + t[at(xa, ya)]
    };
    cellv
        .iter()
        .map(|c| match c {
            None => vec![f64::NAN; names().len()],
            Some((cx, cy)) => {
                let mut row = Vec::with_capacity(names().len());
                for hw in HALF_WIDTHS_M {
                    let k = cells(hw);
                    let n = window(&count, *cx, *cy, k);
                    let a = window(&area, *cx, *cy, k) as f64 / 100.0;
                    let side = (2 * k + 1) as f64 * CELL_M;
                    row.push(n as f64);
                    row.push(a / (side * side));
                    row.push(if n > 0 { a / n as f64 } else { f64::NAN });
                }
                row
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_what_a_brute_force_counts_and_ignore_the_extent() {
        // 400 buildings on a jittered lattice 150 m apart (a 3 km square), areas 50–250 m².
        let mut c = Vec::new();
        let mut a = Vec::new();
        for i in 0..20 {
            for j in 0..20 {
                let jitter = ((i * 7 + j * 13) % 17) as f64;
                c.push([
                    100_000.0 + i as f64 * 150.0 + jitter,
                    400_000.0 + j as f64 * 150.0,
                ]);
                a.push(50.0 + ((i * 31 + j * 17) % 200) as f64 + 0.37);
            }
        }
        let f = wide_context_features(&c, &a);
        let cell = |v: f64| (v / CELL_M).floor() as i64;
        for probe in [0, 57, 210, 399] {
            for (h, hw) in HALF_WIDTHS_M.iter().enumerate() {
                let k = cells(*hw);
                let inside: Vec<usize> = (0..c.len())
                    .filter(|&q| {
                        (cell(c[q][0]) - cell(c[probe][0])).abs() <= k
                            && (cell(c[q][1]) - cell(c[probe][1])).abs() <= k
                    })
                    .collect();
                assert_eq!(f[probe][3 * h], inside.len() as f64);
                let sum: f64 = inside.iter().map(|&q| a[q]).sum();
                let side = (2 * k + 1) as f64 * CELL_M;
                assert!((f[probe][3 * h + 1] - sum / (side * side)).abs() < 1e-9);
            }
        }
        // A far-away building changes the grid's extent, not the windows of the others.
        let mut c2 = c.clone();
        let mut a2 = a.clone();
        c2.push([90_000.0, 390_000.0]);
        a2.push(80.0);
        let f2 = wide_context_features(&c2, &a2);
        for q in 0..c.len() {
            assert_eq!(f[q], f2[q], "building {q}");
        }
        // The lattice's corner sees fewer buildings than its centre.
        assert!(f[0][0] < f[210][0]);
    }
}
