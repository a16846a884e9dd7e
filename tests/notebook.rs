//! notebooks/explore_outputs.ipynb executed on the demo's outputs (nbclient, a fresh kernel):
//! any cell error fails the test. Its last cells load the demo model's XGBoost export and
//! check it predicts roofline's heights within 1e-4 m.
//!
//! The notebook's Python (pandas, geopandas, matplotlib, xgboost, nbclient, ipykernel) lives
//! in a virtual environment that scripts/test.sh creates when missing; `ROOFLINE_NOTEBOOK_PYTHON`
//! names its interpreter (default: ~/.cache/roofline/notebook-venv/bin/python).

use std::path::PathBuf;
use std::process::Command;

mod common;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ROOFLINE_NOTEBOOK_PYTHON") {
        return p.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/roofline/notebook-venv/bin/python")
}

#[test]
fn explore_outputs_notebook_runs_without_a_cell_error() {
    let python = python();
    assert!(
        python.exists(),
        "no notebook Python at {}: scripts/test.sh creates it (or set ROOFLINE_NOTEBOOK_PYTHON)",
        python.display()
    );
    let demo = common::demo_outputs();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let notebook = root.join("notebooks/explore_outputs.ipynb");
    let executed = demo.join("explore_outputs.executed.ipynb");
    let script = format!(
        "import nbformat\nfrom nbclient import NotebookClient\n\
         nb = nbformat.read({nb:?}, as_version=4)\n\
         NotebookClient(nb, timeout=600, kernel_name='python3', resources={{'metadata': {{'path': {dir:?}}}}}).execute()\n\
         nbformat.write(nb, {out:?})\n",
        nb = notebook.display().to_string(),
        dir = root.join("notebooks").display().to_string(),
        out = executed.display().to_string(),
    );
    let out = Command::new(&python)
        .args(["-c", &script])
        .env("ROOFLINE_OUT", demo.join("out"))
        .env("ROOFLINE_MODELS", demo.join("models"))
        .env("ROOFLINE_DATA", common::data())
        .env("ROOFLINE_BIN", env!("CARGO_BIN_EXE_roofline"))
        .env("MPLBACKEND", "Agg")
        .output()
        .expect("the notebook's Python runs");
    assert!(
        out.status.success(),
        "the notebook failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The XGBoost cell printed its agreement.
    let nb = std::fs::read_to_string(&executed).unwrap();
    assert!(
        nb.contains("largest difference"),
        "the XGBoost cell did not run"
    );
}
