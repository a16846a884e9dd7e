//! roofline's HTML outputs opened in headless Chromium: a cross-validation's report.html and a
//! `predict -o city.html` map must load without a console error or a failed request, show one
//! scatter plot per held-out city, and the 3D map must draw (WebGL through SwiftShader).
//!
//! Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`:
//! JSON messages separated by NUL bytes on file descriptors 3 and 4), which reports every
//! console message, uncaught exception, log entry and failed request — no WebSocket needed.
//! scripts/test.sh installs Debian's `chromium` when missing; `ROOFLINE_CHROMIUM` overrides
//! the binary. Screenshots and timings are kept in `<target>/tmp/browser/`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

mod common;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("ROOFLINE_CHROMIUM") {
        return p.into();
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("no chromium found: scripts/test.sh installs Debian's `chromium` (or set ROOFLINE_CHROMIUM)");
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A headless Chromium and one page, attached with a flat DevTools session.
struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Console errors, exceptions, error log entries and failed requests, as one line each.
    problems: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (mut cmd_pipe, mut resp_pipe) = ([0i32; 2], [0i32; 2]);
        // SAFETY: plain pipe creation; the descriptors are owned below.
        unsafe {
            assert_eq!(libc::pipe2(cmd_pipe.as_mut_ptr(), libc::O_CLOEXEC), 0);
            assert_eq!(libc::pipe2(resp_pipe.as_mut_ptr(), libc::O_CLOEXEC), 0);
        }
        let (child_in, child_out) = (cmd_pipe[0], resp_pipe[1]);
        let mut command = Command::new(chromium());
        command
            .args([
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-gpu-sandbox",
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--hide-scrollbars",
                &format!("--window-size={WIDTH},{HEIGHT}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Move both ends above 4 first so the dup2s cannot clobber each other.
                let a = libc::fcntl(child_in, libc::F_DUPFD, 10);
                let b = libc::fcntl(child_out, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        // SAFETY: each descriptor is owned by exactly one File from here on.
        let (to, from_file) = unsafe {
            libc::close(child_in);
            libc::close(child_out);
            (
                File::from_raw_fd(cmd_pipe[1]),
                File::from_raw_fd(resp_pipe[0]),
            )
        };
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from_file);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        buf.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to,
            from: rx,
            next_id: 0,
            session: String::new(),
            problems: Vec::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in [
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
            "Page.enable",
        ] {
            b.call(domain, json!({}));
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// Sends a command (to the page session once attached) and waits for its result,
    /// recording events that arrive meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) if v["id"].as_u64() == Some(id) => {
                    if let Some(e) = v.get("error") {
                        panic!("DevTools {method} failed: {e}");
                    }
                    return v["result"].clone();
                }
                Ok(v) => self.event(&v),
                Err(RecvTimeoutError::Timeout) => panic!("no answer to {method} in 120 s"),
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited during {method}"),
            }
        }
    }

