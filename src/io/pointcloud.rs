//! LAS/LAZ point clouds (LAS 1.0–1.4, every point format the `las` crate reads), streamed in
//! chunks and delivered in the city's working CRS with heights in metres, so a city's points
//! never sit in memory all at once.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use las::{PointData, PointDataBuilder, Reader};

use crate::config::LidarConfig;
use crate::crs::{Crs, Transform};
use crate::error::{AtFile, Error, FileKind, Result};

/// Where a file's CRS came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrsSource {
    /// The file's OGC WKT record.
    Wkt,
    /// The file's GeoTIFF key records.
    GeoTiff,
    /// `lidar.crs` in the city config (the file has no CRS record).
    Config,
}

/// One LAS/LAZ file, described from its header.
#[derive(Clone, Debug)]
pub struct PointCloudFile {
    /// The LAS/LAZ file.
    pub path: PathBuf,
    /// LAS version, e.g. `1.4`.
    pub version: String,
    /// LAS point data record format (0–10); formats 6–10 carry 8-bit classes.
    pub point_format: u8,
    /// True for LAZ.
    pub compressed: bool,
    /// Number of points the header announces; reading checks that they are all there.
    pub points: u64,
    /// The file's own horizontal CRS (from its records, else the config's `lidar.crs`).
    pub crs: Crs,
    /// Which of the file or the config gave `crs`.
    pub crs_source: CrsSource,
    /// Metres per z unit.
    pub z_unit_m: f64,
    /// Header bounds in the file's own CRS: min x, min y, min z, max x, max y, max z.
    pub native_bounds: [f64; 6],
    /// Header x/y bounds in the working CRS: min x, min y, max x, max y.
    pub bounds: [f64; 4],
}

/// A chunk of points in the working CRS; z in metres (in the survey's vertical datum).
#[derive(Clone, Debug, Default)]
pub struct PointChunk {
    /// Easting in the working CRS (metres); the four vectors are parallel.
    pub x: Vec<f64>,
    /// Northing in the working CRS (metres).
    pub y: Vec<f64>,
    /// Elevation in metres, not reprojected vertically.
    pub z: Vec<f64>,
    /// ASPRS classification code (2 ground, 6 building, 9 water, …).
    pub class: Vec<u8>,
}

impl PointChunk {
    /// Number of points in the chunk.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True when the chunk holds no point.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Keeps the points for which `keep(index in chunk, x, y, class)` holds, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(usize, f64, f64, u8) -> bool) {
        let mut w = 0;
        for r in 0..self.len() {
            if keep(r, self.x[r], self.y[r], self.class[r]) {
                self.x[w] = self.x[r];
                self.y[w] = self.y[r];
                self.z[w] = self.z[r];
                self.class[w] = self.class[r];
                w += 1;
            }
        }
        self.x.truncate(w);
        self.y.truncate(w);
        self.z.truncate(w);
        self.class.truncate(w);
    }
}

/// Reads the headers of every file of a city's `[lidar]` section.
pub fn open_point_clouds(cfg: &LidarConfig, working: &Crs) -> Result<Vec<PointCloudFile>> {
    let fallback = cfg
        .crs
        .as_deref()
        .map(Crs::from_user)
        .transpose()
        .map_err(|e| match cfg.files.first() {
            Some(f) => Error::of(FileKind::PointCloud, f, format!("lidar.crs: {e}")),
            None => e,
        })?;
    cfg.files
        .iter()
        .map(|p| PointCloudFile::open(p, fallback.as_ref(), cfg.z_unit_m, working))
        .collect()
}

