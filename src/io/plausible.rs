//! Cheap checks that inputs look like buildings before any heavy work starts. A wrong CRS
//! (WGS 84 degrees read as metres, say) gives footprints a millionth of a square metre in size
//! that all touch each other; every later stage then does meaningless, slow work. These checks
//! refuse such input with one line, or warn where it is merely unusual.

use std::path::Path;

use geo::{Area, BoundingRect, Euclidean, Length, MultiPolygon};

use crate::crs::Crs;
use crate::error::{Error, Result};

/// Median footprint area (m²) below which the input cannot be buildings.
const MIN_MEDIAN_AREA_M2: f64 = 1.0;
/// Median footprint area (m²) above which the input cannot be buildings.
const MAX_MEDIAN_AREA_M2: f64 = 1.0e6;
/// Median distance between consecutive outline vertices (m) below which the input cannot be
/// buildings.
const MIN_MEDIAN_SPACING_M: f64 = 0.01;
/// Warn outside this range of median areas (m²): sheds to warehouses.
const USUAL_MEDIAN_AREA_M2: (f64, f64) = (10.0, 20_000.0);
/// A region more than this wide (m) is refused: no city is; a wrong unit is.
const MAX_EXTENT_M: f64 = 5.0e6;
/// A region of at least `MIN_BUILDINGS_FOR_EXTENT` buildings narrower than this (m) is refused.
const MIN_EXTENT_M: f64 = 10.0;
const MIN_BUILDINGS_FOR_EXTENT: usize = 10;

/// What the footprints of one source look like, in the working CRS (metres).
#[derive(Clone, Debug, PartialEq)]
pub struct FootprintSummary {
    /// Number of footprints summarised.
    pub count: usize,
    /// min x, min y, max x, max y.
    pub extent: [f64; 4],
    /// Median footprint area in m²; NaN when there are no footprints.
    pub median_area_m2: f64,
    /// Median over footprints of the mean edge length of their outlines.
    pub median_vertex_spacing_m: f64,
}

impl FootprintSummary {
    /// Summarises footprints already in a metric CRS. With no footprints the extent is
    /// (+inf, +inf, -inf, -inf) and the medians NaN.
    pub fn of(geoms: &[MultiPolygon<f64>]) -> FootprintSummary {
        let mut extent = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for r in geoms.iter().filter_map(|g| g.bounding_rect()) {
            extent = [
                extent[0].min(r.min().x),
                extent[1].min(r.min().y),
                extent[2].max(r.max().x),
                extent[3].max(r.max().y),
            ];
        }
        let mut areas: Vec<f64> = geoms.iter().map(|g| g.unsigned_area()).collect();
        let mut spacing: Vec<f64> = geoms
            .iter()
            .filter_map(|g| {
                let rings = || {
                    g.0.iter()
                        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                };
                let edges: usize = rings().map(|r| r.0.len().saturating_sub(1)).sum();
                let length: f64 = rings().map(|r| Euclidean.length(r)).sum();
                (edges > 0).then(|| length / edges as f64)
            })
            .collect();
        FootprintSummary {
            count: geoms.len(),
            extent,
            median_area_m2: median(&mut areas),
            median_vertex_spacing_m: median(&mut spacing),
        }
    }

    /// East-west size of the extent in metres.
    pub fn width_m(&self) -> f64 {
        self.extent[2] - self.extent[0]
    }

    /// North-south size of the extent in metres (not a building height).
    pub fn height_m(&self) -> f64 {
        self.extent[3] - self.extent[1]
    }

    /// `x0 y0 – x1 y1` for messages.
    pub fn extent_text(&self) -> String {
        extent_text(&self.extent)
    }
}

/// An extent `[min x, min y, max x, max y]` as `x0 y0 – x1 y1`, to one decimal, for messages.
pub fn extent_text(e: &[f64; 4]) -> String {
    format!("{:.1} {:.1} – {:.1} {:.1}", e[0], e[1], e[2], e[3])
}

fn median(v: &mut Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    crate::stats::percentile::percentile_sorted(v, 50.0)
}

/// Refuses footprints that cannot be buildings (`read_in`: the CRS the file was read in),
/// warns where they are unusual.
pub fn check_footprints(path: &Path, read_in: &Crs, s: &FootprintSummary) -> Result<()> {
    let hint = format!("after reading in {} — is the CRS right?", read_in.label);
    let a = s.median_area_m2;
    if a.is_finite() && !(MIN_MEDIAN_AREA_M2..=MAX_MEDIAN_AREA_M2).contains(&a) {
        return Err(Error::file(
            path,
            format!("median footprint area {a:.1e} m² {hint}"),
        ));
    }
    let d = s.median_vertex_spacing_m;
    if d.is_finite() && d < MIN_MEDIAN_SPACING_M {
        return Err(Error::file(
            path,
            format!("median distance between outline vertices {d:.1e} m {hint}"),
        ));
    }
    let wide = s.width_m().max(s.height_m());
    if wide > MAX_EXTENT_M {
        return Err(Error::file(
            path,
            format!(
                "footprints span {:.0} km ({}) {hint}",
                wide / 1000.0,
                s.extent_text()
            ),
        ));
    }
    if s.count >= MIN_BUILDINGS_FOR_EXTENT && wide < MIN_EXTENT_M {
        return Err(Error::file(
            path,
            format!("{} footprints all lie within {wide:.1e} m {hint}", s.count),
        ));
    }
    if a.is_finite() && !(USUAL_MEDIAN_AREA_M2.0..=USUAL_MEDIAN_AREA_M2.1).contains(&a) {
        tracing::warn!(
            "{}: median footprint area {a:.1} m² is unusual for buildings (read in {})",
            path.display(),
            read_in.label
        );
    }
    Ok(())
}

/// Refuses a data source (point clouds, a raster) whose extent, in the working CRS, does not
/// overlap the footprints' at all: every value taken from it would be missing.
pub fn check_overlap(
    path: &Path,
    what: &str,
    extent: [f64; 4],
    footprints: &FootprintSummary,
    working: &Crs,
) -> Result<()> {
    let f = footprints.extent;
    let overlaps = extent[0] <= f[2] && extent[2] >= f[0] && extent[1] <= f[3] && extent[3] >= f[1];
    if overlaps || !f[0].is_finite() {
        return Ok(());
    }
    Err(Error::file(
        path,
        format!(
            "{what} extent ({}) does not overlap the footprints ({}) in {} — is its CRS right?",
            extent_text(&extent),
            footprints.extent_text(),
            working.label
        ),
    ))
}
