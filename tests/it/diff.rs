//! `meridian diff` on changes whose effect is known: a CIDR override of 10.0.0.0/8 that
//! moves from fra to lon (exactly 1/256 of IPv4), the map key "EU/GB" that moves from fra
//! to lon (the demo database's GB networks, summed here from its CSV, and the IPv6 ones), a
//! failover order turned round, a dynamic name added; static records added, removed and
//! changed. Both from two directories and from a git revision.

use std::path::Path;
use std::process::Command;

use crate::common::{require_tool, tool_path};

const DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/demo-city.mmdb");
const CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/demo-city.csv");

fn zone(www2: &str, extra: &str) -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n\
         static A {www2}\ngone TXT \"bye\"\n{extra}"
    )
}

fn dynamic(ten: &str, gb: &str, db: &str, extra: &str) -> String {
    format!(
        r#"
[datacenters]
fra = {{}}
lon = {{}}
[pools.web]
endpoints = [
  {{ id = "f", datacenter = "fra", address = "192.0.2.10" }},
  {{ id = "l", datacenter = "lon", address = "192.0.2.20" }},
]
[geo_maps.world]
default = ["fra", "lon"]
nets = {{ "10.0.0.0/8" = {ten} }}
[geo_maps.world.map]
"EU/GB" = {gb}
[names.www]
pool = "web"
policy = "geo"
map = "world"
[names.db]
pool = "web"
policy = "failover"
order = {db}
{extra}"#
    )
}

fn write_config(dir: &Path, zone_text: &str, dynamic_text: &str) {
    std::fs::create_dir_all(dir.join("zones")).expect("zones");
    std::fs::write(
        dir.join("meridian.toml"),
        format!("zones_dir = \"zones\"\n[geoip]\ndatabases = [\"{DB}\"]\n"),
    )
    .expect("config");
    std::fs::write(dir.join("zones/example.com.zone"), zone_text).expect("zone");
    std::fs::write(dir.join("zones/example.com.toml"), dynamic_text).expect("dynamic");
}

fn old_config(dir: &Path) {
    write_config(
        dir,
        &zone("192.0.2.80", ""),
        &dynamic(
            r#"["fra", "lon"]"#,
            r#"["fra", "lon"]"#,
            r#"["fra", "lon"]"#,
            "",
        ),
    );
}

fn new_config(dir: &Path) {
    write_config(
        dir,
        &zone("192.0.2.81", "added AAAA 2001:db8::1\n").replace("gone TXT \"bye\"\n", ""),
        &dynamic(
            r#"["lon", "fra"]"#,
            r#"["lon", "fra"]"#,
            r#"["lon", "fra"]"#,
            "[names.api]\npool = \"web\"\npolicy = \"failover\"\norder = [\"fra\"]\n",
        ),
    );
}

/// IPv4 addresses of the demo database's GB networks.
fn gb_addresses() -> u64 {
    std::fs::read_to_string(CSV)
        .expect("csv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let (net, country) = (f.first()?, f.get(2)?);
            let prefix: u32 = net.split('/').nth(1)?.parse().ok()?;
            (*country == "GB" && !net.contains(':')).then(|| 1u64 << (32 - prefix))
        })
        .sum()
}

fn meridian_diff(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("diff")
        .args(args)
        .output()
        .expect("meridian diff");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check(text: &str) {
    let gb = gb_addresses();
    assert!(gb > 0);
    // www: 10/8 (unknown to the database) and GB move fra → lon.
    let www = text
        .lines()
        .skip_while(|l| !l.contains("www.example.com.:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no www section:\n{text}"));
    let share = (16_777_216 + gb) as f64 / 2f64.powi(32) * 100.0;
    assert!(
        www.contains(&format!("fra → lon: IPv4 {share:.4} %")),
        "{www}\n{text}"
    );
    assert!(www.contains(&format!("EU/GB ({gb})")), "{www}");
    assert!(www.contains("unknown (16777216)"), "{www}");
    // The GB IPv6 network, 2a00:23c0::/27, is 2^-27 of the space.
    assert!(
        www.contains("IPv6 7.5e-7 %"),
        "the GB IPv6 networks move too: {www}"
    );
    assert!(
        text.contains("db.example.com.: every client's first choice fra → lon"),
        "{text}"
    );
    assert!(text.contains("api.example.com.: added"), "{text}");
    assert!(text.contains("+ added.example.com. AAAA"), "{text}");
    assert!(text.contains("- gone.example.com. TXT"), "{text}");
    assert!(
        text.contains("~ static.example.com. A: 1 → 1 records"),
        "{text}"
    );
    assert!(
        !text.contains("ns1.example.com."),
        "unchanged data is not listed:\n{text}"
    );
}

#[test]
fn a_diff_of_two_checkouts_says_what_moves() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    old_config(a.path());
    new_config(b.path());
    let old = a.path().join("meridian.toml");
    let new = b.path().join("meridian.toml");
    let text = meridian_diff(&[old.to_str().expect("path"), new.to_str().expect("path")]);
    println!("{text}");
    check(&text);
    let md = meridian_diff(&[
        "--markdown",
        old.to_str().expect("path"),
        new.to_str().expect("path"),
    ]);
    assert!(md.starts_with("### Dynamic names\n- "), "{md}");
    // Against itself: nothing moves.
    let same = meridian_diff(&[new.to_str().expect("path"), new.to_str().expect("path")]);
    assert!(!same.contains('→') && same.contains("no change"), "{same}");
}

#[test]
fn a_diff_against_a_git_revision() {
    if !require_tool("git", "git") {
        return;
    }
    let repo = tempfile::tempdir().expect("dir");
    let git = |args: &[&str]| {
        let ok = Command::new(tool_path("git"))
            .arg("-C")
            .arg(repo.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git");
        assert!(
            ok.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    git(&["init", "-q"]);
    old_config(repo.path());
    git(&["add", "."]);
    git(&["commit", "-qm", "old"]);
    new_config(repo.path());
    let config = repo.path().join("meridian.toml");
    let text = meridian_diff(&["--rev", "HEAD", config.to_str().expect("path")]);
    check(&text);
}
