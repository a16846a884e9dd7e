//! Exact fraction of each raster cell covered by a polygon.
//!
//! Hand-written because no Rust crate does it (exactextract, the reference, is C++): every ring
//! is clipped to one pixel row, then each row piece to one pixel (Sutherland–Hodgman against
//! axis-aligned half-planes, exact for any simple ring against a convex window), and the clipped
//! areas are summed with holes subtracted. Coordinates are in pixel units, so a clipped area is
//! directly the covered fraction of that pixel.

use geo::MultiPolygon;

/// A polygon's cover of one pixel: column, row (in the window) and covered fraction (0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cover {
    /// Pixel column in the window.
    pub col: usize,
    /// Pixel row in the window (0 at the top).
    pub row: usize,
    /// Share of the pixel's area inside the polygon, in (0, 1].
    pub fraction: f64,
}

/// Pixel grid of a window of a north-up raster: map x = x0 + col * dx, map y = y0 - row * dy
/// for the raster's columns and rows (`x0`, `y0` its origin); the window holds columns
/// `col0..col0 + cols` and rows `row0..row0 + rows`. Pixel positions are computed from the
/// raster's origin, never the window's, so a footprint's cover does not depend on which other
/// footprints set the window (a tiled run reads smaller windows).
#[derive(Clone, Copy, Debug)]
pub struct Grid {
    /// Map x of the raster's origin (its left edge).
    pub x0: f64,
    /// Map y of the raster's origin (its top edge).
    pub y0: f64,
    /// Pixel width in map units (positive).
    pub dx: f64,
    /// Pixel height in map units (positive; rows go south).
    pub dy: f64,
    /// First column of the window in the raster.
    pub col0: usize,
    /// First row of the window in the raster.
    pub row0: usize,
    /// Columns in the window; covers outside it are dropped.
    pub cols: usize,
    /// Rows in the window.
    pub rows: usize,
}

impl Grid {
    fn to_pixel(self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.x0) / self.dx, (self.y0 - y) / self.dy)
    }
}

