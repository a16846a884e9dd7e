//! The `roofline` command line: parses arguments, wires the library's stages, prints summaries.
//! No processing happens here.

mod features;
mod labels;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::progress::Progress;

#[derive(Parser, Debug)]
#[command(
    name = "roofline",
    version,
    about = "A height for every building footprint of a city"
)]
pub struct Cli {
    /// No progress bars, warnings only.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More log output (-v info, -vv debug).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Measure building heights from LiDAR (or read them from an attribute) for one city.
    Labels {
        /// City config (TOML).
        city: PathBuf,
        /// Output table: .csv, .parquet, .gpkg, .geojson or .fgb.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Compute per-building features (and labels, where a city has them) for one or more cities.
    Features {
        /// City or region configs (TOML).
        #[arg(required = true)]
        cities: Vec<PathBuf>,
        /// Output table: .parquet (GeoParquet), .csv, .gpkg, .geojson or .fgb.
        #[arg(short, long)]
        output: PathBuf,
        /// Leave out the known-neighbour-height features.
        #[arg(long)]
        no_known_heights: bool,
    },
    /// Describe what roofline reads from a city config: CRS, footprints, point clouds, rasters.
    Inspect {
        /// City configs (TOML).
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging(cli.quiet, cli.verbose);
    crate::io::gdal_setup::init();
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
        {
            eprintln!("roofline: error: cannot start {n} threads: {e}");
            return 1;
        }
    }
    let progress = Progress::new(cli.quiet);
    match run(cli.command, progress) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("roofline: error: {e}");
            1
        }
    }
}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROOFLINE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("roofline={level},gdal={level}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

fn run(command: Command, progress: Progress) -> Result<()> {
    match command {
        Command::Labels { city, output } => labels::run(&city, &output, progress),
        Command::Inspect { configs } => labels::inspect(&configs),
        Command::Features {
            cities,
            output,
            no_known_heights,
        } => features::run(&cities, &output, !no_known_heights, progress),
    }
}
