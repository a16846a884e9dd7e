//! A cache of each city's labels and features between runs, so that `train`, `predict` and
//! `cv` on the same city decode its LiDAR and compute its context once: at 100 000 buildings
//! that is ~50 s a run, more than fitting the model.
//!
//! An entry is keyed by everything the result depends on: roofline's own executable (a rebuilt
//! or upgraded roofline misses), the parsed config, every input file's path, size and
//! modification time (the footprint file with its sidecars, the LiDAR tiles, the rasters and
//! masks) and the feature options. An edited input therefore misses and is recomputed; an entry
//! that cannot be read is ignored with a warning. A city read from a database is never cached:
//! its rows can change without any file changing. Build tools key on file metadata the same
//! way for their own graphs; no crate offers it for a computation like this one, hence here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use geo::{Coord, LineString, MultiPolygon, Polygon};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{city_features, CityFeatures, FeatureOptions};
use crate::config::{is_postgis, CityConfig};
use crate::crs::Crs;
use crate::error::Result;
use crate::label::LabelTable;
use crate::progress::Progress;

/// Bumped whenever [`Entry`] changes shape.
const FORMAT: u32 = 1;

/// Entries beyond this total size are removed, least recently used first.
const MAX_BYTES: u64 = 4 << 30;

/// A folder of cached cities (`--cache DIR`).
#[derive(Clone, Debug)]
pub struct FeatureCache {
    dir: PathBuf,
}

/// One polygon: its exterior ring, then its holes, each a list of `[x, y]`.
type Rings = Vec<Vec<[f64; 2]>>;

/// What a cache file holds: [`CityFeatures`] with plain containers in place of geometry and
/// array types.
#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    city: String,
    crs: Crs,
    source_crs: Crs,
    ids: Vec<String>,
    geometries: Vec<Vec<Rings>>,
    centroids: Vec<[f64; 2]>,
    labels: Option<LabelTable>,
    names: Vec<String>,
    rows: usize,
    values: Vec<f64>,
    skipped: Vec<String>,
}

impl FeatureCache {
    /// A cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> FeatureCache {
        FeatureCache { dir: dir.into() }
    }

    /// [`city_features`] from the cache when an entry for exactly these inputs exists, else
    /// computed and stored. A failed store is a warning: the features are still returned.
    pub fn city_features(
        &self,
        cfg: &CityConfig,
        options: FeatureOptions,
        progress: &Progress,
    ) -> Result<CityFeatures> {
        let Some(key) = key(cfg, options) else {
            return city_features(cfg, options, progress);
        };
        let path = self.dir.join(format!("features-{key}.bin"));
        let t = Instant::now();
        if let Some(mut f) = read_entry(&path) {
            f.timings = BTreeMap::from([("cache".to_string(), t.elapsed().as_secs_f64())]);
            tracing::info!("{}: labels and features from {}", f.city, path.display());
            return Ok(f);
        }
        let f = city_features(cfg, options, progress)?;
        if let Err(e) = self.store(&path, &f) {
            tracing::warn!("could not cache the features of {}: {e}", f.city);
        }
        Ok(f)
    }

    fn store(&self, path: &Path, f: &CityFeatures) -> std::result::Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let entry = Entry::of(f);
        let bytes = bincode::serde::encode_to_vec(&entry, bincode::config::standard())
            .map_err(|e| e.to_string())?;
        crate::io::output::write_bytes(path, &bytes).map_err(|e| e.to_string())?;
        self.prune();
        Ok(())
    }

    /// Removes the least recently used entries while the cache holds more than [`MAX_BYTES`].
    fn prune(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = dir
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("features-"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        entries.sort();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        for (_, len, path) in entries {
            if total <= MAX_BYTES {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// The entry at `path`, or `None` when there is none or it cannot be read (then with a
/// warning, and it is recomputed and overwritten). A hit marks the entry as recently used.
fn read_entry(path: &Path) -> Option<CityFeatures> {
    let bytes = std::fs::read(path).ok()?;
    let decoded: std::result::Result<(Entry, usize), _> =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard());
    match decoded.ok().and_then(|(e, _)| e.into_features()) {
        Some(f) => {
            if let Ok(file) = std::fs::File::options().append(true).open(path) {
                let _ = file.set_modified(SystemTime::now());
            }
            Some(f)
        }
        None => {
            tracing::warn!(
                "ignoring the unreadable cache entry {} (recomputing it)",
                path.display()
            );
            None
        }
    }
}

/// The entry's name: a hash of everything [`city_features`] reads, or `None` when some input
/// cannot be pinned down (a database, or roofline's own executable cannot be found).
pub fn key(cfg: &CityConfig, options: FeatureOptions) -> Option<String> {
    let mut h = blake3::Hasher::new();
    let mut line = |s: String| {
        h.update(s.as_bytes());
        h.update(b"\n");
    };
    line(format!("roofline feature cache {FORMAT}"));
    line(file_stamp(&std::env::current_exe().ok()?)?);
    line(format!("{cfg:?}"));
    line(format!("{options:?}"));
    let mut inputs = vec![cfg.path.clone()];
    if let Some(fp) = &cfg.footprints {
        if is_postgis(&fp.path) {
            return None;
        }
        inputs.extend(with_sidecars(&fp.path));
    }
    if let Some(l) = &cfg.lidar {
        inputs.extend(l.files.iter().cloned());
    }
    if let Some(crate::config::LabelConfig::Survey(s)) = &cfg.label {
        inputs.extend(with_sidecars(&s.path));
    }
    for im in &cfg.imagery {
        inputs.extend(with_sidecars(&im.path));
        if let Some(m) = &im.mask {
            inputs.extend(with_sidecars(&m.path));
        }
    }
    for p in &inputs {
        line(file_stamp(p)?);
    }
    Some(h.finalize().to_hex()[..32].to_string())
}

/// Path, size and modification time of a file.
fn file_stamp(p: &Path) -> Option<String> {
    let m = std::fs::metadata(p).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    Some(format!("{} {} {}", p.display(), m.len(), t.as_nanos()))
}

/// `p` and the files beside it that GDAL reads with it: those named `p`'s stem plus an
/// extension (`x.shp` → `x.dbf`, `x.shx`, `x.prj`, `x.cpg`; `x.tif` → `x.tif.aux.xml`;
/// `x.gpkg` → `x.gpkg-wal`), sorted.
fn with_sidecars(p: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (p.parent(), p.file_stem()) else {
        return vec![p.to_path_buf()];
    };
    let stem = stem.to_string_lossy().into_owned();
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|q| {
                    q.file_name()
                        .map(|n| n.to_string_lossy())
                        .is_some_and(|n| n.starts_with(&format!("{stem}.")))
                })
                .collect()
        })
        .unwrap_or_default();
    if !out.iter().any(|q| q == p) {
        out.push(p.to_path_buf());
    }
    out.sort();
    out
}

