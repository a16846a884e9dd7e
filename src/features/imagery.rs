//! Imagery statistics per building: for every band (plus NDVI and brightness), the mean,
//! standard deviation, minimum and maximum over the pixels the footprint covers, each pixel
//! weighted by the exact fraction covered — so a 40 m² house still gets a value from 30 m
//! Landsat pixels — and the same over a 0–10 m ring around it (shadows, gardens, streets).
//! Nodata and masked (cloud, shadow) pixels are left out; a building with no valid pixel gets
//! missing values, never zeros.

use geo::{Buffer, MultiPolygon};
use rayon::prelude::*;

use super::coverage::{coverage, Cover, Grid};
use crate::config::ImageryConfig;
use crate::crs::{Crs, Transform};
use crate::error::{AtFile, Error, FileKind, Result};
use crate::io::raster::{open_raster, Raster};

/// Width (m) of the ring around the footprint.
pub const RING_M: f64 = 10.0;
/// Statistics per band and zone, in column order (coverage-weighted).
pub const STATS: [&str; 4] = ["mean", "std", "min", "max"];

/// The bands a config yields: its named bands, then `ndvi` (with `red` and `nir`) and
/// `brightness`.
pub fn band_names(cfg: &ImageryConfig) -> Vec<String> {
    let mut b = cfg.bands.clone();
    if has_ndvi(cfg) {
        b.push("ndvi".into());
    }
    b.push("brightness".into());
    b
}

fn has_ndvi(cfg: &ImageryConfig) -> bool {
    cfg.bands.iter().any(|b| b == "red") && cfg.bands.iter().any(|b| b == "nir")
}

/// Feature names for one imagery config, in column order.
pub fn names(cfg: &ImageryConfig) -> Vec<String> {
    let mut n = Vec::new();
    for band in band_names(cfg) {
        for zone in ["", "_ring"] {
            for s in STATS {
                n.push(format!("{}_{band}{zone}_{s}", cfg.name));
            }
        }
    }
    n
}

/// The pixel values of a raster window, per band (named bands, then derived ones), with
/// masked and nodata pixels as NaN.
struct Window {
    grid: Grid,
    bands: Vec<Vec<f64>>,
}

/// Imagery features for footprints given in `working` CRS (rows in input order, columns as
/// [`names`]).
pub fn imagery_features(
    geoms: &[MultiPolygon<f64>],
    working: &Crs,
    cfg: &ImageryConfig,
) -> Result<Vec<Vec<f64>>> {
    let mut raster = open_raster(&cfg.path, cfg.crs.as_deref())?;
    for b in &mut raster.bands {
        b.scale = cfg.scale.unwrap_or(b.scale);
        b.offset = cfg.offset.unwrap_or(b.offset);
    }
    if raster.bands.len() != cfg.bands.len() {
        return Err(Error::of(
            FileKind::Raster,
            &cfg.path,
            format!(
                "has {} bands but the config names {}",
                raster.bands.len(),
                cfg.bands.len()
            ),
        ));
    }
    let crs = raster.crs.clone().ok_or_else(|| {
        Error::of(
            FileKind::Raster,
            &cfg.path,
            "has no CRS; set imagery.crs in the city config",
        )
    })?;
    if !raster.is_axis_aligned() {
        return Err(Error::of(
            FileKind::Raster,
            &cfg.path,
            "has a rotated geotransform, which roofline does not read",
        ));
    }
    let extent = crate::crs::Transform::new(&crs, working)
        .and_then(|t| t.apply_bounds(raster_bounds(&raster)))
        .at_kind(FileKind::Raster, &cfg.path)?;
    crate::io::plausible::check_overlap(
        &cfg.path,
        "raster",
        extent,
        &crate::io::plausible::FootprintSummary::of(geoms),
        working,
    )?;
    let footprints =
        super::reproject_many(geoms, working, &crs).at_kind(FileKind::Raster, &cfg.path)?;
    // Buffer where distances are metres: in the raster's CRS when it is metric (far fewer
    // vertices to reproject), else in the working CRS.
    let buffers: Vec<MultiPolygon<f64>> = if crs.is_metric_projected() {
        footprints.par_iter().map(|g| g.buffer(RING_M)).collect()
    } else {
        let b: Vec<MultiPolygon<f64>> = geoms.par_iter().map(|g| g.buffer(RING_M)).collect();
        super::reproject_many(&b, working, &crs).at_kind(FileKind::Raster, &cfg.path)?
    };
    let shapes: Vec<(MultiPolygon<f64>, MultiPolygon<f64>)> =
        footprints.into_iter().zip(buffers).collect();
    let window = read_window(&raster, cfg, shapes.iter().map(|(_, b)| b))?;
    let n_out = names(cfg).len();
    // A raster that misses every footprint, or holds nothing valid under them, is a wrong CRS
    // or a wrong file: refuse rather than silently give every building missing values.
    let Some(window) = window else {
        return Err(Error::of(FileKind::Raster,
            &cfg.path,
            format!(
                "raster extent does not intersect the footprints — check the CRS (imagery.crs; the file says {})",
                crs.label
            ),
        ));
    };
    if window.bands[..cfg.bands.len()]
        .iter()
        .all(|b| b.iter().all(|v| !v.is_finite()))
    {
        return Err(Error::of(FileKind::Raster,
            &cfg.path,
            "holds only nodata (or masked) pixels over the footprints — check the file, its nodata value and imagery.mask",
        ));
    }
    Ok(shapes
        .par_iter()
        .map(|(f, b)| {
            let inner = coverage(f, &window.grid);
            let outer = coverage(b, &window.grid);
            let ring = ring_cover(&outer, &inner);
            let mut row = Vec::with_capacity(n_out);
            for band in &window.bands {
                for covers in [&inner, &ring] {
                    row.extend(weighted_stats(covers, band, window.grid.cols));
                }
            }
            row
        })
        .collect())
}

