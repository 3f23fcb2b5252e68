//! `meridian check`: every error in broken zone files and configs is printed as
//! `error: file:line: reason` (or `error: file: reason` for whole-file problems), all of them
//! in one run, and the exit status says whether the configuration is usable.

use std::path::Path;
use std::process::Command;

use crate::common::check_config;

const CONFIG: &str = "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\n";

const GOOD: &str = "\
$ORIGIN example.com.
$TTL 300
@    IN SOA ns1 hostmaster ( 1 3600 600
                             1209600 60 )
     IN NS  ns1
ns1  IN A   192.0.2.1
www  IN A   192.0.2.80
$INCLUDE parts/extra.inc
";

/// What one `meridian check` run printed.
struct Checked {
    code: i32,
    stdout: String,
}

impl Checked {
    fn errors(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .collect()
    }

    /// Every expected `file:line: reason` (reason as a prefix) is printed, and nothing else.
    fn assert_errors(&self, expected: &[&str]) {
        assert_ne!(self.code, 0, "a broken config must fail:\n{}", self.stdout);
        let errors = self.errors();
        for want in expected {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "missing error {want:?} in:\n{}",
                self.stdout
            );
        }
        assert_eq!(
            errors.len(),
            expected.len(),
            "unexpected errors:\n{}",
            self.stdout
        );
        assert!(
            self.stdout
                .contains(&format!("\n{} error(s)\n", expected.len())),
            "error count line:\n{}",
            self.stdout
        );
    }
}

/// Writes `files` (path relative to a temp dir, content) and runs `meridian check` there on
/// `meridian.toml`, so that reported paths are relative and easy to compare.
fn check(files: &[(&str, &str)]) -> Checked {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    run_check(dir.path())
}

