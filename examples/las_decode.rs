//! The yardstick for `bench/run.sh`: decode every point of LAS/LAZ files on ONE thread with the
//! `las` crate, touching x, y, z and class (what labelling needs) and nothing else. Prints
//! points, seconds and points per second.
//!
//! `cargo run --release --example las_decode -- FILE_OR_GLOB...`

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use las::{LazParallelism, PointDataBuilder, Reader, ReaderOptions};

fn main() {
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        let matches: Vec<_> = glob::glob(&arg)
            .unwrap_or_else(|e| panic!("{arg}: {e}"))
            .map(|p| p.expect("readable path"))
            .collect();
        assert!(!matches.is_empty(), "{arg}: no file");
        files.extend(matches);
    }
    let start = Instant::now();
    let (mut points, mut checksum) = (0u64, 0.0f64);
    for path in &files {
        let file = BufReader::new(File::open(path).expect("file opens"));
        let options = ReaderOptions::default().with_laz_parallelism(LazParallelism::No);
        let mut reader = Reader::with_options(file, options).expect("LAS/LAZ header");
        let mut data = PointDataBuilder::new().for_header(reader.header()).build();
        loop {
            let got = reader.fill_points(1 << 20, &mut data).expect("points");
            if got == 0 {
                break;
            }
            points += got;
            checksum += data
                .x()
                .zip(data.y())
                .zip(data.z())
                .zip(data.classification())
                .map(|(((x, y), z), c)| x + y + z + f64::from(c))
                .sum::<f64>();
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "decoded {points} points from {} files in {s:.2} s ({:.0} points/s, checksum {checksum:.0})",
        files.len(),
        points as f64 / s
    );
}