    /// Records what counts as a problem on the page.
    fn event(&mut self, v: &Value) {
        let p = &v["params"];
        let problem = match v["method"].as_str().unwrap_or("") {
            "Runtime.exceptionThrown" => Some(format!(
                "uncaught exception: {}",
                p["exceptionDetails"]["exception"]["description"]
                    .as_str()
                    .or(p["exceptionDetails"]["text"].as_str())
                    .unwrap_or("?")
            )),
            "Runtime.consoleAPICalled"
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                Some(format!(
                    "console.{}: {}",
                    p["type"].as_str().unwrap(),
                    p["args"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .map(|x| x["value"].to_string())
                            .collect::<Vec<_>>()
                            .join(" "))
                        .unwrap_or_default()
                ))
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!(
                "log error ({}): {} {}",
                p["entry"]["source"].as_str().unwrap_or("?"),
                p["entry"]["text"].as_str().unwrap_or("?"),
                p["entry"]["url"].as_str().unwrap_or("")
            )),
            "Network.loadingFailed" => Some(format!(
                "failed request: {} ({})",
                p["requestId"],
                p["errorText"].as_str().unwrap_or("?")
            )),
            "Network.responseReceived"
                if p["response"]["status"].as_i64().is_some_and(|s| s >= 400) =>
            {
                Some(format!(
                    "HTTP {} for {}",
                    p["response"]["status"],
                    p["response"]["url"].as_str().unwrap_or("?")
                ))
            }
            _ => None,
        };
        if let Some(p) = problem {
            self.problems.push(p);
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating `{expression}` threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Opens a file and waits until the page has loaded and every map on it has gone idle
    /// once; returns the seconds it took as the test saw them.
    fn open(&mut self, path: &Path) -> f64 {
        let url = format!("file://{}", path.canonicalize().unwrap().display());
        let start = Instant::now();
        self.call("Page.navigate", json!({"url": url}));
        let ready = "document.readyState === 'complete' && \
            Array.from(document.querySelectorAll('.roofline-map')).every(m => m.dataset.ready === '1')";
        loop {
            if self.eval(ready) == json!(true) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{} did not finish loading in 120 s; problems so far: {:?}",
                path.display(),
                self.problems
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Let late events (a failed request after load) arrive.
        self.eval("new Promise(r => setTimeout(() => r(1), 300))");
        start.elapsed().as_secs_f64()
    }

    /// A PNG screenshot of the viewport, or of a clip (CSS pixels, page coordinates).
    fn screenshot(&mut self, clip: Option<[f64; 4]>, to: &Path) -> Vec<u8> {
        let mut params = json!({"format": "png", "captureBeyondViewport": clip.is_some()});
        if let Some([x, y, w, h]) = clip {
            params["clip"] = json!({"x": x, "y": y, "width": w, "height": h, "scale": 1});
        }
        let r = self.call("Page.captureScreenshot", params);
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(to, &png).unwrap();
        png
    }

    /// Screenshot of the map element `id` with its overlays (legend, buttons, controls)
    /// hidden, so only what WebGL drew is in it.
    fn map_screenshot(&mut self, id: &str, to: &Path) -> Vec<u8> {
        let rect = self.eval(&format!(
            "(() => {{ const m = document.getElementById('{id}'); m.scrollIntoView(); \
             for (const o of m.querySelectorAll('.roofline-legend, .roofline-cities, .maplibregl-control-container')) o.style.visibility = 'hidden'; \
             const r = m.getBoundingClientRect(); \
             return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }})()"
        ));
        let r: Vec<f64> = serde_json::from_value(rect).unwrap();
        self.eval(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))",
        );
        let png = self.screenshot(Some([r[0], r[1], r[2], r[3]]), to);
        self.eval(&format!(
            "(() => {{ for (const o of document.getElementById('{id}').querySelectorAll('*')) o.style.visibility = ''; return 1; }})()"
        ));
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Shares of pixels of a PNG screenshot equal to the map background (#f3f1ec, within 6 per
/// channel) and clearly different from it and from white (buildings). The browser decodes the
/// PNG (an image drawn on a 2D canvas), so no image crate is needed.
fn pixel_shares(b: &mut Browser, png: &[u8]) -> (f64, f64) {
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    let v = b.eval(&format!(
        "new Promise((resolve, reject) => {{ const img = new Image(); \
         img.onerror = () => reject(new Error('screenshot does not decode')); \
         img.onload = () => {{ const c = document.createElement('canvas'); c.width = img.width; c.height = img.height; \
           const g = c.getContext('2d'); g.drawImage(img, 0, 0); const px = g.getImageData(0, 0, c.width, c.height).data; \
           let bg = 0, drawn = 0; \
           for (let i = 0; i < px.length; i += 4) {{ \
             const d = (r, gg, bb) => Math.max(Math.abs(px[i] - r), Math.abs(px[i + 1] - gg), Math.abs(px[i + 2] - bb)); \
             const dbg = d(0xf3, 0xf1, 0xec); \
             if (dbg <= 6) bg++; else if (dbg > 30 && d(255, 255, 255) > 30) drawn++; }} \
           const n = px.length / 4; resolve([bg / n, drawn / n]); }}; \
         img.src = 'data:image/png;base64,{data}'; }})"
    ));
    let r: Vec<f64> = serde_json::from_value(v).unwrap();
    (r[0], r[1])
}

/// The demo's eave cross-validation (Périgueux, 10 381 buildings, and Olemps) and the map of
/// Périgueux predicted by the demo's model.
fn outputs() -> (PathBuf, PathBuf) {
    let demo = common::demo_outputs();
    (demo.join("out/cv-eave"), demo.join("perigueux.html"))
}

#[test]
fn report_html_loads_clean_with_a_scatter_per_city_and_a_drawn_map() {
    let demo = common::demo_outputs();
    for family in ["cv-roof-p70", "cv-eave"] {
        let cv = demo.join("out").join(family);
        let report = cv.join("report.html");
        let size = std::fs::metadata(&report).unwrap().len();
        assert!(
            size < 10_000_000,
            "{family}/report.html is {size} bytes (≤ 10 MB)"
        );
        let metrics: Value =
            serde_json::from_str(&std::fs::read_to_string(cv.join("metrics.json")).unwrap())
                .unwrap();
        let cities: Vec<String> = serde_json::from_value(metrics["cities"].clone()).unwrap();

        let mut b = Browser::start();
        let secs = b.open(&report);
        let dir = out_dir();
        b.screenshot(None, &dir.join(format!("{family}-report.png")));
        let scatters: Vec<(String, u64)> = serde_json::from_value(b.eval(
            "Array.from(document.querySelectorAll('figure.scatter')).map(f => [f.dataset.city, f.querySelectorAll('circle').length])",
        ))
        .unwrap();
        let names: Vec<&str> = scatters.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names, cities,
            "{family}: one scatter plot per held-out city"
        );
        for (c, circles) in &scatters {
            assert!(
                *circles > 50,
                "{family} {c}: the scatter has {circles} points"
            );
        }
        let table_rows = b.eval("document.querySelectorAll('#per-city tr').length");
        assert_eq!(
            table_rows,
            json!(cities.len() + 2),
            "header, cities, pooled"
        );
        let png = b.map_screenshot(
            "error-map-3d",
            &dir.join(format!("{family}-report-map.png")),
        );
        let (bg, drawn) = pixel_shares(&mut b, &png);
        let load_ms = b.eval("Number(document.getElementById('error-map-3d').dataset.loadMs)");
        eprintln!(
            "{family}/report.html ({size} bytes): ready after {secs:.1} s, map idle at {load_ms} ms; map pixels: background {:.1} %, buildings {:.1} %",
            100.0 * bg,
            100.0 * drawn
        );
        assert!(
            b.problems.is_empty(),
            "{family}: problems on the page: {:#?}",
            b.problems
        );
        assert!(
            bg > 0.05,
            "{family}: the map background is {:.1} % of its pixels: WebGL drew nothing",
            100.0 * bg
        );
        assert!(
            drawn > 0.01,
            "{family}: buildings are {:.2} % of the map's pixels",
            100.0 * drawn
        );
    }
}

#[test]
fn predict_map_of_perigueux_loads_clean_and_draws_every_building() {
    let (_, map) = &outputs();
    let size = std::fs::metadata(map).unwrap().len();
    let mut b = Browser::start();
    let secs = b.open(map);
    let dir = out_dir();
    let features =
        b.eval("JSON.parse(document.getElementById('map-data').textContent).features.length");
    assert_eq!(
        features,
        json!(10_381),
        "every Périgueux footprint is on the map"
    );
    let load_ms = b.eval("Number(document.getElementById('map').dataset.loadMs)");
    let png = b.map_screenshot("map", &dir.join("map.png"));
    let (bg, drawn) = pixel_shares(&mut b, &png);
    let timing = format!(
        "perigueux.html: {size} bytes, 10 381 buildings; map idle {load_ms} ms after navigation start ({secs:.1} s as the test saw it); map pixels: background {:.1} %, buildings {:.1} %\n",
        100.0 * bg,
        100.0 * drawn
    );
    eprint!("{timing}");
    std::fs::write(dir.join("timing.txt"), &timing).unwrap();
    assert!(
        b.problems.is_empty(),
        "problems on the page: {:#?}",
        b.problems
    );
    assert!(
        bg > 0.05,
        "the map background is {:.1} % of its pixels: WebGL drew nothing",
        100.0 * bg
    );
    assert!(
        drawn > 0.01,
        "buildings are {:.2} % of the map's pixels",
        100.0 * drawn
    );
    // Hovering a building opens its popup.
    let centre = [WIDTH as f64 / 2.0, HEIGHT as f64 / 2.0];
    let mut popup = json!(false);
    for dx in [0.0, 20.0, -20.0, 40.0, -40.0, 60.0, -60.0] {
        b.eval("document.getElementById('map').scrollIntoView(); 1");
        b.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": centre[0] + dx, "y": centre[1]}),
        );
        b.eval("new Promise(r => setTimeout(() => r(1), 200))");
        popup = b.eval(
            "(document.querySelector('.maplibregl-popup-content') || {}).textContent || false",
        );
        if popup != json!(false) {
            break;
        }
    }
    let text = popup
        .as_str()
        .unwrap_or_else(|| panic!("no popup on hover near the centre"));
    for field in ["id", "height", "90 % interval", "source", "ood"] {
        assert!(text.contains(field), "popup lacks '{field}': {text}");
    }
}

/// The harness itself: an error thrown by a script and a missing image on a real map page
/// must both be reported (else the clean runs above prove nothing).
#[test]
fn harness_catches_an_injected_error_and_a_failed_request() {
    let (_, map) = &outputs();
    let html = std::fs::read_to_string(map).unwrap();
    let broken = out_dir().join("injected.html");
    std::fs::write(
        &broken,
        html.replace(
            "</body>",
            "<img src=\"no-such-image.png\"><script>throw new Error('injected failure')</script></body>",
        ),
    )
    .unwrap();
    let mut b = Browser::start();
    b.open(&broken);
    let all = b.problems.join("\n");
    assert!(
        all.contains("injected failure"),
        "exception not caught: {all}"
    );
    assert!(
        all.contains("ERR_FILE_NOT_FOUND"),
        "missing image not caught: {all}"
    );
}
