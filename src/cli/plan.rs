//! `roofline plan`, `roofline merge` and the `--job` runs of labels, features and predict.

use std::path::Path;

use super::LocalArgs;
use roofline::config::CityConfig;
use roofline::error::{Error, Result};
use roofline::io::footprints::KeepColumns;
use roofline::io::output::{
    check_output_table, output_name, write_table, write_table_with, TableOptions,
};
use roofline::model::HeightModel;
use roofline::plan::merge::{complete_stages, merge as merge_stage};
use roofline::plan::run::JobInput;
use roofline::plan::{make_plan, partition_path, write_plan, CutOptions, Job, Plan, Stage};
use roofline::progress::Progress;

pub fn no_configs_with_job() -> Error {
    Error::invalid("--job reads its city from the plan: give no config with it")
}

pub fn plan(city: &Path, tile_size: f64, grid: bool, output: &Path) -> Result<()> {
    let cfg = CityConfig::load(city)?;
    let (plan, jobs) = make_plan(
        &cfg,
        CutOptions {
            tile_size_m: tile_size,
            grid,
        },
    )?;
    write_plan(output, &plan, &jobs)?;
    let read: usize = plan.jobs.iter().map(|j| j.read).sum();
    println!(
        "{}: {} jobs ({}), {} buildings owned once each, {} read in all ({:.2}× with {:.0} m halos)",
        plan.city_name,
        plan.jobs.len(),
        plan.cut.as_str(),
        plan.footprints,
        read,
        read as f64 / plan.footprints.max(1) as f64,
        plan.halo_m
    );
    println!("wrote {}", output.join(roofline::plan::PLAN_FILE).display());
    Ok(())
}

fn open(job_dir: &Path) -> Result<(JobInput, std::path::PathBuf)> {
    let (job, plan_dir) = Job::load(job_dir)?;
    Ok((JobInput::open(job)?, plan_dir))
}

fn write_partition(
    plan_dir: &Path,
    stage: Stage,
    input: &JobInput,
    table: &roofline::io::table::Table,
) -> Result<()> {
    let path = partition_path(plan_dir, stage, input.job.id);
    let dir = path.parent().expect("a partition has a folder");
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    write_table(table, &path)?;
    println!(
        "job {}: wrote {} ({} rows; {} buildings read)",
        input.job.id,
        path.display(),
        table.n_rows(),
        input.footprints.len()
    );
    Ok(())
}

pub fn labels(job_dir: &Path, progress: Progress) -> Result<()> {
    let (input, plan_dir) = open(job_dir)?;
    let (table, _) = input.labels_partition(&progress)?;
    write_partition(&plan_dir, Stage::Labels, &input, &table)
}

pub fn features(job_dir: &Path, known_heights: bool, progress: Progress) -> Result<()> {
    let (input, plan_dir) = open(job_dir)?;
    let table = input.features_partition(known_heights, &progress)?;
    write_partition(&plan_dir, Stage::Features, &input, &table)
}

pub fn predict(
    job_dir: &Path,
    model_path: &Path,
    keep: &KeepColumns,
    local: &LocalArgs,
    progress: Progress,
) -> Result<()> {
    if local.sparse_lidar.is_some() || local.local_labels.is_some() {
        return Err(Error::invalid(
            "--sparse-lidar and --local-labels choose among the whole region's points or buildings: run them without --job",
        ));
    }
    let model = HeightModel::load(model_path)?;
    let (input, plan_dir) = open(job_dir)?;
    let (table, _) = input.predictions_partition(&model, keep, !local.no_recalibrate, &progress)?;
    write_partition(&plan_dir, Stage::Predictions, &input, &table)
}

pub fn merge(
    plan_dir: &Path,
    stage: Option<Stage>,
    output: &Path,
    db: &TableOptions,
) -> Result<()> {
    check_output_table(output, db)?;
    let plan = Plan::load(plan_dir)?;
    let stage = match stage {
        Some(s) => s,
        None => match complete_stages(plan_dir, &plan).as_slice() {
            [one] => *one,
            [] => {
                return Err(Error::file(
                    plan_dir,
                    "has no stage whose every job has run (run labels, features or predict with --job first)",
                ))
            }
            many => {
                let names: Vec<&str> = many.iter().map(Stage::as_str).collect();
                return Err(Error::file(
                    plan_dir,
                    format!("has {} complete: choose one with --stage", names.join(", ")),
                ));
            }
        },
    };
    let (table, local) = merge_stage(plan_dir, stage)?;
    write_table_with(&table, output, db)?;
    if let Some(l) = local {
        println!(
            "{}: recalibrated on {} known buildings: {}",
            plan.city_name,
            l.known,
            l.map_text()
        );
    }
    println!(
        "wrote {} ({} {} rows from {} jobs)",
        output_name(output, db),
        table.n_rows(),
        stage.as_str(),
        plan.jobs.len()
    );
    Ok(())
}
