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
    features_in_blocks(geoms, working, cfg, BLOCK_PX)
}

/// [`imagery_features`], reading the raster in blocks of `block_px` pixels a side.
fn features_in_blocks(
    geoms: &[MultiPolygon<f64>],
    working: &Crs,
    cfg: &ImageryConfig,
    block_px: usize,
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
    let gt = raster.geo_transform;
    if !(gt[1] > 0.0 && gt[5] < 0.0) {
        return Err(Error::of(
            FileKind::Raster,
            &cfg.path,
            "has a south-up or flipped geotransform, which roofline does not read",
        ));
    }
    let blocks = blocks_of(&raster, shapes.iter().map(|(_, b)| b), block_px);
    // A raster that misses every footprint, or holds nothing valid under them, is a wrong CRS
    // or a wrong file: refuse rather than silently give every building missing values.
    if blocks.is_empty() {
        return Err(Error::of(FileKind::Raster,
            &cfg.path,
            format!(
                "raster extent does not intersect the footprints — check the CRS (imagery.crs; the file says {})",
                crs.label
            ),
        ));
    }
    let mask = match &cfg.mask {
        Some(m) => Some((open_raster(&m.path, None)?, m)),
        None => None,
    };
    let n_out = names(cfg).len();
    let mut rows = vec![vec![f64::NAN; n_out]; shapes.len()];
    let mut any_valid = false;
    for block in blocks {
        let window = read_window(&raster, cfg, mask.as_ref(), block.pixels)?;
        any_valid |= window.bands[..cfg.bands.len()]
            .iter()
            .any(|b| b.iter().any(|v| v.is_finite()));
        let stats: Vec<Vec<f64>> = block
            .members
            .par_iter()
            .map(|&i| shape_stats(&shapes[i], &window, n_out))
            .collect();
        for (&i, row) in block.members.iter().zip(stats) {
            rows[i] = row;
        }
    }
    if !any_valid {
        return Err(Error::of(FileKind::Raster,
            &cfg.path,
            "holds only nodata (or masked) pixels over the footprints — check the file, its nodata value and imagery.mask",
        ));
    }
    Ok(rows)
}

/// Statistics of one footprint and its ring over a window that holds its buffered box.
fn shape_stats(
    (f, b): &(MultiPolygon<f64>, MultiPolygon<f64>),
    window: &Window,
    n_out: usize,
) -> Vec<f64> {
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
}

/// Side, in pixels, of the raster blocks footprints are grouped by. Each block reads only the
/// window its footprints need, so memory follows a block, not the city: aerial imagery at
/// 25 cm over a city would be tens of gigabytes held whole as f64. (A Landsat scene over a
/// city is one block.)
const BLOCK_PX: usize = 1024;

/// Footprints grouped by the raster block of their box's corner, with the pixel window
/// `[c0, c1, r0, r1)` (clipped to the raster) that holds all of them.
struct Block {
    pixels: [usize; 4],
    members: Vec<usize>,
}

