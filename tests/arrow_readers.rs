//! Every GeoParquet file roofline writes, from every verb that writes one, opens in the Arrow
//! readers its users have: pyarrow 14 (before Arrow's view types), today's pyarrow (the
//! notebook's) and DuckDB, with the same rows. Read with pyarrow's `read_table`, the table
//! itself says which column is the geometry and in which CRS (the `geo` key of its schema's
//! metadata, not only of the file's footer), as geopandas' `GeoDataFrame.from_arrow` needs.
//!
//! pyarrow 14 and DuckDB live in a virtual environment that scripts/test.sh creates when
//! missing; `ROOFLINE_ARROW14_PYTHON` names its interpreter (default:
//! ~/.cache/roofline/arrow14-venv/bin/python). Today's pyarrow is the notebook's
//! (`ROOFLINE_NOTEBOOK_PYTHON`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{data, roofline};

fn venv_python(var: &str, default: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/roofline").join(default)
}

fn run(args: &[&str]) {
    let (code, _, err) = roofline(args);
    assert_eq!(code, 0, "roofline {args:?} failed: {err}");
}

/// Checks every file with one Python; returns its report lines (`path rows crs`).
const CHECK: &str = r#"
import json, sys
import pyarrow, pyarrow.parquet as pq
want_duckdb = sys.argv[1] == "duckdb"
if want_duckdb:
    import duckdb
for path in sys.argv[2:]:
    t = pq.read_table(path)
    views = [f"{f.name}: {f.type}" for f in t.schema if "view" in str(f.type)]
    assert not views, f"{path}: view types {views}"
    meta = t.schema.metadata or {}
    assert b"geo" in meta, f"{path}: the table's schema has no geo metadata (keys {list(meta)})"
    geo = json.loads(meta[b"geo"])
    col = geo["primary_column"]
    assert col in t.column_names, f"{path}: primary column {col} missing"
    assert str(t.schema.field(col).type) in ("binary", "large_binary"), f"{path}: {col} is {t.schema.field(col).type}"
    crs = geo["columns"][col].get("crs")
    code = crs["id"]["code"] if crs and "id" in crs else None
    rows = t.num_rows
    if want_duckdb:
        n = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
        assert n == rows, f"{path}: duckdb reads {n} rows, pyarrow {rows}"
    print(path, rows, code, pyarrow.__version__)
"#;

fn check(python: &Path, duckdb: bool, files: &[PathBuf]) -> Vec<String> {
    assert!(
        python.exists(),
        "no Python at {}: scripts/test.sh creates it",
        python.display()
    );
    let mut args = vec![
        "-c".to_string(),
        CHECK.to_string(),
        if duckdb { "duckdb" } else { "-" }.to_string(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = Command::new(python).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{} could not read roofline's GeoParquet:\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_verbs_geoparquet_opens_in_old_and_new_pyarrow_and_duckdb() {
    let tmp = tempfile::tempdir().unwrap();
    let out = |n: &str| tmp.path().join(n);
    let s = |p: PathBuf| p.display().to_string();
    let city = s(data().join("cities/delft-5910.toml"));
    let model = s(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/roof-p70.model"));

    run(&["labels", "--quiet", &city, "-o", &s(out("labels.parquet"))]);
    run(&[
        "features",
        "--quiet",
        &city,
        "-o",
        &s(out("features.parquet")),
    ]);
    run(&[
        "predict",
        "--quiet",
        "--model",
        &model,
        &city,
        "-o",
        &s(out("predictions.parquet")),
    ]);
    run(&[
        "cv",
        "--quiet",
        "--by",
        "blocks",
        "--folds",
        "2",
        &city,
        "-o",
        &s(out("cv")),
    ]);
    // A tiled run: a job's partition and the merged table.
    let plan = out("plan");
    run(&[
        "plan",
        &city,
        "--grid",
        "--tile-size",
        "300",
        "-o",
        &s(plan.clone()),
    ]);
    let jobs = roofline::plan::Plan::load(&plan).unwrap().jobs;
    for j in &jobs {
        run(&["labels", "--quiet", "--job", &s(plan.join(&j.path))]);
    }
    // A job's partition, wherever the plan put it.
    let partition = std::fs::read_dir(plan.join("labels"))
        .unwrap()
        .map(|e| e.unwrap().path().join("part.parquet"))
        .find(|p| p.exists())
        .expect("a labels partition");
    run(&["merge", &s(plan.clone()), "-o", &s(out("merged.parquet"))]);

    let files = vec![
        out("labels.parquet"),
        out("features.parquet"),
        out("predictions.parquet"),
        out("cv/predictions.parquet"),
        partition,
        out("merged.parquet"),
    ];
    for f in &files {
        assert!(f.exists(), "{} was not written", f.display());
    }
    let old = check(
        &venv_python("ROOFLINE_ARROW14_PYTHON", "arrow14-venv/bin/python"),
        true,
        &files,
    );
    let new = check(
        &venv_python("ROOFLINE_NOTEBOOK_PYTHON", "notebook-venv/bin/python"),
        false,
        &files,
    );
    assert_eq!(old.len(), files.len());
    assert!(
        old.iter().all(|l| l.ends_with(" 14.0.2")),
        "not pyarrow 14: {old:?}"
    );
    // Both readers see the same rows and CRS (EPSG:28992, Delft's RD New) in every file.
    for (o, n) in old.iter().zip(&new) {
        let (o, n): (Vec<&str>, Vec<&str>) = (o.split(' ').collect(), n.split(' ').collect());
        assert_eq!(o[..3], n[..3], "pyarrow 14 and today's pyarrow disagree");
        assert_eq!(o[2], "28992", "{}: CRS {}", o[0], o[2]);
        assert!(o[1].parse::<usize>().unwrap() > 0, "{}: no rows", o[0]);
    }
}