/// Covered fraction of every pixel the polygon touches (pixels outside the window are
/// ignored); `col` and `row` count from the window's corner.
pub fn coverage(g: &MultiPolygon<f64>, grid: &Grid) -> Vec<Cover> {
    let mut rings: Vec<(Vec<(f64, f64)>, f64)> = Vec::new();
    let (mut cmin, mut cmax, mut rmin, mut rmax) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in &g.0 {
        for (ring, sign) in
            std::iter::once((p.exterior(), 1.0)).chain(p.interiors().iter().map(|r| (r, -1.0)))
        {
            let pts: Vec<(f64, f64)> = ring.0.iter().map(|c| grid.to_pixel(c.x, c.y)).collect();
            for &(c, r) in &pts {
                cmin = cmin.min(c);
                cmax = cmax.max(c);
                rmin = rmin.min(r);
                rmax = rmax.max(r);
            }
            rings.push((pts, sign));
        }
    }
    if rings.is_empty() || !cmin.is_finite() {
        return Vec::new();
    }
    let c0 = cmin.floor().max(grid.col0 as f64) as usize;
    let c1 = (cmax.ceil().min((grid.col0 + grid.cols) as f64) as usize).max(c0);
    let r0 = rmin.floor().max(grid.row0 as f64) as usize;
    let r1 = (rmax.ceil().min((grid.row0 + grid.rows) as f64) as usize).max(r0);
    let mut out = Vec::new();
    let mut row_acc = vec![0.0f64; c1.saturating_sub(c0)];
    for row in r0..r1 {
        row_acc.iter_mut().for_each(|v| *v = 0.0);
        for (ring, sign) in &rings {
            let strip = clip(
                &clip(ring, Axis::Y, row as f64, true),
                Axis::Y,
                (row + 1) as f64,
                false,
            );
            if strip.len() < 3 {
                continue;
            }
            let (smin, smax) = strip
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                    (a.min(p.0), b.max(p.0))
                });
            let s0 = (smin.floor().max(c0 as f64)) as usize;
            let s1 = (smax.ceil().min(c1 as f64)) as usize;
            for col in s0..s1 {
                let cell = clip(
                    &clip(&strip, Axis::X, col as f64, true),
                    Axis::X,
                    (col + 1) as f64,
                    false,
                );
                row_acc[col - c0] += sign * shoelace(&cell).abs();
            }
        }
        for (k, &f) in row_acc.iter().enumerate() {
            if f > 1e-12 {
                out.push(Cover {
                    col: c0 + k - grid.col0,
                    row: row - grid.row0,
                    fraction: f.min(1.0),
                });
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Axis {
    X,
    Y,
}

/// Keeps the part of a ring on one side of an axis-aligned line: `coord >= at` when `keep_above`,
/// else `coord <= at`.
fn clip(ring: &[(f64, f64)], axis: Axis, at: f64, keep_above: bool) -> Vec<(f64, f64)> {
    let coord = |p: &(f64, f64)| match axis {
        Axis::X => p.0,
        Axis::Y => p.1,
    };
    let inside = |p: &(f64, f64)| {
        if keep_above {
            coord(p) >= at
        } else {
            coord(p) <= at
        }
    };
    let cross = |a: &(f64, f64), b: &(f64, f64)| {
        let t = (at - coord(a)) / (coord(b) - coord(a));
        match axis {
            Axis::X => (at, a.1 + t * (b.1 - a.1)),
            Axis::Y => (a.0 + t * (b.0 - a.0), at),
        }
    };
    let n = ring.len();
    let mut out = Vec::with_capacity(n + 4);
    if n == 0 {
        return out;
    }
    let mut prev = ring[n - 1];
    for &cur in ring {
        match (inside(&prev), inside(&cur)) {
            (true, true) => out.push(cur),
            (true, false) => out.push(cross(&prev, &cur)),
            (false, true) => {
                out.push(cross(&prev, &cur));
                out.push(cur);
            }
            (false, false) => {}
        }
        prev = cur;
    }
    out
}

fn shoelace(p: &[(f64, f64)]) -> f64 {
    if p.len() < 3 {
        return 0.0;
    }
    let mut s = 0.0;
    let mut prev = p[p.len() - 1];
    for &cur in p {
        s += prev.0 * cur.1 - cur.0 * prev.1;
        prev = cur;
    }
    s / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, Area, BooleanOps, Rect};

    fn grid() -> Grid {
        Grid {
            x0: 100.0,
            y0: 200.0,
            dx: 30.0,
            dy: 30.0,
            col0: 0,
            row0: 0,
            cols: 10,
            rows: 10,
        }
    }

    /// Fractions agree with polygon ∩ pixel areas from geo's boolean operations.
    #[test]
    fn matches_boolean_intersection() {
        let g = grid();
        let poly = MultiPolygon(vec![polygon!(
            exterior: [(x: 131.0, y: 190.0), (x: 205.5, y: 150.2), (x: 170.0, y: 101.0), (x: 140.0, y: 130.0), (x: 131.0, y: 190.0)],
            interiors: [[(x: 160.0, y: 150.0), (x: 170.0, y: 150.0), (x: 170.0, y: 140.0), (x: 160.0, y: 140.0), (x: 160.0, y: 150.0)]],
        )]);
        let covers = coverage(&poly, &g);
        let mut total = 0.0;
        for c in &covers {
            let x = g.x0 + c.col as f64 * g.dx;
            let y = g.y0 - c.row as f64 * g.dy;
            let px = Rect::new((x, y - g.dy), (x + g.dx, y)).to_polygon();
            let expect = poly.intersection(&MultiPolygon(vec![px])).unsigned_area() / (g.dx * g.dy);
            // geo's boolean operations snap to an integer grid: agreement to ~1e-9 of a pixel.
            assert!((c.fraction - expect).abs() < 1e-7, "{c:?} vs {expect}");
            total += c.fraction;
        }
        assert!((total * g.dx * g.dy - poly.unsigned_area()).abs() < 1e-6);
    }

    #[test]
    fn small_polygon_inside_one_pixel() {
        let g = grid();
        let poly = MultiPolygon(vec![
            polygon![(x: 105.0, y: 195.0), (x: 110.0, y: 195.0), (x: 110.0, y: 190.0), (x: 105.0, y: 190.0)],
        ]);
        let c = coverage(&poly, &g);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].col, c[0].row), (0, 0));
        assert!((c[0].fraction - 25.0 / 900.0).abs() < 1e-12);
    }
}
