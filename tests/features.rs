//! Per-building features on the shipped cities.

mod common;

use std::collections::HashMap;

use common::*;
use gdal::vector::LayerAccess;
use roofline::features::{city_features, features_table, CityFeatures, FeatureOptions};
use roofline::io::output::{read_table, write_table};
use roofline::progress::Progress;

fn features(name: &str) -> CityFeatures {
    city_features(
        &city_config(name),
        FeatureOptions::default(),
        &Progress::hidden(),
    )
    .unwrap()
}

fn col(f: &CityFeatures, name: &str) -> Vec<f64> {
    f.column(name)
        .unwrap_or_else(|| panic!("no feature {name}"))
        .to_vec()
}

/// Area and perimeter agree with GDAL/OGR's own computation (GEOS) for every Delft footprint.
#[test]
fn geometry_agrees_with_ogr() {
    for (name, layer, id_field) in [
        ("delft-3dfier", "buildingpart", "identificatiebagpnd"),
        ("delft-5910", "footprints", "identificatie"),
    ] {
        let f = features(name);
        let cfg = city_config(name);
        let ds = gdal::Dataset::open(&cfg.footprints.as_ref().unwrap().path).unwrap();
        let mut l = ds.layer_by_name(layer).unwrap();
        let idx = l.defn().field_index(id_field).unwrap();
        let mut ogr = HashMap::new();
        for feat in l.features() {
            let g = feat.geometry().unwrap();
            let mut perimeter = 0.0;
            // Sum ring lengths of every polygon part.
            let parts: Vec<gdal::vector::Geometry> = if g.geometry_name().contains("MULTI") {
                (0..g.geometry_count())
                    .map(|i| g.get_geometry(i).clone())
                    .collect()
            } else {
                vec![g.clone()]
            };
            for p in &parts {
                for r in 0..p.geometry_count() {
                    perimeter += p.get_geometry(r).length();
                }
            }
            ogr.insert(
                feat.field_as_string(idx).unwrap().unwrap(),
                (g.area(), perimeter),
            );
        }
        let (area, perim) = (col(&f, "area_m2"), col(&f, "perimeter_m"));
        for (i, id) in f.ids.iter().enumerate() {
            let (a, p) = ogr[id];
            assert!(
                (area[i] - a).abs() / a <= 1e-6,
                "{name} {id}: area {} vs {a}",
                area[i]
            );
            assert!(
                (perim[i] - p).abs() / p <= 1e-6,
                "{name} {id}: perimeter {} vs {p}",
                perim[i]
            );
        }
        assert_eq!(f.len(), ogr.len());
        for o in col(&f, "mrr_orientation_deg") {
            assert!((0.0..180.0).contains(&o), "{o}");
        }
        for e in col(&f, "mrr_elongation") {
            assert!(e >= 1.0 - 1e-9, "{e}");
        }
    }
}

#[test]
fn amsterdam_terraces_touch() {
    let f = features("amsterdam-centre");
    let touching = median(&col(&f, "touching_neighbours"));
    let shared = median(&col(&f, "shared_perimeter_share"));
    eprintln!("amsterdam: median touching {touching}, median shared share {shared:.3}");
    assert!(touching >= 2.0, "{touching}");
    assert!(shared > 0.3, "{shared}");
}

/// Counts within 100 m equal a brute-force count over all 10 381 buildings.
#[test]
fn perigueux_counts_match_brute_force() {
    let f = features("perigueux");
    assert_eq!(f.len(), 10381);
    let counts = col(&f, "n_within_100m");
    let areas = col(&f, "area_m2");
    let sums = col(&f, "area_sum_100m");
    let c = &f.centroids;
    for k in 0..500 {
        let i = k * f.len() / 500;
        let mut n = 0;
        let mut s = 0.0;
        for j in 0..f.len() {
            if j != i && ((c[j][0] - c[i][0]).powi(2) + (c[j][1] - c[i][1]).powi(2)).sqrt() <= 100.0
            {
                n += 1;
                s += areas[j];
            }
        }
        assert_eq!(counts[i], n as f64, "building {i}");
        assert!((sums[i] - s).abs() <= 1e-9 * s.max(1.0), "building {i}");
    }
}