/// The raster's x/y bounds in its own CRS (axis-aligned geotransform).
fn raster_bounds(r: &Raster) -> [f64; 4] {
    let g = r.geo_transform;
    let (x0, x1) = (g[0], g[0] + g[1] * r.width as f64);
    let (y0, y1) = (g[3], g[3] + g[5] * r.height as f64);
    [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)]
}

/// Ring = buffered polygon minus footprint, pixel by pixel.
fn ring_cover(outer: &[Cover], inner: &[Cover]) -> Vec<Cover> {
    let mut out = Vec::with_capacity(outer.len());
    let mut j = 0;
    for o in outer {
        // Both lists are in (row, col) order.
        while j < inner.len() && (inner[j].row, inner[j].col) < (o.row, o.col) {
            j += 1;
        }
        let f = if j < inner.len() && (inner[j].row, inner[j].col) == (o.row, o.col) {
            o.fraction - inner[j].fraction
        } else {
            o.fraction
        };
        if f > 1e-12 {
            out.push(Cover { fraction: f, ..*o });
        }
    }
    out
}

/// Weighted mean, standard deviation, min and max of the valid (finite) pixels.
fn weighted_stats(covers: &[Cover], band: &[f64], cols: usize) -> [f64; 4] {
    let (mut sw, mut swx) = (0.0, 0.0);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for c in covers {
        let v = band[c.row * cols + c.col];
        if v.is_finite() {
            sw += c.fraction;
            swx += c.fraction * v;
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if sw <= 0.0 {
        return [f64::NAN; 4];
    }
    let mean = swx / sw;
    let var = covers
        .iter()
        .map(|c| (c.fraction, band[c.row * cols + c.col]))
        .filter(|(_, v)| v.is_finite())
        .map(|(w, v)| w * (v - mean).powi(2))
        .sum::<f64>()
        / sw;
    [mean, var.max(0.0).sqrt(), lo, hi]
}

/// Reads the raster window covering all shapes, with the mask applied and derived bands added.
fn read_window<'a>(
    raster: &Raster,
    cfg: &ImageryConfig,
    shapes: impl Iterator<Item = &'a MultiPolygon<f64>>,
) -> Result<Option<Window>> {
    use geo::BoundingRect;
    let gt = raster.geo_transform;
    let (dx, dy) = (gt[1], -gt[5]);
    if !(dx > 0.0 && dy > 0.0) {
        return Err(Error::of(
            FileKind::Raster,
            &raster.path,
            "has a south-up or flipped geotransform, which roofline does not read",
        ));
    }
    let (mut x0, mut y0, mut x1, mut y1) = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for s in shapes {
        if let Some(r) = s.bounding_rect() {
            x0 = x0.min(r.min().x);
            y0 = y0.min(r.min().y);
            x1 = x1.max(r.max().x);
            y1 = y1.max(r.max().y);
        }
    }
    let c0 = (((x0 - gt[0]) / dx).floor().max(0.0)) as usize;
    let c1 = (((x1 - gt[0]) / dx).ceil().min(raster.width as f64)).max(0.0) as usize;
    let r0 = (((gt[3] - y1) / dy).floor().max(0.0)) as usize;
    let r1 = (((gt[3] - y0) / dy).ceil().min(raster.height as f64)).max(0.0) as usize;
    if !x0.is_finite() || c1 <= c0 || r1 <= r0 {
        return Ok(None);
    }
    let (cols, rows) = (c1 - c0, r1 - r0);
    let grid = Grid {
        x0: gt[0],
        y0: gt[3],
        dx,
        dy,
        col0: c0,
        row0: r0,
        cols,
        rows,
    };
    let mut bands: Vec<Vec<f64>> = Vec::with_capacity(cfg.bands.len() + 2);
    for b in 1..=raster.bands.len() {
        bands.push(raster.read_window(b, c0, r0, cols, rows)?);
    }
    if let Some(mask) = &cfg.mask {
        let clear = mask_clear(mask, &grid, raster.crs.as_ref())?;
        for band in &mut bands {
            for (v, ok) in band.iter_mut().zip(&clear) {
                if !ok {
                    *v = f64::NAN;
                }
            }
        }
    }
    let named = |name: &str| cfg.bands.iter().position(|b| b == name);
    if let (Some(r), Some(n)) = (named("red"), named("nir")) {
        let ndvi = bands[r]
            .iter()
            .zip(&bands[n])
            .map(|(r, n)| {
                if r + n != 0.0 {
                    (n - r) / (n + r)
                } else {
                    f64::NAN
                }
            })
            .collect();
        bands.push(ndvi);
    }
    let k = cfg.bands.len();
    let brightness = (0..cols * rows)
        .map(|i| bands[..k].iter().map(|b| b[i]).sum::<f64>() / k as f64)
        .collect();
    bands.push(brightness);
    Ok(Some(Window { grid, bands }))
}

/// Whether each window pixel is clear, looking up the mask pixel under each pixel centre (the
/// mask may be on another grid, even in another CRS).
fn mask_clear(
    mask: &crate::config::MaskConfig,
    grid: &Grid,
    image_crs: Option<&Crs>,
) -> Result<Vec<bool>> {
    let m = open_raster(&mask.path, None)?;
    let mgt = m.geo_transform;
    let mut xs = Vec::with_capacity(grid.cols * grid.rows);
    let mut ys = Vec::with_capacity(grid.cols * grid.rows);
    for r in 0..grid.rows {
        for c in 0..grid.cols {
            xs.push(grid.x0 + ((grid.col0 + c) as f64 + 0.5) * grid.dx);
            ys.push(grid.y0 - ((grid.row0 + r) as f64 + 0.5) * grid.dy);
        }
    }
    if let (Some(a), Some(b)) = (image_crs, m.crs.as_ref()) {
        Transform::new(a, b)
            .at_kind(FileKind::Raster, &mask.path)?
            .apply(&mut xs, &mut ys)
            .at_kind(FileKind::Raster, &mask.path)?;
    }
    let values = m.read_window(1, 0, 0, m.width, m.height)?;
    Ok(xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| {
            let c = ((x - mgt[0]) / mgt[1]).floor();
            let r = ((y - mgt[3]) / mgt[5]).floor();
            if c < 0.0 || r < 0.0 || c >= m.width as f64 || r >= m.height as f64 {
                return false;
            }
            let v = values[r as usize * m.width + c as usize];
            v.is_finite() && mask.clear.contains(&(v as i64))
        })
        .collect())
}
