//! PostGIS in and out, against a real PostgreSQL + PostGIS: each test starts a throw-away
//! cluster (`initdb` in a temporary folder, `pg_ctl start` on a free port with its socket in
//! that folder, `CREATE EXTENSION postgis`) and stops it when done. scripts/test.sh installs
//! Debian's `postgresql` and `postgresql-postgis` when missing; `ROOFLINE_PG_BIN` names
//! another folder holding `initdb` and `pg_ctl`. PostgreSQL refuses to run as root: as root the
//! cluster runs as the `postgres` user (through `runuser`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{assert_clean_error, assert_same_table, data, roofline};
use roofline::io::output::read_table;
use roofline::io::table::{ColumnData, Table};

/// A running throw-away cluster; stopped (and its folder removed) on drop.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The user the server runs as, when not this process's own (running as root).
    run_as: Option<String>,
}

/// The folder holding `initdb` and `pg_ctl`: `ROOFLINE_PG_BIN`, else Debian's
/// `/usr/lib/postgresql/<newest>/bin`, else `pg_config --bindir`.
fn pg_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ROOFLINE_PG_BIN") {
        return PathBuf::from(p);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    panic!(
        "no PostgreSQL found (initdb): scripts/test.sh installs Debian's postgresql and postgresql-postgis (or set ROOFLINE_PG_BIN)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start() -> Cluster {
        let bin = pg_bin();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then(|| "postgres".to_string());
        // Under /tmp so that the server's user can reach it whatever TMPDIR's parents allow.
        let dir = if root {
            tempfile::Builder::new()
                .prefix("roofline-pg")
                .tempdir_in("/tmp")
                .unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        if let Some(user) = &run_as {
            let out = Command::new("chown")
                .args([user.as_str(), dir.path().to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "as root the cluster runs as '{user}', which must exist (Debian's postgresql package makes it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            run_as,
        };
        let data = cluster.dir.path().join("data");
        cluster.pg_command(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "roofline",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // A few attempts: another process may take the port between choosing and binding.
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=localhost -c fsync=off -c log_statement=all",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.log_path();
            let (ok, out) = cluster.try_pg_command(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-o",
                    &options,
                    "-w",
                    "start",
                ],
            );
            if ok {
                cluster.psql("postgres", "CREATE EXTENSION postgis");
                return cluster;
            }
            last = format!(
                "{out}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("pg_ctl start failed: {last}");
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn try_pg_command(&self, tool: &str, args: &[&str]) -> (bool, String) {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn pg_command(&self, tool: &str, args: &[&str]) {
        let (ok, out) = self.try_pg_command(tool, args);
        assert!(ok, "{tool} failed: {out}");
    }

    /// The GDAL connection string of database `db` (with a password the server ignores — trust
    /// authentication — so the tests can check it never shows).
    fn conn(&self, db: &str) -> String {
        format!(
            "PG:dbname={db} host={} port={} user=roofline password=not-for-your-eyes",
            self.dir.path().display(),
            self.port
        )
    }

    /// psql connected to database `db` of this cluster, without the user's psqlrc.
    fn psql_to(&self, db: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-X", "-q", "-h"]).arg(self.dir.path()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "roofline",
            "-d",
            db,
        ]);
        c
    }

    /// Runs SQL through psql; returns its unaligned output, fields separated by U+001F and
    /// nulls as `<null>`. Panics on an SQL error.
    fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .psql_to(db)
            .args([
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-F",
                "\u{1f}",
                "-P",
                "null=<null>",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A psql session kept open (for locks held across other commands).
    fn session(&self) -> Session {
        let child = self
            .psql_to("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("psql runs");
        Session(child)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self.try_pg_command(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

/// An open psql session; closed (and waited for) on drop.
struct Session(std::process::Child);

impl Session {
    fn send(&mut self, sql: &str) {
        let stdin = self.0.stdin.as_mut().expect("stdin piped");
        writeln!(stdin, "{sql}").unwrap();
        stdin.flush().unwrap();
    }

    fn close(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

/// Polls `cond` every 50 ms for at most 60 s; panics naming `what` otherwise.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn run(args: &[&str]) -> String {
    let (code, out, err) = roofline(args);
    assert_eq!(code, 0, "roofline {args:?} failed: {err}");
    out
}

/// A failed run: one error line naming the connection (`PG:dbname=...`), never its password.
fn assert_db_error(args: &[&str], what: &str) -> String {
    let (code, _, err) = roofline(args);
    assert_clean_error(code, &err, "PG:dbname=");
    assert!(!err.contains("not-for-your-eyes"), "password shown: {err}");
    assert!(err.contains(what), "expected '{what}' in: {err}");
    err
}

/// A model trained on Delft (60 trees: quick; its accuracy is not the point here).
fn delft_model(dir: &Path) -> String {
    let model = dir.join("delft.model").display().to_string();
    run(&[
        "train",
        "--quiet",
        data().join("cities/delft-5910.toml").to_str().unwrap(),
        "--trees",
        "60",
        "-o",
        &model,
    ]);
    model
}

/// The table as psql prints it: one line per row in `fid` order, every column of `columns`
/// and the geometry as hex WKB.
fn dump(cluster: &Cluster, table: &str, columns: &[String]) -> Vec<Vec<String>> {
    let cols: Vec<String> = columns.iter().map(|c| format!("\"{c}\"::text")).collect();
    let sql = format!(
        "SELECT {}, encode(ST_AsBinary(geometry), 'hex') FROM {table} ORDER BY fid",
        cols.join(", ")
    );
    cluster
        .psql("postgres", &sql)
        .lines()
        .map(|l| l.split('\u{1f}').map(String::from).collect())
        .collect()
}

/// Asserts the database rows equal the file's table: same row count and order, ids, every
/// column (floats by their bits: PostgreSQL prints the shortest text that reads back exactly)
/// and every geometry (WKB).
fn assert_rows_equal(file: &Table, rows: &[Vec<String>]) {
    assert_eq!(rows.len(), file.n_rows(), "row count");
    for (j, c) in file.columns.iter().enumerate() {
        for (i, row) in rows.iter().enumerate() {
            let db = row[j].as_str();
            let same = match &c.data {
                ColumnData::F64(v) => match v[i] {
                    Some(x) => db.parse::<f64>().map(f64::to_bits) == Ok(x.to_bits()),
                    None => db == "<null>",
                },
                ColumnData::I64(v) => match v[i] {
                    Some(x) => db == x.to_string(),
                    None => db == "<null>",
                },
                ColumnData::Bool(v) => match v[i] {
                    Some(x) => db == if x { "true" } else { "false" },
                    None => db == "<null>",
                },
                ColumnData::Str(v) => match &v[i] {
                    Some(x) => db == x,
                    None => db == "<null>",
                },
            };
            assert!(same, "column {} row {i}: database {db:?}", c.name);
        }
    }
    let geoms = file.geometry.as_ref().expect("geometry");
    for (i, (g, row)) in geoms.iter().zip(rows).enumerate() {
        use gdal::vector::ToGdal;
        let wkb = g.to_gdal().unwrap().wkb().unwrap();
        let hex: String = wkb.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(row[file.columns.len()], hex, "geometry of row {i}");
    }
}

fn column_names(t: &Table) -> Vec<String> {
    t.columns.iter().map(|c| c.name.clone()).collect()
}

/// Bresse's predictions (5 buildings measured, 35 predicted and recalibrated on them) into
/// PostGIS equal the GeoPackage of the same run — rows, ids, heights, every column, geometry
/// — with the CRS as SRID, typed columns and a spatial index. An existing table is refused
/// without --overwrite, and a run that fails midway (after dropping the old table, while
/// copying rows) leaves the old table as it was.
#[test]
fn predictions_into_postgis_equal_the_geopackage() {
    let cluster = Cluster::start();
    let tmp = tempfile::tempdir().unwrap();
    let model = delft_model(tmp.path());
    let region = data().join("lidar-samples/bresse.toml");
    let region = region.to_str().unwrap();
    let conn = cluster.conn("postgres");
    let gpkg = tmp.path().join("bresse.gpkg");
    let predict = |extra: &[&str], out: &str| -> Vec<String> {
        let mut a: Vec<String> = ["predict", "--quiet", "--model", &model, region, "-o", out]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let call = |v: Vec<String>| run(&strs(&v));

    // A first table: the predictions without recalibration.
    let out = call(predict(&["--no-recalibrate", "--table", "heights"], &conn));
    assert!(out.contains("table heights (40 rows"), "{out}");
    assert!(
        !out.contains("not-for-your-eyes"),
        "password printed: {out}"
    );
    call(predict(&[], gpkg.to_str().unwrap()));
    let file = read_table(&gpkg).unwrap();
    let names = column_names(&file);
    let before = dump(&cluster, "heights", &names);
    assert_eq!(before.len(), 40);

    // Without --overwrite an existing table is an error, and stays as it was.
    assert_db_error(
        &strs(&predict(&["--table", "heights"], &conn)),
        "already exists",
    );
    assert_eq!(dump(&cluster, "heights", &names), before);

    // A run killed (SIGKILL: no destructor, no rollback by roofline) inside its transaction,
    // after it dropped the old table: an event trigger makes its CREATE TABLE wait for an
    // advisory lock the test holds; the test kills roofline there, then lets the server go on.
    cluster.psql(
        "postgres",
        r#"
        CREATE FUNCTION wait_for_test() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock(4242); END $$;
        CREATE EVENT TRIGGER wait_for_test ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
          EXECUTE FUNCTION wait_for_test();
        "#,
    );
    let advisory = |granted: bool| {
        cluster.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted = {granted}"),
        ) == "1\n"
    };
    let mut holder = cluster.session();
    holder.send("SELECT pg_advisory_lock(4242);");
    wait_until("the test holds the advisory lock", || advisory(true));
    let log_before = cluster.log().len();
    let mut victim = Command::new(env!("CARGO_BIN_EXE_roofline"))
        .args(strs(&predict(
            &["--table", "heights", "--overwrite"],
            &conn,
        )))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("roofline waits inside its transaction", || advisory(false));
    assert!(
        cluster.log()[log_before..].contains(r#"DROP TABLE "public"."heights""#),
        "roofline dropped the old table inside its transaction before it was killed"
    );
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    holder.send("SELECT pg_advisory_unlock(4242);");
    holder.close();
    cluster.psql(
        "postgres",
        "DROP EVENT TRIGGER wait_for_test; DROP FUNCTION wait_for_test()",
    );
    assert_eq!(
        dump(&cluster, "heights", &names),
        before,
        "a killed run left the old table as it was"
    );

    // A run that fails midway: a trigger (added by an event trigger to any new table) refuses
    // row 20 of the COPY, after the old table was dropped inside the run's transaction.
    cluster.psql(
        "postgres",
        r#"
        CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.fid = 20 THEN RAISE EXCEPTION 'row 20 refused by the test'; END IF;
          RETURN NEW;
        END $$;
        CREATE FUNCTION add_refusal() RETURNS event_trigger LANGUAGE plpgsql AS $$
        DECLARE obj record;
        BEGIN
          FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands()
                     WHERE command_tag = 'CREATE TABLE' LOOP
            EXECUTE format('CREATE TRIGGER refuse BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION refuse_row()', obj.object_identity);
          END LOOP;
        END $$;
        CREATE EVENT TRIGGER add_refusal ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
          EXECUTE FUNCTION add_refusal();
        "#,
    );
    let log_before = cluster.log().len();
    assert_db_error(
        &strs(&predict(&["--table", "heights", "--overwrite"], &conn)),
        "row 20 refused by the test",
    );
    let log = cluster.log()[log_before..].to_string();
    assert!(
        log.contains(r#"DROP TABLE "public"."heights""#) && log.contains("COPY \"heights\""),
        "the failed run dropped the old table and copied rows before failing: {log}"
    );
    assert_eq!(
        dump(&cluster, "heights", &names),
        before,
        "the failed run left the old table as it was"
    );
    cluster.psql(
        "postgres",
        "DROP EVENT TRIGGER add_refusal; DROP FUNCTION add_refusal(); DROP FUNCTION refuse_row()",
    );

    // --overwrite replaces it with the recalibrated predictions: equal to the GeoPackage.
    call(predict(&["--table", "heights", "--overwrite"], &conn));
    let after = dump(&cluster, "heights", &names);
    assert_rows_equal(&file, &after);
    assert_ne!(after, before, "recalibration changed some heights");
    let sources = cluster.psql(
        "postgres",
        "SELECT source, count(*) FROM heights GROUP BY source ORDER BY source",
    );
    assert_eq!(
        sources, "measured\u{1f}5\nrecalibrated\u{1f}35\n",
        "Bresse mixes measured and predicted buildings"
    );

    // The CRS as SRID, typed columns, a GiST index on the geometry.
    let epsg = file.crs.as_ref().unwrap().epsg().unwrap();
    assert_eq!(epsg, 2154);
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT Find_SRID('public', 'heights', 'geometry'), GeometryType(geometry) FROM heights LIMIT 1"
        ),
        format!("{epsg}\u{1f}MULTIPOLYGON\n")
    );
    let types = cluster.psql(
        "postgres",
        "SELECT column_name || ' ' || udt_name FROM information_schema.columns WHERE table_name = 'heights' ORDER BY ordinal_position",
    );
    for expected in [
        "id varchar",
        "height_m float8",
        "height_lo_m float8",
        "height_hi_m float8",
        "ood bool",
        "ood_feature_count int8",
        "source varchar",
        "geometry geometry",
    ] {
        assert!(
            types.lines().any(|l| l == expected),
            "{expected} in {types}"
        );
    }
    let indexes = cluster.psql(
        "postgres",
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'heights'",
    );
    assert!(
        indexes.lines().any(|l| l.contains("USING gist (geometry)")),
        "spatial index: {indexes}"
    );

    // Labels into a table in another schema.
    cluster.psql("postgres", "CREATE SCHEMA results");
    run(&[
        "labels",
        "--quiet",
        region,
        "-o",
        &conn,
        "--table",
        "results.labels",
    ]);
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT count(*), count(height_m), Find_SRID('results', 'labels', 'geometry') FROM results.labels"
        ),
        "40\u{1f}5\u{1f}2154\n"
    );

    // A tiled run merged into the database: the same rows as the single run's table.
    let plan = tmp.path().join("plan");
    let plan = plan.to_str().unwrap();
    run(&["plan", region, "--grid", "--tile-size", "100", "-o", plan]);
    let jobs = roofline::plan::Plan::load(Path::new(plan)).unwrap().jobs;
    assert!(jobs.len() >= 2, "{} jobs", jobs.len());
    for j in &jobs {
        let job = Path::new(plan).join(&j.path);
        let job = job.to_str().unwrap();
        // A job writes its partition, not a table.
        if j.id == 0 {
            let (code, _, err) = roofline(&["labels", "--job", job, "--table", "x"]);
            assert_clean_error(code, &err, "--job");
        }
        run(&["labels", "--quiet", "--job", job]);
    }
    let out = run(&["merge", plan, "-o", &conn, "--table", "results.merged"]);
    assert!(!out.contains("not-for-your-eyes"), "{out}");
    let labels = |t: &str| {
        cluster.psql(
            "postgres",
            &format!(
                "SELECT id, height_m, flag, encode(ST_AsBinary(geometry), 'hex') FROM results.{t} ORDER BY fid"
            ),
        )
    };
    assert_eq!(labels("merged"), labels("labels"));

    // Refused before any work: no --table, a database without PostGIS, --table on a file.
    assert_db_error(&["labels", "--quiet", region, "-o", &conn], "--table");
    cluster.psql("postgres", "CREATE DATABASE plain");
    assert_db_error(
        &[
            "labels",
            "--quiet",
            region,
            "-o",
            &cluster.conn("plain"),
            "--table",
            "labels",
        ],
        "no PostGIS",
    );
    let (code, _, err) = roofline(&[
        "labels",
        region,
        "-o",
        tmp.path().join("l.gpkg").to_str().unwrap(),
        "--table",
        "x",
    ]);
    assert_clean_error(code, &err, "l.gpkg");
}

/// Loads a layer of a file into the database with GDAL (ogr2ogr's library function).
fn load_into(conn: &str, file: &Path, layer: &str, table: &str) {
    use std::ffi::CString;
    roofline::io::gdal_setup::init();
    let src = gdal::Dataset::open(file).unwrap();
    let args = [
        "-f",
        "PostgreSQL",
        "-nln",
        table,
        "-nlt",
        "PROMOTE_TO_MULTI",
        layer,
    ];
    let c_args: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
    let mut ptrs: Vec<*mut std::os::raw::c_char> =
        c_args.iter().map(|a| a.as_ptr() as *mut _).collect();
    ptrs.push(std::ptr::null_mut());
    let dest = CString::new(conn).unwrap();
    // SAFETY: argv and strings outlive the calls; the source handle is alive; the options and
    // the returned dataset are freed here.
    unsafe {
        let opts = gdal_sys::GDALVectorTranslateOptionsNew(ptrs.as_mut_ptr(), std::ptr::null_mut());
        assert!(!opts.is_null());
        let mut src_h = src.c_dataset();
        let mut usage = 0;
        let out = gdal_sys::GDALVectorTranslate(
            dest.as_ptr(),
            std::ptr::null_mut(),
            1,
            &mut src_h,
            opts,
            &mut usage,
        );
        gdal_sys::GDALVectorTranslateOptionsFree(opts);
        assert!(
            !out.is_null(),
            "loading {} into {table} failed (usage error: {usage}): {:?}",
            file.display(),
            roofline::io::gdal_setup::take_failures()
        );
        gdal_sys::GDALClose(out);
    }
}

/// Delft's footprints loaded into PostGIS (table `bgt.pand`, through GDAL) give the same
/// features and predictions as the file, read as a table or through an SQL query; a missing
/// table, a table without geometry or without CRS, and a wrong port are one-line errors that
/// name the connection without its password.
#[test]
fn footprints_from_postgis_equal_the_file() {
    let cluster = Cluster::start();
    let tmp = tempfile::tempdir().unwrap();
    let conn = cluster.conn("postgres");
    cluster.psql("postgres", "CREATE SCHEMA bgt");
    let city = data().join("cities/delft-3dfier.toml");
    load_into(
        &conn,
        &data().join("cities/delft-3dfier/footprints/bgt_pand.sqlite"),
        "buildingpart",
        "bgt.pand",
    );
    assert_eq!(
        cluster.psql("postgres", "SELECT count(*) FROM bgt.pand"),
        "160\n"
    );
    let lidar = data().join("cities/delft-3dfier/lidar/*.laz");
    let config = |footprints: &str| -> PathBuf {
        let text = format!(
            "name = \"delft-3dfier\"\n\n[footprints]\npath = \"{conn}\"\n{footprints}\nid = \"identificatiebagpnd\"\n\n[lidar]\npaths = [\"{}\"]\ncrs = \"EPSG:28992\"\n\n[label]\nsource = \"lidar\"\n",
            lidar.display()
        );
        let name = format!("delft-{}.toml", footprints.len());
        common::write_config(tmp.path(), &name, &text)
    };
    let from_table = config("layer = \"bgt.pand\"");
    let from_sql = config("sql = \"SELECT * FROM bgt.pand WHERE ogc_fid > 0 ORDER BY ogc_fid\"");
    let out = |n: &str| tmp.path().join(n).display().to_string();

    let features = |cfg: &Path, name: &str| -> Table {
        run(&[
            "features",
            "--quiet",
            cfg.to_str().unwrap(),
            "-o",
            &out(name),
        ]);
        read_table(Path::new(&out(name))).unwrap()
    };
    let file = features(&city, "file.parquet");
    assert_eq!(file.n_rows(), 160);
    assert_same_table(
        &file,
        &features(&from_table, "table.parquet"),
        "features (table)",
    );
    assert_same_table(&file, &features(&from_sql, "sql.parquet"), "features (sql)");

    let model = delft_model(tmp.path());
    let predict = |cfg: &Path, name: &str| -> Table {
        run(&[
            "predict",
            "--quiet",
            "--model",
            &model,
            cfg.to_str().unwrap(),
            "-o",
            &out(name),
        ]);
        read_table(Path::new(&out(name))).unwrap()
    };
    assert_same_table(
        &predict(&city, "file-pred.parquet"),
        &predict(&from_table, "table-pred.parquet"),
        "predictions",
    );

    // Errors name the connection (never its password) and what is wrong.
    cluster.psql(
        "postgres",
        "CREATE TABLE bgt.plain AS SELECT ogc_fid, identificatiebagpnd FROM bgt.pand;
         CREATE TABLE bgt.nocrs AS SELECT ogc_fid, identificatiebagpnd, ST_SetSRID(geom, 0)::geometry(MultiPolygon, 0) AS geom FROM (SELECT ogc_fid, identificatiebagpnd, ST_Multi(GEOMETRY) AS geom FROM bgt.pand) AS p",
    );
    for (footprints, what) in [
        ("layer = \"bgt.nope\"", "no table 'bgt.nope'"),
        ("layer = \"bgt.plain\"", "has no geometry column"),
        ("layer = \"bgt.nocrs\"", "has no CRS"),
        ("sql = \"SELECT * FROM bgt.nope\"", "footprints.sql failed"),
    ] {
        let cfg = config(footprints);
        assert_db_error(&["inspect", cfg.to_str().unwrap()], what);
    }
    let wrong_port = tmp.path().join("wrong-port.toml");
    std::fs::write(
        &wrong_port,
        std::fs::read_to_string(&from_table)
            .unwrap()
            .replace(&format!("port={}", cluster.port), "port=1"),
    )
    .unwrap();
    assert_db_error(
        &["inspect", wrong_port.to_str().unwrap()],
        "cannot connect to the database",
    );
}

/// The password is replaced in every message, and a config's `PG:` path is not taken for a
/// file next to the config (no cluster needed).
#[test]
fn connection_strings_are_not_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::write_config(
        tmp.path(),
        "db.toml",
        "name = \"db\"\n[footprints]\npath = \"PG:dbname=nowhere host=/nonexistent port=1 password=secret\"\nlayer = \"pand\"\n",
    );
    let loaded = roofline::config::CityConfig::load(&cfg).unwrap();
    assert_eq!(
        loaded.footprints.unwrap().path,
        PathBuf::from("PG:dbname=nowhere host=/nonexistent port=1 password=secret")
    );
    let (code, _, err) = roofline(&["inspect", cfg.to_str().unwrap()]);
    assert_clean_error(code, &err, "PG:dbname=nowhere");
    assert!(
        err.contains("password=***") && !err.contains("secret"),
        "{err}"
    );
    let both = common::write_config(
        tmp.path(),
        "both.toml",
        "name = \"db\"\n[footprints]\npath = \"PG:dbname=x\"\nlayer = \"pand\"\nsql = \"SELECT 1\"\n",
    );
    let (code, _, err) = roofline(&["inspect", both.to_str().unwrap()]);
    assert_clean_error(code, &err, "both.toml");
}