impl Entry {
    fn of(f: &CityFeatures) -> Entry {
        Entry {
            format: FORMAT,
            city: f.city.clone(),
            crs: f.crs.clone(),
            source_crs: f.source_crs.clone(),
            ids: f.ids.clone(),
            geometries: f.geometries.iter().map(rings_of).collect(),
            centroids: f.centroids.clone(),
            labels: f.labels.clone(),
            names: f.names.clone(),
            rows: f.values.nrows(),
            values: f.values.iter().copied().collect(),
            skipped: f.skipped.clone(),
        }
    }

    /// The features back, or `None` when the entry is inconsistent.
    fn into_features(self) -> Option<CityFeatures> {
        if self.format != FORMAT || self.ids.len() != self.rows {
            return None;
        }
        let values = Array2::from_shape_vec((self.rows, self.names.len()), self.values).ok()?;
        Some(CityFeatures {
            city: self.city,
            crs: self.crs,
            source_crs: self.source_crs,
            ids: self.ids,
            geometries: self.geometries.into_iter().map(polygons_of).collect(),
            centroids: self.centroids,
            labels: self.labels,
            names: self.names,
            values,
            timings: BTreeMap::new(),
            skipped: self.skipped,
        })
    }
}

fn rings_of(g: &MultiPolygon<f64>) -> Vec<Rings> {
    let ring = |l: &LineString<f64>| l.coords().map(|c| [c.x, c.y]).collect::<Vec<_>>();
    g.0.iter()
        .map(|p| {
            std::iter::once(ring(p.exterior()))
                .chain(p.interiors().iter().map(ring))
                .collect()
        })
        .collect()
}

fn polygons_of(polygons: Vec<Rings>) -> MultiPolygon<f64> {
    let line = |r: Vec<[f64; 2]>| LineString(r.into_iter().map(|[x, y]| Coord { x, y }).collect());
    MultiPolygon(
        polygons
            .into_iter()
            .map(|rings| {
                let mut it = rings.into_iter();
                let exterior = it.next().map(line).unwrap_or_else(|| LineString(vec![]));
                Polygon::new(exterior, it.map(line).collect())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sidecars_are_the_files_sharing_the_stem() {
        let d = tempfile::tempdir().unwrap();
        for n in ["a.shp", "a.dbf", "a.shx", "ab.shp", "b.dbf"] {
            std::fs::File::create(d.path().join(n))
                .unwrap()
                .write_all(b"x")
                .unwrap();
        }
        let names: Vec<String> = with_sidecars(&d.path().join("a.shp"))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.dbf", "a.shp", "a.shx"]);
    }

    #[test]
    fn geometries_round_trip_with_holes() {
        let wkt_like = vec![vec![
            vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 0.0]],
            vec![[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 1.0]],
        ]];
        let g = polygons_of(wkt_like.clone());
        assert_eq!(g.0[0].interiors().len(), 1);
        assert_eq!(rings_of(&g), wkt_like);
    }
}