/// Refuses point clouds none of which reaches the footprints' bounding box (`[min x, min y,
/// max x, max y]` in the working CRS): almost always a wrong `lidar.crs` or `footprints.crs`,
/// which would otherwise leave every building without a measurement.
pub fn check_overlap(clouds: &[PointCloudFile], footprints: [f64; 4], config: &Path) -> Result<()> {
    let meets = |b: &[f64; 4]| {
        b[0] <= footprints[2]
            && footprints[0] <= b[2]
            && b[1] <= footprints[3]
            && footprints[1] <= b[3]
    };
    if clouds.is_empty() || clouds.iter().any(|c| meets(&c.bounds)) {
        return Ok(());
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for c in clouds {
        x0 = x0.min(c.bounds[0]);
        y0 = y0.min(c.bounds[1]);
        x1 = x1.max(c.bounds[2]);
        y1 = y1.max(c.bounds[3]);
    }
    Err(Error::of(FileKind::PointCloud,
        config,
        format!(
            "LiDAR extent does not intersect the footprints — check the CRS (lidar.crs, footprints.crs): LiDAR x {x0:.0}..{x1:.0}, y {y0:.0}..{y1:.0}; footprints x {:.0}..{:.0}, y {:.0}..{:.0}",
            footprints[0], footprints[2], footprints[1], footprints[3]
        ),
    ))
}

/// The bounding box `[min x, min y, max x, max y]` of footprints.
pub fn footprints_bbox(geoms: &[geo::MultiPolygon<f64>]) -> [f64; 4] {
    use geo::BoundingRect;
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for r in geoms.iter().filter_map(|g| g.bounding_rect()) {
        b = [
            b[0].min(r.min().x),
            b[1].min(r.min().y),
            b[2].max(r.max().x),
            b[3].max(r.max().y),
        ];
    }
    b
}

fn open_reader(path: &Path) -> Result<Reader> {
    let file = File::open(path)
        .map_err(|e| Error::of(FileKind::PointCloud, path, format!("cannot open: {e}")))?;
    guard(path, || Reader::new(BufReader::new(file)))?.map_err(|e| {
        Error::of(
            FileKind::PointCloud,
            path,
            format!("not a readable LAS/LAZ file: {e}"),
        )
    })
}

/// Runs decoder code that might panic on corrupt input and turns a panic into an error naming
/// the file: the LAZ decoder was not written for hostile input, and a crash loses all work.
fn guard<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        Error::of(
            FileKind::PointCloud,
            path,
            "corrupt point data (the decoder failed)",
        )
    })
}

impl PointCloudFile {
    /// Reads the header; `fallback` is the CRS for files without a CRS record.
    pub fn open(
        path: &Path,
        fallback: Option<&Crs>,
        z_unit_m: Option<f64>,
        working: &Crs,
    ) -> Result<Self> {
        let reader = open_reader(path)?;
        let h = reader.header();
        let (crs, crs_source, geotiff_z_unit) = match file_crs(h).at_kind(FileKind::PointCloud, path)? {
            Some((crs, src, zu)) => (crs, src, zu),
            None => match fallback {
                Some(c) => (c.clone(), CrsSource::Config, None),
                None => {
                    return Err(Error::of(FileKind::PointCloud,
                        path,
                        "has no CRS record; set lidar.crs in the city config (e.g. crs = \"EPSG:28992\")",
                    ))
                }
            },
        };
        let z_unit_m = z_unit_m
            .or(geotiff_z_unit)
            .unwrap_or_else(|| crs.vertical_unit_m());
        let b = h.bounds();
        let native_bounds = [b.min.x, b.min.y, b.min.z, b.max.x, b.max.y, b.max.z];
        let t = Transform::new(&crs, working).at_kind(FileKind::PointCloud, path)?;
        let bounds = t
            .apply_bounds([b.min.x, b.min.y, b.max.x, b.max.y])
            .at_kind(FileKind::PointCloud, path)?;
        let v = h.version();
        Ok(PointCloudFile {
            path: path.to_path_buf(),
            version: format!("{}.{}", v.major, v.minor),
            point_format: h
                .point_format()
                .to_u8()
                .at_kind(FileKind::PointCloud, path)?,
            compressed: h.point_format().is_compressed,
            points: h.number_of_points(),
            crs,
            crs_source,
            z_unit_m,
            native_bounds,
            bounds,
        })
    }

