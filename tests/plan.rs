//! Tiled runs: a shipped city cut into jobs, each job run by the binary on its own, merged —
//! equal bit for bit to the single-process run, every building exactly once.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{assert_same_output, data, roofline};
use roofline::io::output::read_table;
use roofline::io::table::{ColumnData, Table};
use roofline::plan::{Job, Plan};

fn run(args: &[&str]) -> String {
    let (code, out, err) = roofline(args);
    assert_eq!(code, 0, "roofline {args:?} failed: {err}");
    out
}

/// Every job's owned buildings together are the city, each exactly once; each job reads a
/// halo beyond what it owns.
fn check_plan(dir: &Path, min_jobs: usize) -> Plan {
    let plan = Plan::load(dir).unwrap();
    assert!(
        plan.jobs.len() >= min_jobs,
        "{} jobs, wanted at least {min_jobs}",
        plan.jobs.len()
    );
    let mut seen = HashSet::new();
    let mut halo_reads = 0;
    for s in &plan.jobs {
        let (job, _) = Job::load(&dir.join(&s.path)).unwrap();
        for &i in &job.owned {
            assert!(seen.insert(i), "building {i} owned twice");
            assert!(job.read.binary_search(&i).is_ok(), "owned {i} not read");
        }
        halo_reads += job.read.len() - job.owned.len();
    }
    assert_eq!(seen.len(), plan.footprints, "every building owned once");
    assert!(halo_reads > 0, "no job reads a halo");
    plan
}

fn ids(t: &Table) -> Vec<String> {
    match &t.column("id").unwrap().data {
        ColumnData::Str(v) => v.iter().map(|s| s.clone().unwrap()).collect(),
        _ => panic!("id is text"),
    }
}

fn run_jobs(stage: &[&str], plan_dir: &Path, plan: &Plan, extra: &[&str]) {
    for j in &plan.jobs {
        let job = plan_dir.join(&j.path);
        let mut args: Vec<&str> = stage.to_vec();
        args.extend(["--quiet", "--job", job.to_str().unwrap()]);
        args.extend(extra);
        run(&args);
    }
}

#[test]
fn amsterdam_in_squares_and_lidar_tiles_equals_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let city = data().join("cities/amsterdam-centre.toml");
    let city = city.to_str().unwrap();
    let plan_dir = tmp.path().join("plan");
    let p = plan_dir.to_str().unwrap();
    // 400 m squares across its two LiDAR tiles: jobs read parts of both.
    run(&["plan", city, "--grid", "--tile-size", "400", "-o", p]);
    let plan = check_plan(&plan_dir, 4);
    assert_eq!(plan.cut, roofline::plan::CutKind::Grid);
    let out = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();

    // Labels.
    run(&["labels", "--quiet", city, "-o", &out("labels.parquet")]);
    run_jobs(&["labels"], &plan_dir, &plan, &[]);
    run(&["merge", p, "-o", &out("labels-merged.parquet")]);
    let single = read_table(Path::new(&out("labels.parquet"))).unwrap();
    let merged = read_table(Path::new(&out("labels-merged.parquet"))).unwrap();
    assert_same_output(&single, &merged, "labels");
    let all = ids(&merged);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    // Cut on the LiDAR tiles themselves (two in this crop): the same labels.
    let tiles_dir = tmp.path().join("tiles");
    let t = tiles_dir.to_str().unwrap();
    run(&["plan", city, "-o", t]);
    let tiles = check_plan(&tiles_dir, 2);
    assert_eq!(tiles.cut, roofline::plan::CutKind::LidarTiles);
    run_jobs(&["labels"], &tiles_dir, &tiles, &[]);
    run(&["merge", t, "-o", &out("labels-tiles.parquet")]);
    let by_tile = read_table(Path::new(&out("labels-tiles.parquet"))).unwrap();
    assert_same_output(&single, &by_tile, "labels by LiDAR tile");

    // Features (known-neighbour heights from the labels included).
    run(&["features", "--quiet", city, "-o", &out("features.parquet")]);
    run_jobs(&["features"], &plan_dir, &plan, &[]);
    run(&[
        "merge",
        p,
        "--stage",
        "features",
        "-o",
        &out("features-merged.parquet"),
    ]);
    let single = read_table(Path::new(&out("features.parquet"))).unwrap();
    let merged = read_table(Path::new(&out("features-merged.parquet"))).unwrap();
    assert_same_output(&single, &merged, "features");

    // Predictions with a model from another city, recalibrated on Amsterdam's own labels.
    let model = out("delft.model");
    run(&[
        "train",
        "--quiet",
        data().join("cities/delft-5910.toml").to_str().unwrap(),
        "--trees",
        "60",
        "-o",
        &model,
    ]);
    run(&[
        "predict",
        "--quiet",
        "--model",
        &model,
        city,
        "-o",
        &out("pred.parquet"),
    ]);
    run_jobs(&["predict", "--model", &model], &plan_dir, &plan, &[]);
    run(&[
        "merge",
        p,
        "--stage",
        "predictions",
        "-o",
        &out("pred-merged.parquet"),
    ]);
    let single = read_table(Path::new(&out("pred.parquet"))).unwrap();
    let merged = read_table(Path::new(&out("pred-merged.parquet"))).unwrap();
    let sources = match &single.column("source").unwrap().data {
        ColumnData::Str(v) => v.clone(),
        _ => panic!(),
    };
    assert!(
        sources.iter().any(|s| s.as_deref() == Some("recalibrated")),
        "the single run recalibrates (else this test would not check the merge's recalibration)"
    );
    assert_same_output(&single, &merged, "predictions");
}