#[test]
fn wageningen_imagery_for_every_building() {
    let f = features("wageningen");
    assert_eq!(f.len(), 1408);
    for band in ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"] {
        let v = col(&f, &format!("l8_{band}_mean"));
        assert!(v.iter().all(|x| x.is_finite()), "{band}: missing means");
        assert!(
            v.iter().all(|x| (0.0..=1.0).contains(x)),
            "{band}: reflectance out of 0..1"
        );
    }
    for name in [
        "l8_ndvi_mean",
        "l8_ndvi_min",
        "l8_ndvi_max",
        "l8_ndvi_ring_mean",
    ] {
        let v = col(&f, name);
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)), "{name}");
    }
    // The ring mean differs from the footprint mean for most buildings: it is another area.
    let (a, b) = (col(&f, "l8_nir_mean"), col(&f, "l8_nir_ring_mean"));
    assert!(
        a.iter()
            .zip(&b)
            .filter(|(x, y)| (*x - *y).abs() > 1e-6)
            .count()
            > 1000
    );
}

/// The coverage-weighted mean equals an independent computation through GDAL: footprints
/// reprojected by OGR, intersected with each pixel square by GEOS, pixel values read by GDAL.
#[test]
fn imagery_mean_equals_hand_computation() {
    let f = features("wageningen");
    let cfg = city_config("wageningen");
    let im = &cfg.imagery[0];
    let ds = gdal::Dataset::open(&im.path).unwrap();
    let gt = ds.geo_transform().unwrap();
    let band = ds.rasterband(4).unwrap(); // red
    let target = gdal::spatial_ref::SpatialRef::from_epsg(32631).unwrap();
    let fp = gdal::Dataset::open(&cfg.footprints.as_ref().unwrap().path).unwrap();
    let mut layer = fp.layer_by_name("buildings").unwrap();
    let idx = layer.defn().field_index("identifica").unwrap();
    let mut geoms = HashMap::new();
    for feat in layer.features() {
        geoms.insert(
            feat.field_as_string(idx).unwrap().unwrap(),
            feat.geometry().unwrap().clone(),
        );
    }
    let ours = col(&f, "l8_red_mean");
    let mask = gdal::Dataset::open(&im.mask.as_ref().unwrap().path).unwrap();
    let mask_band = mask.rasterband(1).unwrap();
    for &i in &[0usize, 700, 1407] {
        let mut g = geoms[&f.ids[i]].clone();
        let mut src = g.spatial_ref().unwrap();
        src.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
        let mut tgt = target.clone();
        tgt.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
        let ct = gdal::spatial_ref::CoordTransform::new(&src, &tgt).unwrap();
        g.transform_inplace(&ct).unwrap();
        let e = g.envelope();
        let c0 = ((e.MinX - gt[0]) / gt[1]).floor() as isize;
        let c1 = ((e.MaxX - gt[0]) / gt[1]).ceil() as isize;
        let r0 = ((e.MaxY - gt[3]) / gt[5]).floor() as isize;
        let r1 = ((e.MinY - gt[3]) / gt[5]).ceil() as isize;
        let (mut sw, mut swv) = (0.0, 0.0);
        for r in r0..r1 {
            for c in c0..c1 {
                let x = gt[0] + c as f64 * gt[1];
                let y = gt[3] + r as f64 * gt[5];
                let px = gdal::vector::Geometry::bbox(x, y + gt[5], x + gt[1], y).unwrap();
                let Some(inter) = g.intersection(&px) else {
                    continue;
                };
                let w = inter.area() / (gt[1] * -gt[5]);
                if w <= 0.0 {
                    continue;
                }
                let v = band
                    .read_as::<f64>((c, r), (1, 1), (1, 1), None)
                    .unwrap()
                    .data()[0];
                let m = mask_band
                    .read_as::<f64>((c, r), (1, 1), (1, 1), None)
                    .unwrap()
                    .data()[0];
                if v != -9999.0 && (m == 0.0 || m == 1.0) {
                    sw += w;
                    swv += w * v * 0.0001;
                }
            }
        }
        let hand = swv / sw;
        assert!(
            (ours[i] - hand).abs() < 1e-6,
            "building {i}: {} vs {hand}",
            ours[i]
        );
    }
}

