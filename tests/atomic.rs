//! Atomic outputs: a run killed with SIGKILL while it writes leaves the previous output intact,
//! and the next run leaves no temporary file behind. (A GeoPackage records its write time, so
//! the rewritten file is compared by its rows, not its bytes.)

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::derive::listing;
use common::*;

fn temporaries(dir: &Path, target: &str) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| n.starts_with(&format!(".{target}.")) && n.contains(".tmp."))
        .collect()
}

/// Starts `roofline features <cities> -o <out>` and kills it (SIGKILL) as soon as its
/// temporary output appears; returns whether it was caught while writing.
fn kill_while_writing(dir: &Path, cities: &[&str], out: &Path) -> bool {
    let mut args = vec!["features".to_string()];
    args.extend(cities.iter().map(|c| {
        data()
            .join("cities")
            .join(format!("{c}.toml"))
            .display()
            .to_string()
    }));
    args.extend(["-o".into(), out.display().to_string(), "--quiet".into()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_roofline"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    let start = Instant::now();
    loop {
        if !temporaries(dir, &name).is_empty() {
            child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs
            child.wait().unwrap();
            return true;
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn sigkill_while_writing_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for ext in ["geojson", "gpkg", "csv"] {
        let out = d.join(format!("features.{ext}"));
        let name = format!("features.{ext}");
        // The previous output: Olemps' features.
        let (code, _, err) = roofline(&[
            "features",
            data().join("cities/olemps.toml").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 0, "{err}");
        let previous = std::fs::read(&out).unwrap();
        let previous_rows = roofline::io::output::read_table(&out).unwrap().n_rows();
        assert!(previous.len() > 100_000, "{ext}: {} bytes", previous.len());

        // A bigger run over the same file, killed mid-write.
        let caught = kill_while_writing(d, &["delft-5910", "perigueux"], &out);
        assert!(
            caught,
            "{ext}: the run ended before it could be killed while writing"
        );
        assert!(
            std::fs::read(&out).unwrap() == previous,
            "{ext}: the killed run changed the previous output"
        );
        assert!(
            !temporaries(d, &name).is_empty(),
            "{ext}: the kill should have left the temporary file this test looks for"
        );

        // The next run replaces the output and removes what the killed run left.
        let (code, _, err) = roofline(&[
            "features",
            data().join("cities/olemps.toml").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(temporaries(d, &name), Vec::<String>::new(), "{ext}");
        let rows = roofline::io::output::read_table(&out).unwrap().n_rows();
        assert_eq!(rows, previous_rows, "{ext}: the new output is complete");
    }
}