#[test]
fn wageningen_on_a_grid_equals_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let city = data().join("cities/wageningen.toml");
    let city = city.to_str().unwrap();
    let plan_dir = tmp.path().join("plan");
    let p = plan_dir.to_str().unwrap();
    run(&["plan", city, "--tile-size", "400", "-o", p]);
    let plan = check_plan(&plan_dir, 4);
    assert_eq!(plan.cut, roofline::plan::CutKind::Grid);
    let single = tmp.path().join("features.parquet");
    run(&["features", "--quiet", city, "-o", single.to_str().unwrap()]);
    run_jobs(&["features"], &plan_dir, &plan, &[]);
    let merged = tmp.path().join("merged.gpkg");
    run(&[
        "merge",
        p,
        "-o",
        tmp.path().join("merged.parquet").to_str().unwrap(),
    ]);
    let a = read_table(&single).unwrap();
    let b = read_table(&tmp.path().join("merged.parquet")).unwrap();
    assert_same_output(&a, &b, "features");
    // A merge can write any format; a second plan into the same folder is refused.
    run(&["merge", p, "-o", merged.to_str().unwrap()]);
    assert!(merged.is_file());
    let (code, _, err) = roofline(&["plan", city, "-o", p]);
    common::assert_clean_error(code, &err, "plan");
}

#[test]
fn merge_names_a_job_that_has_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    let city = data().join("cities/delft-5910.toml");
    let plan_dir = tmp.path().join("plan");
    let p = plan_dir.to_str().unwrap();
    run(&[
        "plan",
        city.to_str().unwrap(),
        "--tile-size",
        "250",
        "-o",
        p,
    ]);
    let plan = check_plan(&plan_dir, 4);
    // All jobs but the last.
    for j in &plan.jobs[..plan.jobs.len() - 1] {
        let job = plan_dir.join(&j.path);
        run(&["labels", "--quiet", "--job", job.to_str().unwrap()]);
    }
    let out = tmp.path().join("m.parquet");
    let (code, _, err) = roofline(&["merge", p, "--stage", "labels", "-o", out.to_str().unwrap()]);
    common::assert_clean_error(code, &err, "part.parquet");
    assert!(
        err.contains(&format!("job {}", plan.jobs.len() - 1)),
        "{err}"
    );
    assert!(!out.exists(), "no output from a failed merge");
}
