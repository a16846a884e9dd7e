//! Every shipped footprint file, point cloud and raster opens; CRS handling; encodings.

mod common;

use common::*;
use roofline::config::{CityConfig, FootprintsConfig};
use roofline::crs::Crs;
use roofline::io::footprints::{open_vector, read_footprints, Request};
use roofline::io::pointcloud::{open_point_clouds, CrsSource, PointChunk, PointCloudFile};
use roofline::io::raster::open_raster;

fn all_configs() -> Vec<CityConfig> {
    let mut out = Vec::new();
    for dir in ["cities", "lidar-samples"] {
        let mut paths: Vec<_> = std::fs::read_dir(data().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        out.extend(paths.iter().map(|p| CityConfig::load(p).unwrap()));
    }
    out
}

#[test]
fn every_shipped_footprint_file_opens() {
    let expected = [
        ("amsterdam-centre", 1479, "EPSG:28992"),
        ("delft-3dfier", 160, "EPSG:28992"),
        ("wageningen", 1408, "EPSG:28992"),
        ("wageningen-parts", 2462, "EPSG:28992"),
        ("delft-5910", 429, "EPSG:28992"),
        ("perigueux", 10381, "EPSG:32631"),
        ("olemps", 2273, "EPSG:2154"),
        ("bresse", 40, "EPSG:2154"),
    ];
    let configs = all_configs();
    for (name, n, crs) in expected {
        let cfg = configs.iter().find(|c| c.name == name).unwrap();
        let fp =
            read_footprints(cfg.footprints.as_ref().unwrap(), None, &Request::default()).unwrap();
        assert_eq!(fp.len(), n, "{name}");
        assert_eq!(fp.crs.label, crs, "{name} working CRS");
        assert!(fp.geometries.iter().all(|g| !g.0.is_empty()));
    }
}

#[test]
fn geographic_footprints_go_to_utm_with_true_areas() {
    use geo::Area;
    // Périgueux comes in EPSG:4326; its `s_geom_cst` attribute is the area in m².
    let cfg = city_config("perigueux");
    let req = Request {
        numeric: vec!["s_geom_cst".into()],
        ..Default::default()
    };
    let fp = read_footprints(cfg.footprints.as_ref().unwrap(), None, &req).unwrap();
    assert_eq!(fp.source_crs.label, "EPSG:4326");
    let given = &fp.numeric["s_geom_cst"];
    let rel: Vec<f64> = fp
        .geometries
        .iter()
        .zip(given)
        .filter_map(|(g, a)| {
            a.filter(|a| *a > 20.0)
                .map(|a| (g.unsigned_area() - a).abs() / a)
        })
        .collect();
    let med = median(&rel);
    assert!(med < 0.02, "median relative area difference {med}");
    // Holes survive (courtyards).
    assert!(fp
        .geometries
        .iter()
        .any(|g| g.0.iter().any(|p| !p.interiors().is_empty())));
}

#[test]
fn footprint_crs_override_wins() {
    let cfg = city_config("delft-5910");
    let mut f: FootprintsConfig = cfg.footprints.clone().unwrap();
    let plain = read_footprints(&f, None, &Request::default()).unwrap();
    f.crs = Some("EPSG:3857".into());
    let mercator = Crs::from_epsg(3857).unwrap();
    let over = read_footprints(&f, Some(&mercator), &Request::default()).unwrap();
    assert_eq!(over.source_crs.label, "EPSG:3857");
    assert_eq!(over.crs.label, "EPSG:3857");
    // Same numbers, now read as Web Mercator and worked in it: not reprojected.
    assert_eq!(plain.geometries[0], over.geometries[0]);
    // Left to the rule, Web Mercator is not true to scale there (0.24 % at 4° N): UTM.
    let auto = read_footprints(&f, None, &Request::default()).unwrap();
    assert_eq!(auto.source_crs.label, "EPSG:3857");
    assert_eq!(auto.crs.label, "EPSG:32631");
    // An explicit working CRS reprojects.
    let utm = Crs::from_epsg(32631).unwrap();
    let moved = read_footprints(
        &cfg.footprints.clone().unwrap(),
        Some(&utm),
        &Request::default(),
    )
    .unwrap();
    assert_eq!(moved.crs.label, "EPSG:32631");
    assert_ne!(moved.geometries[0], plain.geometries[0]);
}

#[test]
fn every_shipped_point_cloud_opens_and_streams() {
    let mut files = std::collections::BTreeSet::new();
    for cfg in all_configs() {
        let Some(l) = &cfg.lidar else { continue };
        let fallback = l.crs.as_deref().map(|c| Crs::from_user(c).unwrap());
        for f in &l.files {
            if !files.insert(f.clone()) {
                continue;
            }
            let first = PointCloudFile::open(
                f,
                fallback.as_ref(),
                l.z_unit_m,
                &Crs::from_epsg(4326).unwrap(),
            )
            .unwrap();
            let b = first.native_bounds;
            let working = first
                .crs
                .working_for(((b[0] + b[3]) / 2.0, (b[1] + b[4]) / 2.0))
                .unwrap();
            let pc = PointCloudFile::open(f, fallback.as_ref(), l.z_unit_m, &working).unwrap();
            let mut stream = pc.stream(&working, 100_000).unwrap();
            let mut chunk = PointChunk::default();
            let mut n = 0u64;
            while stream.next_chunk(&mut chunk).unwrap() {
                n += chunk.len() as u64;
            }
            assert_eq!(n, pc.points, "{}", f.display());
        }
    }
    // 2 Amsterdam + 2 Delft + 6 Montpellier + 2 Grau-du-Roi + 1 Bresse + 2 sparse + 2 Autzen + 1 St-Barth
    assert_eq!(files.len(), 18);
}

#[test]
fn point_cloud_crs_from_file_or_config() {
    let bresse = sample_config("bresse");
    let pc = open_point_clouds(
        bresse.lidar.as_ref().unwrap(),
        &Crs::from_epsg(2154).unwrap(),
    )
    .unwrap();
    assert_eq!(pc[0].crs.label, "EPSG:2154");
    assert_eq!(pc[0].crs_source, CrsSource::Wkt);
    assert_eq!(pc[0].version, "1.4");
    assert_eq!(pc[0].point_format, 8);
    let utm = sample_config("autzen-utm");
    let pc =
        open_point_clouds(utm.lidar.as_ref().unwrap(), &Crs::from_epsg(26910).unwrap()).unwrap();
    assert_eq!(pc[0].crs.label, "EPSG:26910");
    let stb = sample_config("st-barthelemy");
    let pc =
        open_point_clouds(stb.lidar.as_ref().unwrap(), &Crs::from_epsg(5490).unwrap()).unwrap();
    assert_eq!(pc[0].crs_source, CrsSource::Config);
    assert_eq!(pc[0].crs.label, "EPSG:5490");
}

/// Autzen is in international feet, z included: roofline delivers metres in a metric CRS, and
/// the result lines up with the separate UTM sample of the same area.
#[test]
fn autzen_feet_become_metres() {
    let cfg = sample_config("autzen");
    let l = cfg.lidar.as_ref().unwrap();
    let utm = Crs::from_epsg(26910).unwrap();
    let pc = &open_point_clouds(l, &utm).unwrap()[0];
    assert_eq!(pc.crs_source, CrsSource::Wkt);
    assert!(
        (pc.z_unit_m - 0.3048).abs() < 1e-9,
        "z unit {}",
        pc.z_unit_m
    );
    let mut s = pc.stream(&utm, 1 << 16).unwrap();
    let mut chunk = PointChunk::default();
    let (mut zmin, mut zmax) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut xmin, mut xmax) = (f64::INFINITY, f64::NEG_INFINITY);
    while s.next_chunk(&mut chunk).unwrap() {
        for i in 0..chunk.len() {
            zmin = zmin.min(chunk.z[i]);
            zmax = zmax.max(chunk.z[i]);
            xmin = xmin.min(chunk.x[i]);
            xmax = xmax.max(chunk.x[i]);
        }
    }
    assert!((zmin - 406.26 * 0.3048).abs() < 0.01, "zmin {zmin}");
    assert!((zmax - 520.51 * 0.3048).abs() < 0.01, "zmax {zmax}");
    // The 1179 ft wide crop is ~359 m wide in UTM metres.
    let width = xmax - xmin;
    assert!((width - 1177.46 * 0.3048).abs() < 5.0, "width {width}");
    // And it sits where the UTM sample (ground ~124 m) is: overlapping x ranges.
    let other =
        &open_point_clouds(sample_config("autzen-utm").lidar.as_ref().unwrap(), &utm).unwrap()[0];
    assert!(
        xmin < other.bounds[2] && xmax > other.bounds[0],
        "x {xmin}..{xmax} vs {:?}",
        other.bounds
    );
    assert!((zmin - other.native_bounds[2]).abs() < 2.0);
}

