//! Shared helpers for the integration tests (real data in `data/`).
#![allow(dead_code)]

pub mod derive;

use std::path::{Path, PathBuf};
use std::process::Command;

use roofline::config::CityConfig;

pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

pub fn city_config(name: &str) -> CityConfig {
    CityConfig::load(data().join("cities").join(format!("{name}.toml")))
        .expect("shipped config loads")
}

pub fn sample_config(name: &str) -> CityConfig {
    CityConfig::load(data().join("lidar-samples").join(format!("{name}.toml")))
        .expect("shipped config loads")
}

/// A shipped city's labels and features, without known-neighbour heights (what training and
/// leave-one-city-out use).
pub fn plain_features(name: &str) -> roofline::features::CityFeatures {
    roofline::features::city_features(
        &city_config(name),
        roofline::features::FeatureOptions {
            known_heights: false,
            ..Default::default()
        },
        &roofline::progress::Progress::hidden(),
    )
    .unwrap()
}

/// Default training options with fewer, faster trees (150 at learning rate 0.1), for tests
/// whose point is not the model's accuracy.
pub fn quick_options() -> roofline::model::train::TrainOptions {
    use linfa::ParamGuard;
    roofline::model::train::TrainOptions {
        gbm: roofline::model::boosting::GbmParams::new()
            .n_trees(150)
            .learning_rate(0.1)
            .check()
            .unwrap(),
        ..Default::default()
    }
}

/// Runs `f` on a pool of `threads` threads (results must not depend on it).
pub fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Runs the roofline binary; returns (exit code, stdout, stderr).
pub fn roofline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roofline"))
        .args(args)
        // A cache set in the developer's shell would let runs skip the work the tests check.
        .env_remove("ROOFLINE_CACHE")
        .output()
        .expect("roofline binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a config file into `dir` and returns its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Asserts a failed run: exit code 1, exactly one stderr line naming `file`, no panic.
pub fn assert_clean_error(code: i32, stderr: &str, file: &str) {
    assert_eq!(code, 1, "exit code; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(!stderr.contains("internal error"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line expected, got: {stderr}");
    assert!(lines[0].starts_with("roofline: error: "), "{stderr}");
    assert!(
        lines[0].contains(file),
        "error should name {file}: {stderr}"
    );
}

/// Runs roofline with `args`, expecting one error line that names `file` and each of
/// `words`, and nothing written at `out`.
pub fn refuses(args: &[&str], out: &Path, file: &str, words: &[&str]) {
    let (code, _, err) = roofline(args);
    assert_clean_error(code, &err, file);
    for w in words {
        assert!(err.contains(w), "'{w}' not in: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
}

/// The outputs of `roofline demo` (out/ and models/ under the tests' temporary folder), made
/// once per build of the binary and shared by the tests that read them (the browser test, the
/// notebook): a file lock serialises test processes, a stamp of the binary says whether the
/// outputs are current. Also a Périgueux map predicted by the demo's model (`perigueux.html`).
pub fn demo_outputs() -> PathBuf {
    use std::os::fd::AsRawFd;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.with_extension("lock")).unwrap();
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let exe = Path::new(env!("CARGO_BIN_EXE_roofline"));
    let meta = std::fs::metadata(exe).unwrap();
    let stamp = format!("{:?} {}", meta.modified().unwrap(), meta.len());
    let stamp_file = dir.join("stamp");
    if std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        return dir;
    }
    let run = |args: &[&str]| {
        let out = Command::new(exe).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "roofline {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |p: PathBuf| p.display().to_string();
    run(&[
        "demo",
        "--quiet",
        "--data",
        &s(data()),
        "--output",
        &s(dir.join("out")),
        "--models",
        &s(dir.join("models")),
    ]);
    run(&[
        "predict",
        "--quiet",
        "--no-recalibrate",
        "--model",
        &s(dir.join("models/roof-p70.model")),
        &s(data().join("cities/perigueux.toml")),
        "-o",
        &s(dir.join("perigueux.html")),
    ]);
    std::fs::write(&stamp_file, stamp).unwrap();
    dir
}

/// Asserts two tables are the same bit for bit: columns (names, order, types, values — floats
/// by their bits), geometry coordinates and CRS.
pub fn assert_same_table(
    single: &roofline::io::table::Table,
    merged: &roofline::io::table::Table,
    what: &str,
) {
    let names = |t: &roofline::io::table::Table| {
        t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(single), names(merged), "{what}: columns");
    assert_eq!(single.n_rows(), merged.n_rows(), "{what}: rows");
    for (a, b) in single.columns.iter().zip(&merged.columns) {
        match (&a.data, &b.data) {
            (roofline::io::table::ColumnData::F64(x), roofline::io::table::ColumnData::F64(y)) => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    assert_eq!(
                        p.map(f64::to_bits),
                        q.map(f64::to_bits),
                        "{what}: column {} row {i}: {p:?} vs {q:?}",
                        a.name
                    );
                }
            }
            (x, y) => assert_eq!(x, y, "{what}: column {}", a.name),
        }
    }
    let coords = |t: &roofline::io::table::Table| -> Vec<u64> {
        use geo::CoordsIter;
        t.geometry
            .as_ref()
            .expect("geometry")
            .iter()
            .flat_map(|g| g.coords_iter().flat_map(|c| [c.x.to_bits(), c.y.to_bits()]))
            .collect()
    };
    assert_eq!(coords(single), coords(merged), "{what}: geometry");
    assert_eq!(
        single.crs.as_ref().map(|c| &c.label),
        merged.crs.as_ref().map(|c| &c.label),
        "{what}: CRS"
    );
}

/// [`assert_same_table`] and the same roofline metadata: two outputs of roofline itself.
pub fn assert_same_output(
    a: &roofline::io::table::Table,
    b: &roofline::io::table::Table,
    what: &str,
) {
    assert_same_table(a, b, what);
    assert_eq!(
        a.metadata.get("roofline"),
        b.metadata.get("roofline"),
        "{what}: metadata"
    );
}
