//! `roofline bench-city`: writes a large benchmark city tiled from the shipped real data.

use std::path::Path;

use roofline::bench::city::{build_bench_city, BenchCityOptions};
use roofline::error::Result;
use roofline::progress::Progress;

pub fn run(
    dir: &Path,
    data: &Path,
    buildings: usize,
    seed: u64,
    tile_m: f64,
    progress: Progress,
) -> Result<()> {
    let opts = BenchCityOptions {
        buildings,
        seed,
        tile_m,
        merged: false,
    };
    let start = std::time::Instant::now();
    let s = build_bench_city(data, dir, &opts, &progress)?;
    println!(
        "bench city: {} buildings in {} cells, {} points in {} LAZ tiles of {tile_m:.0} m ({:.1} s)",
        s.buildings,
        s.cells,
        s.points,
        s.tiles,
        start.elapsed().as_secs_f64()
    );
    println!(
        "  extent x {:.0}..{:.0}, y {:.0}..{:.0} (EPSG:28992)",
        s.extent[0], s.extent[2], s.extent[1], s.extent[3]
    );
    println!("wrote {}", s.config.display());
    Ok(())
}
