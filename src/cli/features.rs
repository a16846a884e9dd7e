//! `roofline features`.

use std::path::{Path, PathBuf};

use roofline::config::CityConfig;
use roofline::error::Result;
use roofline::features::{city_features, features_table, FeatureOptions};
use roofline::io::output::{check_output_table, output_name, write_table_with, TableOptions};
use roofline::progress::Progress;

pub fn run(
    cities: &[PathBuf],
    output: &Path,
    db: &TableOptions,
    known_heights: bool,
    progress: Progress,
) -> Result<()> {
    check_output_table(output, db)?;
    let configs = cities
        .iter()
        .map(CityConfig::load)
        .collect::<Result<Vec<_>>>()?;
    let mut all = Vec::new();
    for cfg in &configs {
        let start = std::time::Instant::now();
        let f = city_features(
            cfg,
            FeatureOptions {
                known_heights,
                ..Default::default()
            },
            &progress,
        )?;
        let secs = start.elapsed().as_secs_f64();
        let groups: Vec<String> = f
            .timings
            .iter()
            .map(|(g, s)| format!("{g} {s:.2} s"))
            .collect();
        println!(
            "{}: {} buildings, {} features in {:.2} s ({:.0} buildings/s; {})",
            f.city,
            f.len(),
            f.names.len(),
            secs,
            f.len() as f64 / secs.max(1e-9),
            groups.join(", ")
        );
        all.push(f);
    }
    let table = features_table(&all)?;
    write_table_with(&table, output, db)?;
    println!(
        "wrote {} ({} rows, geometry in {})",
        output_name(output, db),
        table.n_rows(),
        table.crs.as_ref().map_or("-", |c| c.label.as_str())
    );
    Ok(())
}