/// The blocks of the shapes that meet the raster, in raster order.
fn blocks_of<'a>(
    raster: &Raster,
    shapes: impl Iterator<Item = &'a MultiPolygon<f64>>,
    block_px: usize,
) -> Vec<Block> {
    use geo::BoundingRect;
    let gt = raster.geo_transform;
    let (dx, dy) = (gt[1], -gt[5]);
    let mut blocks: std::collections::BTreeMap<(usize, usize), Block> = Default::default();
    for (i, s) in shapes.enumerate() {
        let Some(r) = s.bounding_rect() else { continue };
        let c0 = ((r.min().x - gt[0]) / dx).floor().max(0.0) as usize;
        let c1 = (((r.max().x - gt[0]) / dx).ceil().min(raster.width as f64)).max(0.0) as usize;
        let r0 = ((gt[3] - r.max().y) / dy).floor().max(0.0) as usize;
        let r1 = (((gt[3] - r.min().y) / dy).ceil().min(raster.height as f64)).max(0.0) as usize;
        if !r.min().x.is_finite() || c1 <= c0 || r1 <= r0 {
            continue;
        }
        let b = blocks
            .entry((r0 / block_px, c0 / block_px))
            .or_insert(Block {
                pixels: [c0, c1, r0, r1],
                members: Vec::new(),
            });
        let p = &mut b.pixels;
        *p = [p[0].min(c0), p[1].max(c1), p[2].min(r0), p[3].max(r1)];
        b.members.push(i);
    }
    blocks.into_values().collect()
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

/// Reads the pixel window `[c0, c1, r0, r1)`, with the mask applied and derived bands added.
fn read_window(
    raster: &Raster,
    cfg: &ImageryConfig,
    mask: Option<&(Raster, &crate::config::MaskConfig)>,
    [c0, c1, r0, r1]: [usize; 4],
) -> Result<Window> {
    let gt = raster.geo_transform;
    let (cols, rows) = (c1 - c0, r1 - r0);
    let grid = Grid {
        x0: gt[0],
        y0: gt[3],
        dx: gt[1],
        dy: -gt[5],
        col0: c0,
        row0: r0,
        cols,
        rows,
    };
    let mut bands: Vec<Vec<f64>> = Vec::with_capacity(cfg.bands.len() + 2);
    for b in 1..=raster.bands.len() {
        bands.push(raster.read_window(b, c0, r0, cols, rows)?);
    }
    if let Some((m, cfg)) = mask {
        let clear = mask_clear(m, cfg, &grid, raster.crs.as_ref())?;
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
    Ok(Window { grid, bands })
}

/// Whether each window pixel is clear, looking up the mask pixel under each pixel centre (the
/// mask may be on another grid, even in another CRS). Reads only the mask pixels it looks up.
fn mask_clear(
    m: &Raster,
    mask: &crate::config::MaskConfig,
    grid: &Grid,
    image_crs: Option<&Crs>,
) -> Result<Vec<bool>> {
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
    // Mask pixel of each centre, None outside the mask.
    let cells: Vec<Option<(usize, usize)>> = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| {
            let c = ((x - mgt[0]) / mgt[1]).floor();
            let r = ((y - mgt[3]) / mgt[5]).floor();
            (c >= 0.0 && r >= 0.0 && c < m.width as f64 && r < m.height as f64)
                .then_some((c as usize, r as usize))
        })
        .collect();
    let (mut c0, mut c1, mut r0, mut r1) = (usize::MAX, 0, usize::MAX, 0);
    for &(c, r) in cells.iter().flatten() {
        (c0, c1, r0, r1) = (c0.min(c), c1.max(c + 1), r0.min(r), r1.max(r + 1));
    }
    if c1 == 0 {
        return Ok(vec![false; cells.len()]);
    }
    let w = c1 - c0;
    let values = m.read_window(1, c0, r0, w, r1 - r0)?;
    Ok(cells
        .iter()
        .map(|cell| {
            cell.is_some_and(|(c, r)| {
                let v = values[(r - r0) * w + (c - c0)];
                v.is_finite() && mask.clear.contains(&(v as i64))
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading the raster in small blocks (each a few Landsat pixels, so Wageningen's
    /// footprints fall into hundreds of windows) gives the same values, bit for bit, as one
    /// window over the whole city: a footprint's statistics depend on its own pixels only.
    #[test]
    fn blocks_give_the_values_of_one_window() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cities/wageningen.toml");
        let city = crate::config::CityConfig::load(&path).unwrap();
        let fp = crate::label::read_city_footprints(&city).unwrap();
        let cfg = &city.imagery[0];
        let whole = features_in_blocks(&fp.geometries, &fp.crs, cfg, usize::MAX / 2).unwrap();
        let raster = open_raster(&cfg.path, None).unwrap();
        let crs = raster.crs.clone().unwrap();
        let shapes = super::super::reproject_many(&fp.geometries, &fp.crs, &crs).unwrap();
        let buffers: Vec<_> = shapes.iter().map(|g| g.buffer(RING_M)).collect();
        let n_blocks = |px| blocks_of(&raster, buffers.iter(), px).len();
        assert_eq!(n_blocks(usize::MAX / 2), 1);
        assert!(n_blocks(2) > 100, "{} blocks of 2 px", n_blocks(2));
        assert!(raster.geo_transform[1] > 20.0, "Landsat pixels");
        let blocked = features_in_blocks(&fp.geometries, &fp.crs, cfg, 2).unwrap();
        assert_eq!(whole.len(), fp.len());
        let same = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
        };
        let differ = (0..whole.len())
            .filter(|&i| !same(&whole[i], &blocked[i]))
            .count();
        assert_eq!(differ, 0, "{differ} of {} rows differ", whole.len());
        let valid = whole.iter().filter(|r| r[0].is_finite()).count();
        assert!(valid > fp.len() * 9 / 10, "{valid} rows with a value");
    }
}
