//! Throughput of the pipeline stages on the shipped real data, printed as a table:
//! `cargo bench --bench pipeline`. (Speed targets live here, not in unit tests.)
//!
//! The imagery scale row repeats Wageningen's real footprints 20 times over the real Landsat
//! scene — generated load, labelled as such — to measure zonal statistics on ~28 000 footprints.

use std::path::Path;
use std::time::Instant;

use roofline::config::CityConfig;
use roofline::features::{city_features, context, geometry, imagery, FeatureOptions};
use roofline::io::footprints::{read_footprints, Request};
use roofline::label::label_city;
use roofline::progress::Progress;

fn config(name: &str) -> CityConfig {
    CityConfig::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/cities")
            .join(format!("{name}.toml")),
    )
    .unwrap()
}

/// Best of `runs` wall-clock seconds.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("roofline pipeline benchmark ({threads} threads, best of 3 runs)\n");
    println!("| stage | data | items | seconds | throughput |");
    println!("|---|---|---:|---:|---:|");
    let row = |stage: &str, data: &str, items: f64, unit: &str, secs: f64| {
        println!(
            "| {stage} | {data} | {items:.0} | {secs:.3} | {:.0} {unit}/s |",
            items / secs
        );
    };

    for city in ["amsterdam-centre", "delft-3dfier"] {
        let cfg = config(city);
        let mut points = 0;
        let secs = time(3, || {
            let (_, l) = label_city(&cfg, &Progress::hidden()).unwrap();
            points = l.points_read;
        });
        row("LiDAR labels", city, points as f64, "points", secs);
    }

    let per = config("perigueux");
    let fp = read_footprints(per.footprints.as_ref().unwrap(), None, &Request::default()).unwrap();
    let n = fp.len() as f64;
    row(
        "read footprints",
        "perigueux",
        n,
        "buildings",
        time(3, || {
            read_footprints(per.footprints.as_ref().unwrap(), None, &Request::default()).unwrap()
        }),
    );
    row(
        "geometry features",
        "perigueux",
        n,
        "buildings",
        time(3, || {
            fp.geometries
                .iter()
                .map(geometry::geometry_features)
                .count()
        }),
    );
    row(
        "context features",
        "perigueux",
        n,
        "buildings",
        time(3, || {
            context::context_features(
                &fp.geometries,
                &roofline::features::centroids(&fp.geometries),
            )
        }),
    );
    row(
        "all features + labels",
        "perigueux",
        n,
        "buildings",
        time(3, || {
            city_features(&per, FeatureOptions::default(), &Progress::hidden()).unwrap()
        }),
    );

    let wag = config("wageningen");
    let wfp = read_footprints(wag.footprints.as_ref().unwrap(), None, &Request::default()).unwrap();
    let im = &wag.imagery[0];
    row(
        "imagery zonal stats (7 bands + NDVI + brightness, footprint and ring)",
        "wageningen, Landsat 8",
        wfp.len() as f64,
        "footprints",
        time(3, || {
            imagery::imagery_features(&wfp.geometries, &wfp.crs, im).unwrap()
        }),
    );
    {
        use geo::Buffer;
        row(
            "  of which: 10 m buffers (geo)",
            "wageningen",
            wfp.len() as f64,
            "footprints",
            time(3, || {
                wfp.geometries
                    .iter()
                    .map(|g| g.buffer(10.0))
                    .collect::<Vec<_>>()
            }),
        );
    }
    let many: Vec<_> = (0..20)
        .flat_map(|_| wfp.geometries.iter().cloned())
        .collect();
    row(
        "imagery zonal stats, scale (real footprints repeated 20x: generated load)",
        "wageningen, Landsat 8",
        many.len() as f64,
        "footprints",
        time(3, || {
            imagery::imagery_features(&many, &wfp.crs, im).unwrap()
        }),
    );
}
