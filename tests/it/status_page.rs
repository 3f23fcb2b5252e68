//! The live status page at the API's `/`, in a real headless Chromium (Debian `chromium`),
//! driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages
//! ended by NUL on fds 3 and 4, so no WebSocket client is needed). The page must render
//! every endpoint and datacenter and colour the located countries by the datacenter they
//! get; an endpoint forced down must show as down, and its region recoloured, within 2 s,
//! without reloading the page.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use meridian::geo::writer::{CityRow, city_mmdb};
use serde_json::{Value, json};

use crate::common::{Server, http_request, require_tool, tool_path, zones};

const TOKEN: &str = "page-token-1";

const DYNAMIC: &str = r#"
[datacenters]
fra = { coords = [50.1, 8.7] }
nyc = { coords = [40.7, -74.0] }
syd = { coords = [-33.9, 151.2] }
[pools.web]
endpoints = [
  { id = "f1", datacenter = "fra", address = "192.0.2.10" },
  { id = "n1", datacenter = "nyc", address = "192.0.2.20" },
  { id = "s1", datacenter = "syd", address = "192.0.2.30" },
]
[geo_maps.world]
default = ["nyc", "fra", "syd"]
nets = { "81.2.69.192/26" = ["syd"] }
[geo_maps.world.map]
EU = ["fra", "nyc"]
NA = ["nyc", "fra"]
OC = ["syd", "nyc"]
[names.www]
pool = "web"
policy = "geo"
map = "world"
ttl = 20
[names.db]
pool = "web"
policy = "failover"
order = ["fra", "nyc"]
ttl = 10
"#;

fn fixture_db() -> Vec<u8> {
    let row = |net: &str| CityRow::new(net.parse().expect("network"));
    let rows = [
        row("81.2.69.0/24").continent("EU").country("DE"),
        row("81.3.0.0/16").continent("EU").country("FR"),
        row("8.8.8.0/24").continent("NA").country("US"),
        row("1.0.0.0/24").continent("OC").country("AU"),
    ];
    city_mmdb("GeoIP2-City", &rows).expect("fixture db")
}

/// A headless Chromium and one page, spoken to over the DevTools pipe.
struct Browser {
    child: Child,
    to_browser: std::fs::File,
    messages: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        // Chromium reads commands on fd 3 and writes answers and events on fd 4.
        let (browser_reads, test_writes) = std::io::pipe().expect("pipe");
        let (test_reads, browser_writes) = std::io::pipe().expect("pipe");
        let read_fd: OwnedFd = browser_reads.into();
        let write_fd: OwnedFd = browser_writes.into();
        let (r, w) = (read_fd.as_raw_fd(), write_fd.as_raw_fd());
        let mut cmd = Command::new(tool_path("chromium"));
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only dup2 between fork and exec (async-signal-safe); dup2 clears
        // FD_CLOEXEC on the new descriptors, so Chromium inherits exactly fds 3 and 4.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop(read_fd);
        drop(write_fd);
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(test_reads);
            let mut buf = Vec::new();
            // Ends when Chromium closes its end (it exits with the test's Browser).
            while reader.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    return;
                }
                buf.clear();
            }
        });
        let mut b = Browser {
            child,
            to_browser: std::fs::File::from(OwnedFd::from(test_writes)),
            messages,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("target id").to_string();
        let attached = b.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        b.session = attached["sessionId"].as_str().expect("session").to_string();
        b.call("Page.enable", json!({}));
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false }),
        );
        b
    }

    /// Sends one command (to the page once attached) and waits up to 20 s for its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no answer from chromium to {method}: {e}"));
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page; its value as JSON.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    fn screenshot(&mut self, path: &std::path::Path) {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = data_encoding::BASE64
            .decode(r["data"].as_str().expect("png data").as_bytes())
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).expect("write screenshot");
    }
}

/// The data attribute a country's path carries: the datacenter it is coloured for.
fn country_dc(b: &mut Browser, cc: &str) -> Value {
    b.eval(&format!(
        "document.querySelector('#map svg')?.getElementById('{cc}')?.dataset.dc || null"
    ))
}

fn endpoint_state(b: &mut Browser, key: &str) -> Value {
    b.eval(&format!(
        "document.querySelector('#endpoints tr[data-key=\"{key}\"]')?.dataset.state || null"
    ))
}