    /// Starts streaming the points in chunks of `chunk_size`.
    pub fn stream(&self, working: &Crs, chunk_size: usize) -> Result<PointStream> {
        let reader = open_reader(&self.path)?;
        let data = PointDataBuilder::new().for_header(reader.header()).build();
        Ok(PointStream {
            path: self.path.clone(),
            transform: Transform::new(&self.crs, working)
                .at_kind(FileKind::PointCloud, &self.path)?,
            z_unit_m: self.z_unit_m,
            remaining: self.points,
            chunk_size: chunk_size.max(1) as u64,
            reader,
            data,
        })
    }
}

/// The CRS recorded in a LAS header (WKT record first, then GeoTIFF keys), with the vertical
/// unit the GeoTIFF keys state, if any.
fn file_crs(h: &las::Header) -> Result<Option<(Crs, CrsSource, Option<f64>)>> {
    if let Some(bytes) = h.get_wkt_crs_bytes() {
        let wkt = String::from_utf8_lossy(bytes);
        let wkt = wkt.trim_matches(char::from(0)).trim();
        if !wkt.is_empty() {
            return Ok(Some((Crs::from_wkt(wkt)?, CrsSource::Wkt, None)));
        }
    }
    let Some(gt) = h
        .get_geotiff_crs()
        .map_err(|e| Error::invalid(format!("bad GeoTIFF CRS record: {e}")))?
    else {
        return Ok(None);
    };
    let key = |id: u16| {
        gt.entries
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| match e.data {
                las::crs::GeoTiffData::U16(v) => Some(v),
                _ => None,
            })
    };
    let code = key(3072)
        .filter(|c| (1024..32767).contains(c))
        .or_else(|| key(2048).filter(|c| (1024..32767).contains(c)));
    let Some(code) = code else {
        return Err(Error::invalid(
            "has a user-defined GeoTIFF CRS without a WKT record; set lidar.crs in the city config",
        ));
    };
    let crs = Crs::from_epsg(code as u32)?;
    // VerticalUnitsGeoKey (4099): EPSG unit codes.
    let z_unit = key(4099).and_then(|u| match u {
        9001 => Some(1.0),
        9002 => Some(0.3048),
        9003 => Some(1200.0 / 3937.0),
        _ => None,
    });
    Ok(Some((crs, CrsSource::GeoTiff, z_unit)))
}

/// Streams a file's points, chunk by chunk.
pub struct PointStream {
    path: PathBuf,
    reader: Reader,
    transform: Transform,
    z_unit_m: f64,
    remaining: u64,
    chunk_size: u64,
    data: PointData,
}

impl PointStream {
    /// Fills `out` with the next chunk; returns false when the file is exhausted.
    pub fn next_chunk(&mut self, out: &mut PointChunk) -> Result<bool> {
        out.x.clear();
        out.y.clear();
        out.z.clear();
        out.class.clear();
        if self.remaining == 0 {
            return Ok(false);
        }
        let want = self.remaining.min(self.chunk_size);
        let (reader, data) = (&mut self.reader, &mut self.data);
        let got = guard(&self.path, || reader.fill_points(want, data))?.map_err(|e| {
            let msg = match &e {
                las::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => format!(
                    "truncated: the file ends before the {} points its header promises",
                    self.remaining
                ),
                _ => format!("cannot read points: {e}"),
            };
            Error::of(FileKind::PointCloud, &self.path, msg)
        })?;
        if got < want {
            return Err(Error::of(
                FileKind::PointCloud,
                &self.path,
                format!(
                    "truncated: the header promises {} more points than the file holds",
                    self.remaining - got
                ),
            ));
        }
        self.remaining -= got;
        out.x.extend(self.data.x());
        out.y.extend(self.data.y());
        out.z.extend(self.data.z().map(|z| z * self.z_unit_m));
        out.class.extend(self.data.classification());
        if out
            .x
            .iter()
            .chain(&out.y)
            .chain(&out.z)
            .any(|v| !v.is_finite())
        {
            return Err(Error::of(
                FileKind::PointCloud,
                &self.path,
                "holds non-finite coordinates",
            ));
        }
        self.transform
            .apply(&mut out.x, &mut out.y)
            .at_kind(FileKind::PointCloud, &self.path)?;
        Ok(true)
    }

    /// The file being streamed (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
}
