//! Footprint shape: size, outline, and the minimum rotated rectangle. Tall buildings in a city
//! tend to be large, compact blocks; sheds and houses small and simple.

use geo::{Area, ConvexHull, Euclidean, Length, MinimumRotatedRect, MultiPolygon, Polygon};

/// Feature names of this group, in column order.
pub const NAMES: [&str; 14] = [
    "area_m2",
    "perimeter_m",
    "compactness",
    "vertices",
    "holes",
    "parts",
    "mrr_length_m",
    "mrr_width_m",
    "mrr_elongation",
    "mrr_orientation_deg",
    "mrr_fill",
    "convex_hull_ratio",
    "equivalent_radius_m",
    "log_area",
];

/// One row of geometry features for a footprint (metric CRS).
pub fn geometry_features(g: &MultiPolygon<f64>) -> [f64; NAMES.len()] {
    let area = g.unsigned_area();
    let perimeter = perimeter(g);
    let vertices: usize =
        g.0.iter()
            .map(|p| {
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(|r| r.0.len().saturating_sub(1))
                    .sum::<usize>()
            })
            .sum();
    let holes: usize = g.0.iter().map(|p| p.interiors().len()).sum();
    let (length, width, orientation) = g
        .minimum_rotated_rect()
        .map_or((f64::NAN, f64::NAN, f64::NAN), |r| rect_sides(&r));
    let hull = g.convex_hull().unsigned_area();
    let nan_div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    [
        area,
        perimeter,
        nan_div(4.0 * std::f64::consts::PI * area, perimeter * perimeter),
        vertices as f64,
        holes as f64,
        g.0.len() as f64,
        length,
        width,
        nan_div(length, width),
        orientation,
        nan_div(area, length * width),
        nan_div(area, hull),
        (area / std::f64::consts::PI).sqrt(),
        area.max(1e-3).ln(),
    ]
}

/// Length of all rings, holes included.
pub fn perimeter(g: &MultiPolygon<f64>) -> f64 {
    g.0.iter()
        .map(|p| {
            std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(|r| Euclidean.length(r))
                .sum::<f64>()
        })
        .sum()
}

/// Long side, short side and the long side's direction in degrees counter-clockwise from east,
/// in [0, 180).
fn rect_sides(r: &Polygon<f64>) -> (f64, f64, f64) {
    let c = &r.exterior().0;
    if c.len() < 4 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let side = |a: usize, b: usize| (c[b].x - c[a].x, c[b].y - c[a].y);
    let (s1, s2) = (side(0, 1), side(1, 2));
    let (l1, l2) = (s1.0.hypot(s1.1), s2.0.hypot(s2.1));
    let (long, short, dir) = if l1 >= l2 { (l1, l2, s1) } else { (l2, l1, s2) };
    let mut angle = dir.1.atan2(dir.0).to_degrees().rem_euclid(180.0);
    if angle >= 180.0 - 1e-9 {
        angle = 0.0;
    }
    (long, short, angle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, Rotate};

    #[test]
    fn known_rectangle() {
        // 20 m x 5 m, rotated by 30 degrees.
        let rect: Polygon<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 20.0, y: 0.0), (x: 20.0, y: 5.0), (x: 0.0, y: 5.0)];
        let g = MultiPolygon(vec![
            rect.rotate_around_point(30.0, geo::Point::new(0.0, 0.0))
        ]);
        let f = geometry_features(&g);
        let get = |n: &str| f[NAMES.iter().position(|x| *x == n).unwrap()];
        assert!((get("area_m2") - 100.0).abs() < 1e-9);
        assert!((get("perimeter_m") - 50.0).abs() < 1e-9);
        assert!((get("mrr_length_m") - 20.0).abs() < 1e-6);
        assert!((get("mrr_width_m") - 5.0).abs() < 1e-6);
        assert!((get("mrr_elongation") - 4.0).abs() < 1e-6);
        assert!((get("mrr_orientation_deg") - 30.0).abs() < 1e-6);
        assert!((get("mrr_fill") - 1.0).abs() < 1e-6);
        assert!((get("convex_hull_ratio") - 1.0).abs() < 1e-9);
        assert_eq!(get("vertices"), 4.0);
        assert!((get("compactness") - 4.0 * std::f64::consts::PI * 100.0 / 2500.0).abs() < 1e-12);
    }

    #[test]
    fn orientation_wraps_into_half_circle() {
        let rect: Polygon<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 20.0, y: 0.0), (x: 20.0, y: 5.0), (x: 0.0, y: 5.0)];
        for deg in [-170.0, -90.0, -10.0, 0.0, 95.0, 179.0, 200.0] {
            let g = MultiPolygon(vec![
                rect.rotate_around_point(deg, geo::Point::new(0.0, 0.0))
            ]);
            let o = geometry_features(&g)[9];
            assert!((0.0..180.0).contains(&o), "{deg} -> {o}");
            let expect = f64::rem_euclid(deg, 180.0);
            let d = (o - expect).abs();
            assert!(d < 1e-6 || (180.0 - d) < 1e-6, "{deg} -> {o}");
        }
    }
}