fn run_check(dir: &Path) -> Checked {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["check", "--config", "meridian.toml"])
        .current_dir(dir)
        .env("MERIDIAN_LOG", "warn")
        .output()
        .expect("run meridian check");
    Checked {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

#[test]
fn valid_config_exits_zero() {
    let c = check(&[
        ("meridian.toml", CONFIG),
        ("zones/example.com.zone", GOOD),
        (
            "zones/parts/extra.inc",
            "mail A 192.0.2.25\n     AAAA 2001:db8::25\n",
        ),
    ]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    assert!(c.errors().is_empty(), "{}", c.stdout);
    assert!(
        c.stdout.contains("zone example.com.: serial 1"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.ends_with("ok\n"), "{}", c.stdout);
}

#[test]
fn every_error_in_a_zone_file_is_reported_with_its_line() {
    let zone = "\
$ORIGIN example.com.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 600 1209600 60
     IN NS  ns1
ns1  IN A   192.0.2.1
bad  IN A   192.0.2.256
unk  IN FROB 1 2 3
www  IN CNAME ns1
www  IN A   192.0.2.80
out.example.org. IN A 192.0.2.4
mx   IN MX  mail
txt  IN TXT \"fine\"
ttl  IN 99999999999 A 192.0.2.9
$FROB x
$INCLUDE missing.inc
";
    let c = check(&[("meridian.toml", CONFIG), ("zones/example.com.zone", zone)]);
    c.assert_errors(&[
        "zones/example.com.zone:6: invalid A data",
        "zones/example.com.zone:7: unknown record type \"FROB\"",
        "zones/example.com.zone:9: CNAME and other data at the same name",
        "zones/example.com.zone:10: owner out.example.org. is outside the zone example.com.",
        "zones/example.com.zone:11: invalid MX data",
        "zones/example.com.zone:13: invalid TTL",
        "zones/example.com.zone:14: unsupported directive $FROB",
        "zones/example.com.zone:15: $INCLUDE missing.inc: cannot read zones/missing.inc",
    ]);
}

#[test]
fn missing_ttl_missing_soa_and_unclosed_parenthesis() {
    // No TTL on the record and no $TTL before it.
    let no_ttl = "\
@    IN NS  ns1.example.com.
$TTL 60
@    IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 1209600 60
";
    let no_soa = "$TTL 60\n@ IN NS ns1.nosoa.com.\nns1 IN A 192.0.2.1\n";
    // The parenthesis opened on line 4 swallows the rest of the file.
    let paren = "\
$TTL 60
@    IN SOA ns1 hostmaster 1 3600 600 1209600 60
     IN NS  ns1
www  IN TXT ( \"never\"
             \"closed\"
ns1  IN A   192.0.2.1
";
    let c = check(&[
        ("meridian.toml", CONFIG),
        ("zones/nottl.com.zone", no_ttl),
        ("zones/nosoa.com.zone", no_soa),
        ("zones/paren.com.zone", paren),
        ("zones/unbalanced.com.zone", "$TTL 60\nwww A 192.0.2.1 )\n"),
    ]);
    c.assert_errors(&[
        "zones/nottl.com.zone:1: record has no TTL and no $TTL came before",
        // A zone-wide problem has no line.
        "zones/nosoa.com.zone: the zone has no SOA record at its apex",
        "zones/paren.com.zone:4: '(' is never closed",
        "zones/unbalanced.com.zone:2: unbalanced ')'",
    ]);
}

#[test]
fn include_errors_name_the_included_file_and_the_directive_line() {
    let zone = "\
$TTL 60
@    IN SOA ns1 hostmaster 1 3600 600 1209600 60
     IN NS  ns1
ns1  IN A   192.0.2.1
$INCLUDE inc/a.inc
$INCLUDE inc/bad.inc sub.example.com.
$INCLUDE
";
    let c = check(&[
        ("meridian.toml", CONFIG),
        ("zones/example.com.zone", zone),
        // a.inc includes b.inc, which includes a.inc again: a cycle.
        ("zones/inc/a.inc", "a A 192.0.2.10\n$INCLUDE b.inc\n"),
        ("zones/inc/b.inc", "b A 192.0.2.11\n\n$INCLUDE a.inc\n"),
        // Errors inside an included file are reported at its own lines.
        (
            "zones/inc/bad.inc",
            "ok A 192.0.2.12\nbad AAAA 192.0.2.13\n",
        ),
    ]);
    c.assert_errors(&[
        "zones/inc/b.inc:3: $INCLUDE a.inc: include cycle",
        "zones/inc/bad.inc:2: invalid AAAA data",
        "zones/example.com.zone:7: $INCLUDE takes a file name and an optional origin",
    ]);
}

#[test]
fn includes_of_devices_directories_and_the_same_file_by_another_path_are_refused() {
    let zone = "\
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 600 86400 60
     IN NS  ns1
ns1  IN A   192.0.2.1
$INCLUDE /dev/zero
$INCLUDE inc
$INCLUDE inc/self.inc
";
    let c = check(&[
        ("meridian.toml", CONFIG),
        ("zones/example.com.zone", zone),
        // Includes itself as ./self.inc: the same file, a cycle.
        (
            "zones/inc/self.inc",
            "s A 192.0.2.20
$INCLUDE ./self.inc
",
        ),
    ]);
    c.assert_errors(&[
        "zones/example.com.zone:5: $INCLUDE /dev/zero: cannot read /dev/zero: not a regular file",
        "zones/example.com.zone:6: $INCLUDE inc: cannot read zones/inc: not a regular file",
        "zones/inc/self.inc:2: $INCLUDE ./self.inc: include cycle",
    ]);
}

#[test]
fn several_zone_files_and_listed_zones_are_all_checked() {
    let config = format!(
        "{CONFIG}\n[[zone]]\norigin = \"listed.org.\"\nfile = \"other/listed.org.zone\"\n\n\
         [[zone]]\norigin = \"gone.org.\"\nfile = \"other/gone.zone\"\n"
    );
    let listed =
        "$TTL 60\n@ SOA ns1 hm 1 2 3 4 5\n  NS ns1\nns1 A 192.0.2.1\nx CNAME y\nx TXT \"z\"\n";
    let c = check(&[
        ("meridian.toml", &config),
        ("zones/example.com.zone", GOOD),
        ("zones/parts/extra.inc", "mail A 999.0.0.1\n"),
        ("other/listed.org.zone", listed),
    ]);
    c.assert_errors(&[
        "zones/parts/extra.inc:1: invalid A data",
        "other/listed.org.zone:6: CNAME and other data at the same name",
        "other/gone.zone: cannot read",
    ]);
}

#[test]
fn toml_errors_point_at_their_line() {
    let cases = [
        (
            "zones_dir = \"zones\"\n[server]\nlisten = [127.0.0.1]\n",
            "meridian.toml:3: invalid array",
        ),
        // The unknown key starts its line: it is on that line, not the one before.
        (
            "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\nbogus = 1\n",
            "meridian.toml:4: unknown field `bogus`",
        ),
        (
            "zones_dir = \"zones\"\n\n[server]\nmax_udp_payload = \"big\"\n",
            "meridian.toml:4: invalid type: string \"big\", expected u16",
        ),
        (
            "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\nmax_udp_payload = 100\n",
            "meridian.toml: server.max_udp_payload must be at least 512",
        ),
    ];
    for (config, want) in cases {
        let c = check(&[
            ("meridian.toml", config),
            ("zones/example.com.zone", GOOD),
            ("zones/parts/extra.inc", "mail A 192.0.2.25\n"),
        ]);
        assert_ne!(c.code, 0, "{config}");
        let errors = c.errors();
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "missing {want:?} for config:\n{config}\noutput:\n{}",
            c.stdout
        );
        // One line per error, even when the TOML parser's message has several.
        assert!(
            c.stdout
                .lines()
                .all(|l| l.starts_with("error: ") || l.ends_with("error(s)") || l.is_empty()),
            "{}",
            c.stdout
        );
    }
}

#[test]
fn an_api_open_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("meridian.toml");
    std::fs::write(&config, "[api]\nlisten = \"0.0.0.0:8053\"\n").expect("config");
    let (ok, text) = check_config(&config);
    assert!(!ok, "{text}");
    assert!(
        text.contains("not a loopback address: set api.token"),
        "{text}"
    );
    std::fs::write(
        &config,
        "[api]\nlisten = \"0.0.0.0:8053\"\ntoken = \"s3cret\"\n",
    )
    .expect("config");
    let (ok, text) = check_config(&config);
    assert!(ok, "{text}");
}

#[test]
fn a_geo_key_that_can_never_match_is_a_warning_with_its_line() {
    let db = concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/demo-city.mmdb");
    let config = format!("{CONFIG}[geoip]\ndatabases = [\"{db}\"]\n");
    let dynamic = "\
[datacenters]
dfw = {}
nyc = {}
[pools.web]
endpoints = [
  { id = \"dfw-1\", datacenter = \"dfw\", address = \"192.0.2.1\" },
  { id = \"nyc-1\", datacenter = \"nyc\", address = \"192.0.2.2\" },
]
[geo_maps.us]
default = [\"nyc\", \"dfw\"]
[geo_maps.us.map]
\"NA/US/TX\" = [\"dfw\", \"nyc\"]
\"NA/US/Dallas\" = [\"dfw\", \"nyc\"]
[names.geo]
pool = \"web\"
policy = \"geo\"
map = \"us\"
";
    let zone = "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 60\n  IN NS ns1\nns1 IN A 192.0.2.53\n";
    let c = check(&[
        ("meridian.toml", &config),
        ("zones/example.com.zone", zone),
        ("zones/example.com.toml", dynamic),
    ]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    let warnings: Vec<&str> = c
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", c.stdout);
    assert!(
        warnings[0].contains("zones/example.com.toml:13: geo_maps.us: map key \"NA/US/Dallas\""),
        "{}",
        c.stdout
    );
    assert!(
        warnings[0].contains("not a subdivision code"),
        "{}",
        c.stdout
    );
}

#[test]
fn a_bad_query_log_setting_is_reported() {
    let c = check(&[
        (
            "meridian.toml",
            &format!("{CONFIG}[query_log]\npath = \"q.log\"\nsample = 0\n"),
        ),
        ("zones/example.com.zone", GOOD),
        ("zones/parts/extra.inc", "mail A 192.0.2.25\n"),
    ]);
    assert_ne!(c.code, 0, "{}", c.stdout);
    assert!(
        c.stdout.contains("query_log.sample must be at least 1"),
        "{}",
        c.stdout
    );
}
