//! The Ray driver (`python/roofline_ray`): a local Ray instance with 2 CPUs runs the jobs of a
//! shipped city's plan and the merged table equals the single-process run bit for bit; a task
//! whose worker is killed mid-run is retried and the result is still identical.
//! scripts/test.sh installs Python's `ray` when missing; `ROOFLINE_PYTHON` names another Python.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_same_output, data, roofline};
use roofline::io::output::read_table;

fn python() -> String {
    let py = std::env::var("ROOFLINE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import ray"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{py} cannot import ray: scripts/test.sh installs it (python3 -m pip install ray), or set ROOFLINE_PYTHON"
    );
    py
}

fn run(args: &[&str]) {
    let (code, _, err) = roofline(args);
    assert_eq!(code, 0, "roofline {args:?} failed: {err}");
}

/// Runs the driver on `plan` (2 CPUs); returns its stderr (progress lines).
fn ray_driver(plan: &Path, stage: &str, out: &Path, env: &[(&str, &str)]) -> String {
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/roofline_ray");
    let mut cmd = Command::new(python());
    cmd.args(["-m", "roofline_ray"])
        .arg(plan)
        .args(["--stage", stage, "-o"])
        .arg(out)
        .args([
            "--roofline",
            env!("CARGO_BIN_EXE_roofline"),
            "--num-cpus",
            "2",
        ])
        .env("PYTHONPATH", &pkg)
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env_remove("ROOFLINE_RAY_KILL_FIRST_ATTEMPT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "roofline_ray failed: {err}");
    err
}

/// The attempt records of the driver's single run on `plan`: job id -> attempts.
fn attempts(plan: &Path) -> (PathBuf, Vec<(String, usize)>) {
    let runs: Vec<PathBuf> = std::fs::read_dir(plan.join("ray"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one driver run: {runs:?}");
    let mut v: Vec<(String, usize)> = std::fs::read_dir(&runs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none())
        .map(|p| {
            let n = std::fs::read_to_string(&p).unwrap().lines().count();
            (p.file_name().unwrap().to_string_lossy().into_owned(), n)
        })
        .collect();
    v.sort();
    (runs[0].clone(), v)
}

#[test]
fn ray_runs_a_plan_like_one_process_even_when_a_task_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let city = data().join("cities/delft-5910.toml");
    let city = city.to_str().unwrap();
    let single = tmp.path().join("single.parquet");
    run(&["features", "--quiet", city, "-o", single.to_str().unwrap()]);
    let single = read_table(&single).unwrap();
    assert_eq!(single.n_rows(), 429);

    for kill in [false, true] {
        let plan = tmp.path().join(format!("plan-{kill}"));
        run(&[
            "plan",
            city,
            "--tile-size",
            "250",
            "-o",
            plan.to_str().unwrap(),
        ]);
        let jobs = roofline::plan::Plan::load(&plan).unwrap().jobs.len();
        assert!(jobs >= 4, "{jobs} jobs");
        let out = tmp.path().join(format!("ray-{kill}.parquet"));
        let env: &[(&str, &str)] = if kill {
            &[("ROOFLINE_RAY_KILL_FIRST_ATTEMPT", "1")]
        } else {
            &[]
        };
        let log = ray_driver(&plan, "features", &out, env);
        assert!(
            log.contains(&format!("[{jobs}/{jobs}]")),
            "progress lines: {log}"
        );
        assert_same_output(&single, &read_table(&out).unwrap(), "features through Ray");
        let (run_dir, counts) = attempts(&plan);
        assert_eq!(counts.len(), jobs, "every job ran: {counts:?}");
        for (job, n) in &counts {
            let expected = if kill && job == "job-1" { 2 } else { 1 };
            assert_eq!(*n, expected, "attempts of {job}: {counts:?}");
        }
        if kill {
            assert_eq!(
                std::fs::read_to_string(run_dir.join("job-1.killed")).unwrap(),
                "killed while running\n",
                "job 1's first attempt was killed while roofline ran"
            );
            assert!(
                log.contains("job 1 done") && log.contains("attempt 2"),
                "{log}"
            );
        }
    }
}
