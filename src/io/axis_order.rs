//! Footprints whose x and y are swapped (latitude written first, northing as easting): a valid
//! file that reads without complaint and gives buildings the wrong shape or the wrong place.
//! In a geographic CRS a swap moves a city to another latitude, where a degree of longitude
//! has another length: every outline is stretched one way, areas and lengths come out wrong
//! (Delft read as latitude 4° is 1.6× too wide), and nothing else looks odd. In a projected CRS
//! a swap is a mirror (shapes stay right) but puts the city outside the area the CRS is made
//! for.
//!
//! No crate checks this, and GDAL's axis-order handling only helps when the file's CRS
//! declares the order it was written in; the data's own geometry tells instead. Buildings are
//! mostly right-angled, and only the right reading keeps their corners square.

use std::path::Path;

use geo::MultiPolygon;

use crate::crs::{Crs, Transform};
use crate::error::{AtFile, Error, FileKind, Result};

/// Footprints looked at (the first ones): enough corners to judge, cheap on any city.
const SAMPLE: usize = 400;
/// Fewest corners to judge by.
const MIN_CORNERS: usize = 100;
/// A corner within this many degrees of 90° is square.
const SQUARE_DEG: f64 = 5.0;
/// Degrees beyond which a corner is a vertex along a straight edge, not a corner.
const STRAIGHT_DEG: f64 = 160.0;
/// Edges shorter than this (m) make no corner (digitising noise).
const MIN_EDGE_M: f64 = 0.5;
/// Degrees of margin around a CRS's area of use.
const AREA_MARGIN_DEG: f64 = 1.0;

/// Share of square corners among an outline set's corners, with outlines given in lon/lat
/// degrees and measured in a local equirectangular plane (exact enough at building scale).
/// `None` when there are too few corners, or the latitudes cannot be real.
pub fn square_share(outlines: &[Vec<(f64, f64)>]) -> Option<f64> {
    let (mut square, mut corners) = (0usize, 0usize);
    for ring in outlines {
        let n = ring.len();
        if n < 3 {
            continue;
        }
        let lat0 = ring.iter().map(|p| p.1).sum::<f64>() / n as f64;
        if !(-85.0..=85.0).contains(&lat0) {
            return None;
        }
        let k = lat0.to_radians().cos();
        let m = 6_371_000.0_f64.to_radians();
        let pts: Vec<(f64, f64)> = ring.iter().map(|p| (p.0 * k * m, p.1 * m)).collect();
        for i in 0..n {
            let (a, b, c) = (pts[(i + n - 1) % n], pts[i], pts[(i + 1) % n]);
            let u = (b.0 - a.0, b.1 - a.1);
            let v = (c.0 - b.0, c.1 - b.1);
            let (lu, lv) = (u.0.hypot(u.1), v.0.hypot(v.1));
            if lu < MIN_EDGE_M || lv < MIN_EDGE_M {
                continue;
            }
            // The interior angle at b: 180° minus the turn between the edges.
            let turn = ((u.0 * v.0 + u.1 * v.1) / (lu * lv))
                .clamp(-1.0, 1.0)
                .acos();
            let angle = 180.0 - turn.to_degrees();
            if angle > STRAIGHT_DEG {
                continue;
            }
            corners += 1;
            if (angle - 90.0).abs() < SQUARE_DEG {
                square += 1;
            }
        }
    }
    (corners >= MIN_CORNERS).then(|| square as f64 / corners as f64)
}

