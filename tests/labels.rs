//! LiDAR and attribute labels on the shipped cities.

mod common;

use std::collections::HashMap;

use common::*;
use roofline::label::{label_city, Flag};
use roofline::progress::Progress;

/// 3dfier's own result on the same Delft input (roof p90 of class 6, ground p10 of classes 2 and 9
/// within 3 m): roofline with the same definition must agree building by building.
#[test]
fn delft_matches_3dfier_reference() {
    let cfg = city_config("delft-3dfier-3dfier");
    let (_, labels) = label_city(&cfg, &Progress::hidden()).unwrap();
    assert_eq!(labels.rows.len(), 160);
    let text = std::fs::read_to_string(
        data().join("cities/delft-3dfier/reference/3dfier_output.city.json"),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut reference = HashMap::new();
    for obj in json["CityObjects"].as_object().unwrap().values() {
        if obj["type"] == "Building" {
            let a = &obj["attributes"];
            let h =
                a["measuredHeight"].as_f64().unwrap() - a["min-height-surface"].as_f64().unwrap();
            reference.insert(a["identificatiebagpnd"].as_str().unwrap().to_string(), h);
        }
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in &labels.rows {
        let h = r
            .height_m
            .unwrap_or_else(|| panic!("building {} has no height ({})", r.id, r.flag));
        ours.push(h);
        theirs.push(reference[&r.id]);
    }
    assert_eq!(ours.len(), 160, "every building compared");
    let diffs: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let mad = median(&diffs);
    let r = pearson(&ours, &theirs);
    eprintln!("delft vs 3dfier: median |diff| {mad:.3} m, r {r:.4}");
    assert!(mad <= 0.35, "median |diff| {mad}");
    assert!(r >= 0.93, "pearson r {r}");
}

#[test]
fn amsterdam_thinned_survey_labels_most_buildings() {
    let cfg = city_config("amsterdam-centre");
    let (_, labels) = label_city(&cfg, &Progress::hidden()).unwrap();
    assert_eq!(labels.rows.len(), 1479);
    let counts = labels.flag_counts();
    let ok = counts.get(&Flag::Ok).copied().unwrap_or(0);
    eprintln!("amsterdam flags: {counts:?}");
    assert!(ok >= 1380, "ok labels: {ok}");
    let med = median(&labels.ok_heights());
    assert!((13.0..=16.0).contains(&med), "median height {med}");
    // Footprints mostly outside the tiles are flagged, whatever points their edge has; none
    // that the tiles cover entirely is.
    let mut outside = 0;
    for r in &labels.rows {
        let s = r.lidar.as_ref().unwrap();
        if s.lidar_share < 0.5 {
            outside += 1;
            assert_eq!(r.flag, Flag::OutsideLidar, "{}", r.id);
        }
        if s.lidar_share == 1.0 {
            assert_ne!(r.flag, Flag::OutsideLidar, "{}", r.id);
        }
        if r.flag == Flag::Ok {
            assert!(s.roof_points >= 5 && s.ground_points > 0);
            assert!(s.roof_density > 0.0 && s.coverage > 0.0 && s.coverage <= 1.0);
        }
    }
    assert!(
        outside > 0,
        "the crop leaves some footprints outside the LiDAR"
    );
    // The thinned survey's density shows: median roof density well under 2 points/m².
    let dens: Vec<f64> = labels
        .rows
        .iter()
        .filter(|r| r.flag == Flag::Ok)
        .map(|r| r.lidar.as_ref().unwrap().roof_density)
        .collect();
    let md = median(&dens);
    assert!((0.2..2.0).contains(&md), "median roof density {md}");
}

/// The streamed, indexed labeller agrees exactly with a brute-force pass over all points for a
/// handful of Delft buildings.
#[test]
fn lidar_statistics_match_brute_force() {
    use geo::{Contains, Distance, Euclidean, Point};
    use roofline::stats::percentile::percentile;
    let cfg = city_config("delft-3dfier");
    let (fp, labels) = label_city(&cfg, &Progress::hidden()).unwrap();
    let picks = [0usize, 17, 42, 99, 159];
    let mut roof: Vec<Vec<f64>> = vec![Vec::new(); picks.len()];
    let mut ground: Vec<Vec<f64>> = vec![Vec::new(); picks.len()];
    for f in &cfg.lidar.as_ref().unwrap().files {
        let mut reader = las::Reader::from_path(f).unwrap();
        for p in reader.read_all().unwrap().points() {
            let p = p.unwrap();
            let c: u8 = p.classification.into();
            let pt = Point::new(p.x, p.y);
            for (k, &b) in picks.iter().enumerate() {
                let g = &fp.geometries[b];
                if c == 6 && g.contains(&pt) {
                    roof[k].push(p.z);
                }
                if (c == 2 || c == 9) && Euclidean.distance(g, &pt) <= 4.0 {
                    ground[k].push(p.z);
                }
            }
        }
    }
    for (k, &b) in picks.iter().enumerate() {
        let s = labels.rows[b].lidar.as_ref().unwrap();
        assert_eq!(s.roof_points as usize, roof[k].len(), "building {b}");
        assert_eq!(s.ground_points as usize, ground[k].len(), "building {b}");
        let r70 = percentile(&mut roof[k], 70.0);
        let g5 = percentile(&mut ground[k], 5.0);
        assert_eq!(s.roof_m, r70, "building {b}");
        assert_eq!(s.ground_m, g5, "building {b}");
        assert_eq!(s.roof_max_m, roof[k].last().copied());
    }
}

#[test]
fn labels_do_not_depend_on_thread_count() {
    let cfg = city_config("delft-3dfier");
    let run = |n| on_threads(n, || label_city(&cfg, &Progress::hidden()).unwrap().1.rows);
    assert_eq!(run(1), run(2));
}

#[test]
fn attribute_labels_with_filter_and_ground_field() {
    // Olemps: 374 photogrammetric heights; the other footprints stay, flagged.
    let (fp, labels) = label_city(&city_config("olemps-measured"), &Progress::hidden()).unwrap();
    assert_eq!(fp.len(), 2273);
    assert_eq!(labels.flag_counts()[&Flag::Ok], 374);
    assert_eq!(labels.flag_counts()[&Flag::Filtered], 2273 - 374);
    // All Olemps heights: 269 null, 15 zero.
    let (_, all) = label_city(&city_config("olemps"), &Progress::hidden()).unwrap();
    let c = all.flag_counts();
    assert_eq!(c[&Flag::Missing], 269);
    assert_eq!(c[&Flag::NotPositive], 15);
    assert_eq!(c[&Flag::Ok], 2273 - 269 - 15);
    // Wageningen parts: roof altitude minus ground altitude, AHN3 parts only.
    let (_, parts) = label_city(&city_config("wageningen-parts"), &Progress::hidden()).unwrap();
    assert_eq!(parts.rows.len(), 2462);
    let h = parts.ok_heights();
    assert!(h.len() > 1000 && h.iter().all(|v| *v > 0.0 && *v < 100.0));
}