fn start_server() -> Server {
    let db = fixture_db();
    let files: Vec<(&str, &[u8])> = vec![
        ("zones/example.com.zone", zones::ROUTING.as_bytes()),
        ("zones/example.com.toml", DYNAMIC.as_bytes()),
        ("geo.mmdb", &db),
    ];
    Server::start_files(
        &files,
        1,
        &format!(
            "identity = \"page-site-1\"\n[geoip]\ndatabases = [\"geo.mmdb\"]\n[api]\ntoken = \"{TOKEN}\""
        ),
    )
}

fn map_data(api: std::net::SocketAddr) -> Value {
    let (code, body) = http_request(api, "GET", "/status/map", "", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// `/status/map` computes the shares from the tables: a /26 of DE's /24 goes to syd by a
/// CIDR override, so DE is fra's at 75%; every located address is counted once; a
/// datacenter forced down moves its countries to the next choice.
#[test]
fn status_map_counts_addresses_per_country_and_follows_health() {
    let s = start_server();
    let api = s.api.expect("api");
    let m = map_data(api);
    assert_eq!(m["identity"], json!("page-site-1"));
    // 256 (DE) + 65536 (FR) + 256 (US) + 256 (AU).
    assert_eq!(m["located_v4"], json!(66304));
    let www = &m["names"].as_array().expect("names")[1];
    assert_eq!(www["name"], json!("www.example.com."));
    assert_eq!(www["policy"], json!("geo"));
    assert_eq!(
        www["countries"]["DE"],
        json!({"datacenter": "fra", "share": 0.75})
    );
    assert_eq!(
        www["countries"]["FR"],
        json!({"datacenter": "fra", "share": 1.0})
    );
    assert_eq!(
        www["countries"]["AU"],
        json!({"datacenter": "syd", "share": 1.0})
    );
    assert_eq!(www["continents"]["EU"]["datacenter"], json!("fra"));
    let shares: f64 = www["datacenter_shares"]
        .as_object()
        .expect("shares")
        .values()
        .filter_map(Value::as_f64)
        .sum();
    assert!((shares - 1.0).abs() < 1e-9, "shares add up to {shares}");
    assert_eq!(
        www["failover_bound_secs"],
        Value::Null,
        "nothing is checked"
    );
    let db = &m["names"][0];
    assert_eq!(db["everywhere"], json!("fra"));

    let (code, text) = http_request(
        api,
        "POST",
        "/overrides",
        r#"{"datacenter":"example.com/fra","state":"down"}"#,
        Some(TOKEN),
    );
    assert_eq!(code, 200, "{text}");
    let m = map_data(api);
    let www = &m["names"][1];
    assert_eq!(
        www["countries"]["DE"],
        json!({"datacenter": "nyc", "share": 0.75})
    );
    assert_eq!(www["countries"]["FR"]["datacenter"], json!("nyc"));
    assert_eq!(www["countries"]["US"]["datacenter"], json!("nyc"));
    assert_eq!(m["names"][0]["everywhere"], json!("nyc"));
    // The change is in /status's history, with its reason.
    let (_, status) = http_request(api, "GET", "/status", "", Some(TOKEN));
    let status: Value = serde_json::from_str(&status).expect("json");
    let changes = status["changes"].as_array().expect("changes");
    assert!(
        changes.iter().any(|c| c["kind"] == json!("datacenter")
            && c["key"] == json!("example.com/fra (web)")
            && c["up"] == json!(false)
            && c["reason"] == json!("override: down")),
        "{changes:?}"
    );
}

#[test]
fn status_page_renders_and_follows_a_forced_down_endpoint_within_2s() {
    if !require_tool("chromium", "chromium") {
        return;
    }
    // Chromium takes both cores while it starts; the 2 s bound is measured alone.
    let _heavy = crate::common::heavy();
    let s = start_server();
    let api = s.api.expect("api");

    // The API's auth rules hold for the page and its data.
    assert_eq!(http_request(api, "GET", "/", "", None).0, 401);
    assert_eq!(http_request(api, "GET", "/?token=wrong", "", None).0, 401);
    assert_eq!(http_request(api, "GET", "/status/map", "", None).0, 401);
    let (code, html) = http_request(api, "GET", &format!("/?token={TOKEN}"), "", None);
    assert_eq!(code, 200);
    assert!(html.contains("<svg") && !html.contains("<!--WORLD-->"));
    for outside in ["http://", "https://", "//cdn"] {
        let refs = html.matches(outside).count();
        // The only URL allowed is the SVG namespace.
        let namespace = html.matches("http://www.w3.org/2000/svg").count();
        assert_eq!(refs, if outside == "http://" { namespace } else { 0 });
    }

    let mut b = Browser::launch();
    b.call(
        "Page.navigate",
        json!({ "url": format!("http://{api}/?token={TOKEN}") }),
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) && country_dc(&mut b, "DE") != json!("fra") {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        country_dc(&mut b, "DE"),
        json!("fra"),
        "the page never coloured DE"
    );
    // Rendered: the map, every endpoint and datacenter up, the identity and the names.
    let paths = b.eval("document.querySelectorAll('#map svg path[id]').length");
    assert!(paths.as_u64().unwrap_or(0) >= 150, "map paths: {paths}");
    for (cc, dc) in [("FR", "fra"), ("US", "nyc"), ("AU", "syd")] {
        assert_eq!(country_dc(&mut b, cc), json!(dc), "{cc}");
    }
    assert_eq!(country_dc(&mut b, "BR"), Value::Null, "BR is not located");
    for ep in [
        "example.com/web/f1",
        "example.com/web/n1",
        "example.com/web/s1",
    ] {
        assert_eq!(endpoint_state(&mut b, ep), json!("up"), "{ep}");
    }
    assert_eq!(
        b.eval("document.querySelectorAll('#datacenters tbody tr').length"),
        json!(3)
    );
    let header = b.eval("document.querySelector('header').textContent");
    assert!(
        header.as_str().is_some_and(|h| h.contains("page-site-1")),
        "{header}"
    );
    let names =
        b.eval("[...document.querySelectorAll('#names tbody tr')].map(r => r.dataset.name)");
    assert_eq!(names, json!(["db.example.com.", "www.example.com."]));
    let fill_de =
        b.eval("getComputedStyle(document.querySelector('#map svg').getElementById('DE')).fill");
    let fill_br =
        b.eval("getComputedStyle(document.querySelector('#map svg').getElementById('BR')).fill");
    assert_ne!(
        fill_de, fill_br,
        "a located country has a colour of its own"
    );
    let updates_before = b.eval("Number(document.body.dataset.updates)");

    // Force fra's only endpoint down: the row says so and Europe goes to nyc.
    let forced = Instant::now();
    let (code, text) = http_request(
        api,
        "POST",
        "/overrides",
        r#"{"endpoint":"example.com/web/f1","state":"down"}"#,
        Some(TOKEN),
    );
    assert_eq!(code, 200, "{text}");
    let mut seen = None;
    while forced.elapsed() < Duration::from_secs(5) {
        if endpoint_state(&mut b, "example.com/web/f1") == json!("down")
            && country_dc(&mut b, "DE") == json!("nyc")
            && country_dc(&mut b, "FR") == json!("nyc")
        {
            seen = Some(forced.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = seen.expect("the page did not show the endpoint down and Europe on nyc");
    eprintln!("status page: forced down shown after {seen:?}");
    assert!(seen <= Duration::from_secs(2), "took {seen:?}");
    // Updated in place (no reload), and what did not change stayed.
    assert!(
        b.eval("Number(document.body.dataset.updates)").as_u64() > updates_before.as_u64(),
        "the page was not updated by polling"
    );
    assert_eq!(country_dc(&mut b, "AU"), json!("syd"));
    assert_eq!(country_dc(&mut b, "US"), json!("nyc"));
    let changes = b.eval("document.querySelector('#changes').textContent");
    let changes = changes.as_str().unwrap_or_default();
    assert!(
        changes.contains("example.com/web/f1") && changes.contains("override: down"),
        "changes: {changes}"
    );
    // The failover name follows too: db goes to its second choice everywhere.
    b.eval("[...document.querySelectorAll('#tabs button')].find(x => x.textContent === 'db.example.com.').click()");
    assert_eq!(country_dc(&mut b, "BR"), json!("nyc"));

    if let Some(path) = std::env::var_os("MERIDIAN_STATUS_SCREENSHOT") {
        b.eval("[...document.querySelectorAll('#tabs button')].find(x => x.textContent === 'www.example.com.').click()");
        b.screenshot(std::path::Path::new(&path));
    }
}