/// Refuses footprints that look read with x and y swapped. `source` is the file's CRS,
/// `geoms` the footprints in the working CRS `working`, `extent` theirs (as
/// [`crate::io::plausible::FootprintSummary`] has it).
pub fn check_axis_order(
    path: &Path,
    source: &Crs,
    working: &Crs,
    geoms: &[MultiPolygon<f64>],
    extent: &[f64; 4],
) -> Result<()> {
    let fail = |what: String| {
        Error::of(
            FileKind::Footprints,
            path,
            format!("x and y look swapped: {what}; write x as longitude or easting and y as latitude or northing"),
        )
    };
    let wgs84 = Crs::from_epsg(4326).at_kind(FileKind::Footprints, path)?;
    let to_lonlat = Transform::new(working, &wgs84).at_kind(FileKind::Footprints, path)?;
    if source.is_geographic() {
        let mut outlines: Vec<Vec<(f64, f64)>> = Vec::new();
        for g in geoms.iter().take(SAMPLE) {
            for p in &g.0 {
                let ring = &p.exterior().0;
                let mut x: Vec<f64> = ring.iter().skip(1).map(|c| c.x).collect();
                let mut y: Vec<f64> = ring.iter().skip(1).map(|c| c.y).collect();
                if to_lonlat.apply(&mut x, &mut y).is_err() {
                    return Ok(());
                }
                outlines.push(x.into_iter().zip(y).collect());
            }
        }
        let swapped: Vec<Vec<(f64, f64)>> = outlines
            .iter()
            .map(|r| r.iter().map(|&(x, y)| (y, x)).collect())
            .collect();
        let (Some(as_read), Some(as_swapped)) = (square_share(&outlines), square_share(&swapped))
        else {
            return Ok(());
        };
        // Correct outlines lose their square corners when swapped (2–19 % left in the shipped
        // cities, from 14–95 %); swapped ones regain them.
        if as_swapped >= (3.0 * as_read).max(as_read + 0.08) {
            return Err(fail(format!(
                "{:.0} % of the footprints' corners are square as read, {:.0} % with longitude and latitude exchanged",
                100.0 * as_read,
                100.0 * as_swapped
            )));
        }
        return Ok(());
    }
    // Projected: the centre, in the file's CRS, as read and swapped, against the CRS's area.
    // A CRS read from WKT1 carries no area; its EPSG code does.
    let area = source.srs().area_of_use().or_else(|| {
        source
            .epsg()
            .and_then(|c| gdal::spatial_ref::SpatialRef::from_epsg(c).ok())
            .and_then(|s| s.area_of_use())
    });
    let Some(area) = area else {
        return Ok(());
    };
    let inside = |(lon, lat): (f64, f64)| {
        lon >= area.west_lon_degree - AREA_MARGIN_DEG
            && lon <= area.east_lon_degree + AREA_MARGIN_DEG
            && lat >= area.south_lat_degree - AREA_MARGIN_DEG
            && lat <= area.north_lat_degree + AREA_MARGIN_DEG
    };
    let world = area.east_lon_degree - area.west_lon_degree >= 359.0;
    let e = extent;
    if !e.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let to_source = Transform::new(working, source).at_kind(FileKind::Footprints, path)?;
    let (mut x, mut y) = ([(e[0] + e[2]) / 2.0], [(e[1] + e[3]) / 2.0]);
    if world || to_source.apply(&mut x, &mut y).is_err() {
        return Ok(());
    }
    let from_source = Transform::new(source, &wgs84).at_kind(FileKind::Footprints, path)?;
    let lonlat = |mut x: [f64; 1], mut y: [f64; 1]| {
        from_source
            .apply(&mut x, &mut y)
            .ok()
            .map(|_| (x[0], y[0]))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let read = lonlat(x, y);
    if read.is_some_and(inside) {
        return Ok(());
    }
    if lonlat(y, x).is_some_and(inside) {
        return Err(fail(format!(
            "their centre ({:.0}, {:.0}) lies outside the area {} is made for ({}), and inside it with x and y exchanged",
            x[0],
            y[0],
            source.label,
            area.name.trim_end_matches('.')
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 × 6 m rectangle at (lon, lat), turned by `deg`, as lon/lat degrees.
    fn house(lon: f64, lat: f64, deg: f64) -> Vec<(f64, f64)> {
        let (s, c) = deg.to_radians().sin_cos();
        let m = 6_371_000.0_f64.to_radians();
        [(0.0, 0.0), (10.0, 0.0), (10.0, 6.0), (0.0, 6.0)]
            .iter()
            .map(|&(x, y)| {
                let (x, y) = (x * c - y * s, x * s + y * c);
                (lon + x / (m * lat.to_radians().cos()), lat + y / m)
            })
            .collect()
    }

    #[test]
    fn square_corners_survive_only_the_right_reading() {
        // Delft-like houses at 52° N, turned every which way.
        let town: Vec<Vec<(f64, f64)>> = (0..60)
            .map(|i| house(4.36 + i as f64 * 1e-4, 52.0, i as f64 * 7.0))
            .collect();
        let swapped: Vec<Vec<(f64, f64)>> = town
            .iter()
            .map(|r| r.iter().map(|&(x, y)| (y, x)).collect())
            .collect();
        let right = square_share(&town).unwrap();
        let wrong = square_share(&swapped).unwrap();
        assert!(right > 0.99, "{right}");
        // Only the houses turned a multiple of 90° (by 0°, 90°, 180°... within 5°) stay square.
        assert!(wrong < 0.2, "{wrong}");
        // Too few corners to judge.
        assert_eq!(square_share(&town[..10]), None);
    }
}
