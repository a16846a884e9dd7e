//! The benchmark city (`roofline bench-city`): tiling the real survey into LAZ tiles changes no
//! label, and the city has the size, ids and tiles it says.

mod common;

use std::collections::HashSet;

use common::*;
use geo::BoundingRect;
use roofline::bench::city::{build_bench_city, BenchCityOptions};
use roofline::config::CityConfig;
use roofline::label::{label_city, Flag};
use roofline::progress::Progress;

/// Buildings whose footprint crosses a tile edge get exactly the labels they get when the same
/// points are read from one merged file (and so does every other building).
#[test]
fn straddling_buildings_label_as_from_one_merged_file() {
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city");
    let tile_m = 500.0;
    let opts = BenchCityOptions {
        buildings: 1200,
        seed: 7,
        tile_m,
        merged: true,
    };
    let s = build_bench_city(&data(), &city, &opts, &Progress::hidden()).unwrap();
    assert_eq!(s.buildings, 1200);
    assert!(s.tiles >= 4, "{} tiles", s.tiles);
    let tiles = std::fs::read_dir(city.join("tiles")).unwrap().count();
    assert_eq!(tiles, s.tiles, "tile files");

    let tiled = CityConfig::load(&s.config).unwrap();
    assert_eq!(tiled.lidar.as_ref().unwrap().files.len(), s.tiles);
    let merged_text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("tiles/*.laz", "merged.laz");
    let merged = CityConfig::load(write_config(&city, "merged.toml", &merged_text)).unwrap();

    let (fp, a) = label_city(&tiled, &Progress::hidden()).unwrap();
    let (_, b) = label_city(&merged, &Progress::hidden()).unwrap();
    assert_eq!(
        a.points_read, s.points,
        "every written point read from the tiles"
    );
    assert_eq!(
        b.points_read, s.points,
        "every written point read from the merged file"
    );

    let ids: HashSet<&String> = fp.ids.iter().collect();
    assert_eq!(ids.len(), fp.len(), "ids are unique");

    let crosses = |lo: f64, hi: f64| (lo / tile_m).floor() != (hi / tile_m).floor();
    let mut straddling = 0;
    for (i, g) in fp.geometries.iter().enumerate() {
        let r = g.bounding_rect().unwrap();
        let (ra, rb) = (&a.rows[i], &b.rows[i]);
        // The share of the footprint inside the survey comes from the files' header extents:
        // a union of tile rectangles versus one rectangle, equal up to polygon-clipping
        // rounding. Every measured value must be the same bit for bit.
        let (sa, sb) = (ra.lidar.clone().unwrap(), rb.lidar.clone().unwrap());
        assert!(
            (sa.lidar_share - sb.lidar_share).abs() < 1e-6,
            "building {}: lidar share {} vs {}",
            ra.id,
            sa.lidar_share,
            sb.lidar_share
        );
        let same_share = |r: &roofline::label::LabelRow| {
            let mut r = r.clone();
            r.lidar.as_mut().unwrap().lidar_share = 0.0;
            r
        };
        assert_eq!(
            same_share(ra),
            same_share(rb),
            "building {} differs between tiles and merged file",
            ra.id
        );
        if (crosses(r.min().x, r.max().x) || crosses(r.min().y, r.max().y))
            && ra.flag == Flag::Ok
            && ra.lidar.as_ref().unwrap().roof_points >= 20
        {
            straddling += 1;
        }
    }
    assert!(
        straddling >= 10,
        "only {straddling} measured buildings straddle a tile edge"
    );
    let ok = a.rows.iter().filter(|r| r.flag == Flag::Ok).count();
    assert!(
        ok * 2 > a.rows.len(),
        "only {ok} of {} labels ok",
        a.rows.len()
    );
}

/// A bad request is one clean error line, and nothing is written.
#[test]
fn zero_buildings_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("city");
    let (code, _, err) = roofline(&[
        "bench-city",
        out.to_str().unwrap(),
        "--buildings",
        "0",
        "--data",
        data().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--buildings"), "{err}");
    assert!(!out.exists(), "nothing written");
}
