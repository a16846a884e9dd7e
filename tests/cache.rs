//! `--cache DIR`: a city's labels and features are computed once and reused by later runs,
//! with the same results, until an input changes; an unreadable entry is recomputed.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Delft-5910 copied into `dir`, so its footprint file can be touched; the config's path.
fn copy_city(dir: &Path) -> PathBuf {
    let src = data().join("cities");
    std::fs::create_dir_all(dir.join("delft-5910")).unwrap();
    std::fs::copy(
        src.join("delft-5910/footprints_DERIVED.gpkg"),
        dir.join("delft-5910/footprints_DERIVED.gpkg"),
    )
    .unwrap();
    std::fs::copy(src.join("delft-5910.toml"), dir.join("delft-5910.toml")).unwrap();
    dir.join("delft-5910.toml")
}

/// The cache's entries, sorted.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "bin"));
    v.sort();
    v
}

/// `predict` of `city` into `out` (CSV), with or without the cache; returns stderr.
fn predict(model: &Path, city: &Path, out: &Path, cache: Option<&Path>) -> String {
    let mut args = vec!["-v".to_string(), "predict".to_string()];
    if let Some(c) = cache {
        args.extend(["--cache".into(), c.to_string_lossy().into_owned()]);
    }
    args.extend([
        "--model".into(),
        model.to_string_lossy().into_owned(),
        city.to_string_lossy().into_owned(),
        "-o".into(),
        out.to_string_lossy().into_owned(),
        "--no-recalibrate".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = roofline(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    stderr
}

#[test]
fn cached_features_give_the_same_outputs_until_an_input_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let city = copy_city(tmp.path());
    let cache = tmp.path().join("cache");
    let model = tmp.path().join("m.model");
    // Training fills the cache: one entry, for the one city.
    let (code, stdout, stderr) = roofline(&[
        "--quiet",
        "train",
        "--cache",
        cache.to_str().unwrap(),
        city.to_str().unwrap(),
        "-o",
        model.to_str().unwrap(),
        "--trees",
        "60",
        "--no-intervals",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(entries(&cache).len(), 1);

    // predict reads the entry train wrote (same feature options) and predicts exactly what
    // it predicts from the files.
    let fresh = tmp.path().join("fresh.csv");
    let from_files = predict(&model, &city, &fresh, None);
    assert!(
        !from_files.contains("labels and features from"),
        "{from_files}"
    );
    let cached = tmp.path().join("cached.csv");
    let log = predict(&model, &city, &cached, Some(&cache));
    assert!(log.contains("labels and features from"), "{log}");
    assert_eq!(entries(&cache).len(), 1);
    let a = std::fs::read(&fresh).unwrap();
    assert!(a.len() > 10_000, "{} bytes", a.len());
    assert_eq!(a, std::fs::read(&cached).unwrap());

    // A footprint file with a new modification time is another input: a second entry.
    let gpkg = tmp.path().join("delft-5910/footprints_DERIVED.gpkg");
    let f = std::fs::File::options().append(true).open(&gpkg).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let again = tmp.path().join("again.csv");
    let log = predict(&model, &city, &again, Some(&cache));
    assert!(!log.contains("labels and features from"), "{log}");
    assert_eq!(entries(&cache).len(), 2);
    assert_eq!(a, std::fs::read(&again).unwrap());

    // An entry cut short is ignored with a warning, recomputed and rewritten.
    let newest = entries(&cache)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let repaired = tmp.path().join("repaired.csv");
    let log = predict(&model, &city, &repaired, Some(&cache));
    assert!(log.contains("ignoring the unreadable cache entry"), "{log}");
    assert_eq!(a, std::fs::read(&repaired).unwrap());
    assert_eq!(std::fs::metadata(&newest).unwrap().len(), len);
}