#[test]
fn every_shipped_raster_opens() {
    let mut paths = Vec::new();
    for cfg in all_configs() {
        for im in &cfg.imagery {
            let r = open_raster(&im.path, im.crs.as_deref()).unwrap();
            assert_eq!(r.bands.len(), im.bands.len(), "{}", im.path.display());
            assert!(r.crs.is_some());
            paths.push(im.path.clone());
        }
    }
    for dir in [
        "cities/wageningen/imagery/landsat8-2014",
        "cities/wageningen/imagery/landsat5-1990",
        "fixtures",
        "lidar-samples/grau-du-roi",
        "lidar-samples/montpellier",
    ] {
        for e in std::fs::read_dir(data().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "tif" || e == "tiff") {
                let r = open_raster(&p, None).unwrap();
                assert!(
                    r.width > 0 && r.height > 0 && r.crs.is_some(),
                    "{}",
                    p.display()
                );
                paths.push(p);
            }
        }
    }
    assert!(paths.len() >= 30, "{} rasters", paths.len());
    // Scale and nodata are applied on read: Landsat 8 reflectance in 0..1, nodata as NaN.
    let l8 = open_raster(
        &data().join("cities/wageningen/imagery/landsat8-2014/LC81970242014109LGN00_sr_band4.tif"),
        None,
    )
    .unwrap();
    let v = l8.read_window(1, 0, 0, l8.width, l8.height).unwrap();
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    assert!(!finite.is_empty());
    assert_eq!(l8.bands[0].nodata, Some(-9999.0));
    assert_eq!(finite.len(), v.len(), "the scene has no nodata pixels");
    assert!(finite.iter().all(|x| (-2000.0..=16000.0).contains(x)));
}

#[test]
fn empty_cpg_shapefile_is_read_as_utf8() {
    use gdal::vector::LayerAccess;
    let ds = open_vector(&data().join("cities/olemps/BATIMENT.shp")).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let idx = layer.defn().field_index("ACQU_ALTI").unwrap();
    let values: Vec<String> = layer
        .features()
        .filter_map(|f| f.field_as_string(idx).unwrap())
        .collect();
    assert_eq!(
        values
            .iter()
            .filter(|v| v.as_str() == "Photogrammétrie")
            .count(),
        329
    );
    assert!(values
        .iter()
        .all(|v| !v.contains('\u{fffd}') && !v.contains('Ã')));
}