/// The table of all shipped cities writes and reads back with identical values (GeoParquet,
/// CSV, GeoPackage).
#[test]
fn features_table_round_trips() {
    let names = [
        "amsterdam-centre",
        "delft-3dfier",
        "wageningen",
        "delft-5910",
        "perigueux",
        "olemps",
    ];
    let cities: Vec<CityFeatures> = names.iter().map(|n| features(n)).collect();
    let table = features_table(&cities).unwrap();
    let n: usize = cities.iter().map(|c| c.len()).sum();
    assert_eq!(table.n_rows(), n);
    assert_eq!(
        table.crs.as_ref().unwrap().label,
        "EPSG:4326",
        "mixed CRSs are written in WGS 84"
    );
    let dir = tempfile::tempdir().unwrap();
    for ext in ["parquet", "csv", "gpkg"] {
        let path = dir.path().join(format!("features.{ext}"));
        write_table(&table, &path).unwrap();
        let back = read_table(&path).unwrap();
        assert_eq!(back.n_rows(), n, "{ext}");
        for c in &table.columns {
            let b = back
                .column(&c.name)
                .unwrap_or_else(|| panic!("{ext}: column {} lost", c.name));
            match &c.data {
                roofline::io::table::ColumnData::F64(_) => {
                    let (x, y) = (c.as_f64(), b.as_f64());
                    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
                        assert!(
                            p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                            "{ext} {} row {i}: {p} vs {q}",
                            c.name
                        );
                    }
                }
                _ => assert_eq!(c.as_strings(), b.as_strings(), "{ext} {}", c.name),
            }
        }
        if ext != "csv" {
            assert_eq!(back.crs.as_ref().unwrap().label, "EPSG:4326", "{ext}");
            assert_eq!(back.geometry.as_ref().unwrap().len(), n);
        }
        if ext == "parquet" {
            let meta: serde_json::Value = serde_json::from_str(&back.metadata["roofline"]).unwrap();
            assert_eq!(
                meta["feature_names"].as_array().unwrap().len(),
                table.columns.len() - 6 // city, id, label, height_m, flag, height_raw_m
            );
        }
    }
}

#[test]
fn features_do_not_depend_on_thread_count() {
    let cfg = city_config("delft-5910");
    let run = |n| {
        on_threads(n, || {
            city_features(&cfg, FeatureOptions::default(), &Progress::hidden())
                .unwrap()
                .values
        })
    };
    let (a, b) = (run(1), run(2));
    assert!(a
        .iter()
        .zip(b.iter())
        .all(|(x, y)| x.to_bits() == y.to_bits()));
}

#[test]
fn sparse_lidar_features_in_a_region() {
    // Bresse: 40 buildings, 6 inside the LiDAR tile. As a region without LiDAR labels, the points
    // become features: heights above ground where the survey reaches, missing elsewhere.
    let mut cfg = sample_config("bresse");
    cfg.label = None;
    let f = city_features(&cfg, FeatureOptions::default(), &Progress::hidden()).unwrap();
    let pts = col(&f, "lidar_points");
    let h = col(&f, "lidar_p90_m");
    let covered: Vec<usize> = (0..f.len()).filter(|&i| pts[i].is_finite()).collect();
    assert!(
        (4..=8).contains(&covered.len()),
        "{} covered",
        covered.len()
    );
    for &i in &covered {
        assert!(pts[i] > 0.0);
        assert!(h[i] > 1.5 && h[i] < 30.0, "p90 above ground {}", h[i]);
    }
    assert!(h.iter().filter(|x| x.is_nan()).count() >= 32);
}
