//! The Debian package for real: `scripts/build-deb.sh` packages this build's binary,
//! `dpkg -i` installs it on this machine, the installed binary checks and serves the
//! installed configuration as the `meridian` system user (its state directory writable, the
//! example zones answered), and `dpkg --purge` removes it all again.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::common::{DaemonGuard, query, require_tool, stable_port, udp_raw};

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Purges the package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "meridian"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_package_installs_serves_and_purges() {
    for (tool, package) in [("dpkg-deb", "dpkg"), ("runuser", "util-linux")] {
        if !require_tool(tool, package) {
            return;
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, text) = run(Command::new("bash")
        .arg(root.join("scripts/build-deb.sh"))
        .env("MERIDIAN", env!("CARGO_BIN_EXE_meridian"))
        .env("OUT_DIR", out.path()));
    assert!(ok, "build-deb.sh failed:\n{text}");
    let deb = text.lines().last().unwrap_or_default().trim().to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).is_file(), "{text}");

    let _installed = Installed;
    let (ok, text) = run(Command::new("dpkg").args(["-i", &deb]));
    assert!(ok, "dpkg -i failed:\n{text}");
    let (ok, text) = run(Command::new("dpkg").args(["-s", "meridian"]));
    assert!(
        ok && text.contains("Status: install ok installed"),
        "{text}"
    );
    let (ok, text) = run(Command::new("getent").args(["passwd", "meridian"]));
    assert!(
        ok && text.contains("/var/lib/meridian"),
        "no meridian user: {text}"
    );
    let unit = std::fs::read_to_string("/lib/systemd/system/meridian.service").expect("unit");
    assert!(unit.contains("ExecStart=/usr/bin/meridian serve"));
    assert!(unit.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE"));

    let (ok, text) = run(Command::new("/usr/bin/meridian").args([
        "check",
        "--config",
        "/etc/meridian/meridian.toml",
    ]));
    assert!(ok, "the installed config does not check:\n{text}");

    // The installed binary on the installed config, as the package's user, on free ports
    // (port 53 may be taken on a test machine; the unit is what grants it).
    let (dns, api) = (stable_port(), stable_port());
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = log_dir.path().join("meridian.log");
    let _server = DaemonGuard::spawn(
        Command::new("runuser").args([
            "-u",
            "meridian",
            "--",
            "/usr/bin/meridian",
            "serve",
            "--config",
            "/etc/meridian/meridian.toml",
            "--listen",
            &format!("127.0.0.1:{dns}"),
            "--api-listen",
            &format!("127.0.0.1:{api}"),
        ]),
        Path::new("/"),
        &log,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], dns));
    let q = query("www.example.com.", RecordType::A, false)
        .to_vec()
        .expect("encode");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Some(r) = udp_raw(addr, &q) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the installed server does not answer:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let m = hickory_proto::op::Message::from_vec(&answer).expect("parse");
    assert!(!m.answers.is_empty(), "{m:?}");
    // The state directory is the user's: an override is saved there.
    let (code, body) = crate::common::http_post(
        SocketAddr::from(([127, 0, 0, 1], api)),
        "/overrides",
        r#"{"endpoint": "example.com/web/lon-1", "state": "drain"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !Path::new("/var/lib/meridian/state.toml").exists() {
        assert!(
            Instant::now() < deadline,
            "no state file written as the meridian user"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(_server);

    let (ok, text) = run(Command::new("dpkg").args(["--purge", "meridian"]));
    assert!(ok, "dpkg --purge failed:\n{text}");
    for gone in ["/usr/bin/meridian", "/etc/meridian", "/var/lib/meridian"] {
        assert!(!Path::new(gone).exists(), "{gone} is left after the purge");
    }
}
