//! DNSSEC signing of zones at load (part of #15): keys made by `meridian dnssec keygen`, by
//! BIND's `dnssec-keygen` (a KSK/ZSK split, a key not yet active) and by `ldns-keygen`
//! (Ed25519); the zone as a secondary gets it by AXFR, checked by three independent
//! verifiers (`dnssec-verify`, `ldns-verify-zone`, `kzonecheck`), and again past the
//! signatures' expiry, where they must fail. DS records against `dnssec-dsfromkey`.

use std::path::Path;
use std::process::Command;

use crate::common::{Server, require_tool, tool_path};

const ZONE: &str = "\
$ORIGIN signed.test.
$TTL 300
@        IN SOA ns1 hostmaster 7 3600 600 1209600 60
         IN NS  ns1
         IN MX  10 Mail.Signed.Test.
ns1      IN A   192.0.2.1
www      IN A   192.0.2.10
         IN A   192.0.2.11
         IN AAAA 2001:db8::10
alias    IN CNAME www
*.wild   IN TXT \"wildcard\"
*.cn     IN CNAME www
deep.a.b IN A   192.0.2.20
sub      IN NS  ns.sub
sub      IN DS  12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.sub   IN A   192.0.2.30
Mixed    IN TXT \"case\"
srv      IN SRV 0 5 443 WWW.signed.test.
";

const DYNAMIC: &str = r#"
[datacenters]
one = {}
two = {}
[pools.web]
endpoints = [
  { id = "w1", datacenter = "one", address = "198.51.100.1" },
  { id = "w2", datacenter = "two", address = "198.51.100.2" },
]
[names.dyn]
pool = "web"
policy = "failover"
order = ["two", "one"]
ttl = 20
[names.strict]
pool = "web"
policy = "failover"
order = ["one", "two"]
all_down = "nodata"
ttl = 20
"#;

/// Seconds past the default signature lifetime (14 days).
const PAST_EXPIRY: u64 = 15 * 86_400;

/// Runs a tool: (exit success, stdout and stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn meridian(dir: &Path, args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .arg("--config")
        .arg(dir.join("meridian.toml")))
}

/// A config directory for `zones` (origin without the dot, zone text, dynamic text).
fn setup(zones: &[(&str, &str, Option<&str>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("zones")).expect("zones");
    std::fs::create_dir_all(dir.path().join("keys")).expect("keys");
    let mut config = String::from("zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\n");
    for (origin, text, dynamic) in zones {
        std::fs::write(dir.path().join(format!("zones/{origin}.zone")), text).expect("zone");
        if let Some(d) = dynamic {
            std::fs::write(dir.path().join(format!("zones/{origin}.toml")), d).expect("toml");
        }
        config.push_str(&format!(
            "[transfer.\"{origin}.\"]\nallow = [\"127.0.0.0/8\"]\n"
        ));
    }
    let list: Vec<String> = zones.iter().map(|z| format!("\"{}\"", z.0)).collect();
    config.push_str(&format!(
        "[dnssec]\nkey_dir = \"keys\"\nzones = [{}]\n",
        list.join(", ")
    ));
    std::fs::write(dir.path().join("meridian.toml"), config).expect("config");
    dir
}

fn axfr(server: &Server, zone: &str, file: &Path) -> String {
    let (ok, out) = run(Command::new(tool_path("dig"))
        .args(["+nocmd", "+nostats", "+tcp", "-p"])
        .arg(server.addr.port().to_string())
        .arg(format!("@{}", server.addr.ip()))
        .args([zone, "AXFR"]));
    assert!(ok && out.contains("RRSIG"), "AXFR of {zone}:\n{out}");
    std::fs::write(file, &out).expect("write axfr");
    out
}

/// The three verifiers on a transferred zone: all pass now, and `ldns-verify-zone` fails
/// once the signatures have expired.
fn verify(zone: &str, file: &Path, csk_only: bool) {
    verify_with(zone, file, csk_only, true);
}

/// [`verify`]; `kzonecheck` only when `knot`: Knot 3.2's check rejects a zone that two
/// CSKs sign (it does so for `dnssec-signzone`'s output too), as in a CSK roll.
fn verify_with(zone: &str, file: &Path, csk_only: bool, knot: bool) {
    let mut cmd = Command::new(tool_path("dnssec-verify"));
    if csk_only {
        cmd.arg("-z");
    }
    let (ok, out) = run(cmd.args(["-o", zone]).arg(file));
    assert!(ok, "dnssec-verify {zone}:\n{out}");
    let (ok, out) = run(Command::new(tool_path("ldns-verify-zone")).arg(file));
    assert!(
        ok && out.contains("verified"),
        "ldns-verify-zone {zone}:\n{out}"
    );
    if knot {
        let (ok, out) = run(Command::new(tool_path("kzonecheck"))
            .args(["-o", zone, "-d", "on"])
            .arg(file));
        assert!(ok, "kzonecheck {zone}:\n{out}");
    }
    // Still valid just before the re-sign point (half of the 14 days)...
    let (ok, out) = run(Command::new(tool_path("ldns-verify-zone"))
        .arg("-t")
        .arg(format!("+{}", 6 * 86_400))
        .arg(file));
    assert!(ok, "ldns-verify-zone six days on:\n{out}");
    // ...and not past the expiry.
    let (ok, out) = run(Command::new(tool_path("ldns-verify-zone"))
        .arg("-t")
        .arg(format!("+{PAST_EXPIRY}"))
        .arg(file));
    assert!(!ok, "ldns-verify-zone accepted expired signatures:\n{out}");
}

fn tools() -> bool {
    require_tool("dig", "bind9-dnsutils")
        && require_tool("dnssec-verify", "bind9-utils")
        && require_tool("dnssec-keygen", "bind9-utils")
        && require_tool("dnssec-dsfromkey", "bind9-utils")
        && require_tool("dnssec-signzone", "bind9-utils")
        && require_tool("ldns-verify-zone", "ldnsutils")
        && require_tool("ldns-keygen", "ldnsutils")
        && require_tool("kzonecheck", "knot-dnssecutils")
}

/// A key for `zone` made by BIND's `dnssec-keygen` in `dir` (ECDSAP256SHA256, zone key),
/// with `args` before the zone name (`-f KSK`, timings): the files' stem, `K<zone>.+013+<tag>`.
pub fn bind_keygen(dir: &Path, zone: &str, args: &[&str]) -> String {
    let (ok, out) = run(Command::new(tool_path("dnssec-keygen"))
        .args(["-a", "ECDSAP256SHA256", "-n", "ZONE"])
        .args(args)
        .arg(zone)
        .current_dir(dir));
    assert!(ok, "dnssec-keygen {args:?} {zone}: {out}");
    out.trim().to_string()
}

#[test]
fn a_zone_signed_with_a_meridian_csk_passes_three_verifiers_and_its_ds_matches_bind() {
    if !tools() {
        return;
    }
    let dir = setup(&[("signed.test", ZONE, Some(DYNAMIC))]);
    let (ok, out) = meridian(dir.path(), &["dnssec", "keygen", "signed.test"]);
    assert!(ok, "{out}");
    let stem = out.split_whitespace().next().expect("stem").to_string();
    let private = format!("{stem}.private");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join(&private))
            .expect("private")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "{private}");

    // The DS for the registrar is what BIND computes from the same .key file.
    let (ok, ds) = meridian(dir.path(), &["dnssec", "ds", "signed.test"]);
    assert!(ok, "{ds}");
    let (ok, bind_ds) = run(Command::new(tool_path("dnssec-dsfromkey"))
        .arg("-2")
        .arg(dir.path().join(format!("{stem}.key"))));
    assert!(ok, "{bind_ds}");
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(words(&ds), words(&bind_ds));

    let (ok, status) = meridian(dir.path(), &["dnssec", "status"]);
    assert!(ok && status.contains("active"), "{status}");
    // CDS and CDNSKEY for the parent to read.
    let config = dir.path().join("meridian.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}cds = true\n")).expect("config");

    let server = Server::start_with_config(
        tempfile::tempdir().expect("unused"),
        dir.path().join("meridian.toml"),
    );
    let file = dir.path().join("axfr.txt");
    let out = axfr(&server, "signed.test", &file);
    // The dynamic name goes out as its default answer (the failover order's first), signed.
    assert!(
        out.contains("dyn.signed.test.\t20\tIN\tA\t198.51.100.2"),
        "{out}"
    );
    assert!(out.contains("dyn.signed.test.\t60\tIN\tNSEC"), "{out}");
    let ds_digest = bind_ds.split_whitespace().last().expect("digest");
    let cds = out
        .lines()
        .find(|l| l.contains("\tCDS\t"))
        .unwrap_or_default();
    assert!(
        cds.replace(' ', "").contains(ds_digest),
        "CDS is not the DS:\n{out}"
    );
    assert!(
        out.lines().any(|l| l.contains("\tCDNSKEY\t257 3 13 ")),
        "{out}"
    );
    assert!(out.contains("RRSIG\tCDS 13 "), "{out}");
    // Glue below the cut is neither signed nor in the chain; the DS at the cut is signed.
    assert!(
        !out.lines()
            .any(|l| l.starts_with("ns.sub.") && l.contains("NSEC"))
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("sub.signed.test.") && l.contains("RRSIG\tDS"))
    );
    verify("signed.test", &file, true);

    // explain shows the window and the records with their signatures, spelled out.
    let (ok, out) = meridian(
        dir.path(),
        &["explain", "www.signed.test", "A", "--client", "192.0.2.1"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("dnssec:   signed here: RRSIGs valid "),
        "{out}"
    );
    assert!(out.contains("IN RRSIG A 13 3 300 "), "{out}");
    let (_, out) = meridian(
        dir.path(),
        &["explain", "nope.signed.test", "A", "--client", "192.0.2.1"],
    );
    assert!(
        out.contains("IN NSEC ") && out.contains(" RRSIG NSEC"),
        "{out}"
    );
}

#[test]
fn bind_and_ldns_keys_sign_a_split_and_an_ed25519_zone() {
    if !tools() {
        return;
    }
    let dir = setup(&[
        (
            "split.test",
            &ZONE.replace("signed.test", "split.test"),
            None,
        ),
        ("ed.test", &ZONE.replace("signed.test", "ed.test"), None),
    ]);
    let keys = dir.path().join("keys");
    bind_keygen(&keys, "split.test", &["-f", "KSK"]);
    bind_keygen(&keys, "split.test", &[]);
    // Published now, signing only tomorrow: in the DNSKEY RRset, no signature yet.
    bind_keygen(&keys, "split.test", &["-P", "now", "-A", "now+1d"]);
    let (ok, out) = run(Command::new(tool_path("ldns-keygen"))
        .args(["-a", "ED25519", "-k", "ed.test"])
        .current_dir(&keys));
    assert!(ok, "ldns-keygen: {out}");
    // ldns writes the private key readable by others: refused, with the fix named.
    let ed_stem = out.trim().to_string();
    let ed_private = keys.join(format!("{ed_stem}.private"));
    std::fs::set_permissions(
        &ed_private,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    let (ok, out) = meridian(dir.path(), &["check"]);
    assert!(!ok && out.contains("chmod 600"), "{out}");
    std::fs::set_permissions(
        &ed_private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    for f in std::fs::read_dir(&keys).expect("keys").flatten() {
        if f.path().extension().is_some_and(|e| e == "private") {
            std::fs::set_permissions(
                f.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .expect("chmod");
        }
    }
    let (ok, out) = meridian(dir.path(), &["check"]);
    assert!(ok, "{out}");

    let server = Server::start_with_config(
        tempfile::tempdir().expect("unused"),
        dir.path().join("meridian.toml"),
    );
    let split = dir.path().join("split.txt");
    let out = axfr(&server, "split.test", &split);
    let dnskeys = out.lines().filter(|l| l.contains("\tDNSKEY\t")).count();
    assert_eq!(dnskeys, 3, "{out}");
    // KSK signs the DNSKEY RRset only, the active ZSK everything else, the pending one nothing.
    let signers = |covered: &str| -> std::collections::BTreeSet<String> {
        out.lines()
            .filter(|l| l.contains(&format!("\tRRSIG\t{covered} ")))
            .filter_map(|l| l.split_whitespace().nth(10).map(str::to_string))
            .collect()
    };
    assert_eq!(signers("DNSKEY").len(), 1, "{out}");
    assert_eq!(signers("SOA").len(), 1, "{out}");
    assert_ne!(signers("DNSKEY"), signers("SOA"));
    verify("split.test", &split, false);

    let ed = dir.path().join("ed.txt");
    let out = axfr(&server, "ed.test", &ed);
    assert!(out.contains("RRSIG\tSOA 15 "), "{out}");
    verify("ed.test", &ed, true);
}

/// delv's verdict on one question to the server, with `anchor` as the trust anchor file.
fn delv(server: &Server, anchor: &Path, zone: &str, name: &str, rtype: &str) -> String {
    let (_, out) = run(Command::new(tool_path("delv"))
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.addr.port().to_string(), "-a"])
        .arg(anchor)
        .arg(format!("+root={zone}"))
        .args([name, rtype]));
    out
}

/// `meridian dnssec keygen ZONE` in `dir`, and delv's trust anchor for the new key.
fn keygen_with_anchor(dir: &Path, zone: &str) -> std::path::PathBuf {
    let (ok, out) = meridian(dir, &["dnssec", "keygen", zone]);
    assert!(ok, "{out}");
    let stem = out.split_whitespace().next().expect("stem");
    anchor_file(dir, zone, &dir.join(format!("{stem}.key")))
}

/// A trust anchor file for delv from a `.key` file.
fn anchor_file(dir: &Path, zone: &str, key_file: &Path) -> std::path::PathBuf {
    let key = std::fs::read_to_string(key_file).expect("key file");
    let line = key
        .lines()
        .find(|l| l.contains("DNSKEY") && !l.starts_with(';'))
        .expect("DNSKEY line");
    let f: Vec<&str> = line.split_whitespace().collect();
    let at = f.iter().position(|w| *w == "DNSKEY").expect("DNSKEY");
    let anchor = format!(
        "trust-anchors {{ {zone}. static-key {} {} {} \"{}\"; }};\n",
        f[at + 1],
        f[at + 2],
        f[at + 3],
        f[at + 4..].concat()
    );
    let path = dir.join(format!(
        "anchor-{}.conf",
        key_file.display().to_string().len()
    ));
    std::fs::write(&path, anchor).expect("anchor");
    path
}

#[test]
fn delv_validates_every_kind_of_static_answer_and_rejects_a_wrong_anchor() {
    if !tools() || !require_tool("delv", "bind9-dnsutils") {
        return;
    }
    let dir = setup(&[("signed.test", ZONE, Some(DYNAMIC))]);
    let anchor = keygen_with_anchor(dir.path(), "signed.test");
    let server = Server::start_with_config(
        tempfile::tempdir().expect("unused"),
        dir.path().join("meridian.toml"),
    );
    let positive = "; fully validated";
    let negative = "; negative response, fully validated";
    let questions = [
        ("signed.test", "SOA", positive),
        ("signed.test", "DNSKEY", positive),
        ("signed.test", "MX", positive),
        ("www.signed.test", "A", positive),
        ("WwW.SiGnEd.TeSt", "AAAA", positive),
        ("alias.signed.test", "A", positive),
        ("srv.signed.test", "SRV", positive),
        ("anything.wild.signed.test", "TXT", positive),
        ("through.cn.signed.test", "A", positive),
        ("through.cn.signed.test", "MX", positive),
        ("deep.a.b.signed.test", "A", positive),
        ("mixed.signed.test", "TXT", positive),
        ("sub.signed.test", "DS", positive),
        ("nope.signed.test", "A", negative),
        ("NoPe.signed.test", "A", negative),
        ("www.signed.test", "MX", negative),
        ("anything.wild.signed.test", "A", negative),
        // Empty non-terminals: a.b and b exist only as ancestors of deep.a.b.
        ("a.b.signed.test", "A", negative),
        ("b.signed.test", "TXT", negative),
        ("x.deep.a.b.signed.test", "A", negative),
        ("ns1.signed.test", "DS", negative),
    ];
    // Asked without DO until the answer is kept (the answer cache, then the whole
    // response), then with DO: signatures, which the kept answers do not hold; then
    // without DO again: none. Static, nonexistent, wildcard and dynamic names.
    for (name, qtype) in [
        ("www.signed.test.", 1),
        ("nope.signed.test.", 1),
        ("anything.wild.signed.test.", 16),
        ("dyn.signed.test.", 1),
    ] {
        for _ in 0..4 {
            let plain = edns_query(&server, name, qtype, false, false);
            assert_eq!(rrsig_count(&plain), 0, "{name} without DO");
        }
        assert!(
            rrsig_count(&edns_query(&server, name, qtype, true, false)) > 0,
            "{name} with DO after answers without it"
        );
        assert_eq!(
            rrsig_count(&edns_query(&server, name, qtype, false, false)),
            0,
            "{name} without DO after an answer with it"
        );
    }
    // Twice: the second time from the answer cache, which keeps DO answers apart.
    for (name, rtype, verdict) in questions.iter().chain(questions.iter()) {
        let out = delv(&server, &anchor, "signed.test", name, rtype);
        assert!(
            out.contains(verdict),
            "{name} {rtype}: expected {verdict:?}:\n{out}"
        );
    }
    // Every DO response fits 1232 bytes over UDP, without TC.
    for (name, rtype, _) in questions.iter().chain(&[("dyn.signed.test", "A", "")]) {
        let (ok, out) = run(Command::new(tool_path("dig"))
            .arg(format!("@{}", server.addr.ip()))
            .args(["-p", &server.addr.port().to_string()])
            .args(["+dnssec", "+bufsize=1232", "+notcp", "+ignore", name, rtype]));
        let size: usize = out
            .split("MSG SIZE  rcvd: ")
            .nth(1)
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or(usize::MAX);
        let tc = out
            .lines()
            .any(|l| l.starts_with(";; flags:") && l.contains(" tc"));
        assert!(
            ok && size <= 1232 && !tc,
            "{name} {rtype}: {size} bytes:\n{out}"
        );
    }

    // A dynamic name: its answer is signed, before and after a failover, and a type it
    // does not serve is proven absent. Then every candidate down: a fail-open name still
    // answers (signed), an all_down = "nodata" one says NODATA, proven by its own NSEC
    // without the type.
    let expect = |name: &str, rtype: &str, verdict: &str, needle: &str| {
        let out = delv(&server, &anchor, "signed.test", name, rtype);
        assert!(
            out.contains(verdict) && out.contains(needle),
            "{name} {rtype}:\n{out}"
        );
    };
    expect("dyn.signed.test", "A", positive, "198.51.100.2");
    crate::common::set_override(
        &server,
        r#"{"datacenter":"signed.test/two","state":"down"}"#,
    );
    expect("dyn.signed.test", "A", positive, "198.51.100.1");
    expect("dyn.signed.test", "AAAA", negative, "");
    crate::common::set_override(
        &server,
        r#"{"datacenter":"signed.test/one","state":"down"}"#,
    );
    expect("dyn.signed.test", "A", positive, "198.51.100.2");
    expect("strict.signed.test", "A", negative, "");

    // Another key as the anchor: nothing validates.
    let other = tempfile::tempdir().expect("dir");
    let wrong_stem = bind_keygen(other.path(), "signed.test", &["-f", "KSK"]);
    let wrong = anchor_file(
        other.path(),
        "signed.test",
        &other.path().join(format!("{wrong_stem}.key")),
    );
    let out = delv(&server, &wrong, "signed.test", "www.signed.test", "A");
    assert!(
        !out.contains("validated"),
        "validated with a wrong anchor:\n{out}"
    );
    assert!(out.contains("resolution failed"), "{out}");
}

/// A zone signed by BIND's `dnssec-signzone` (not by meridian) is served with its
/// signatures and NSEC chain, and validates; `meridian check` warns when a pre-signed
/// zone's signatures have expired.
#[test]
fn a_zone_signed_by_dnssec_signzone_validates_and_check_warns_when_it_expires() {
    if !tools() || !require_tool("delv", "bind9-dnsutils") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("zones")).expect("zones");
    std::fs::create_dir_all(d.join("keys")).expect("keys");
    let text = ZONE.replace("signed.test", "pre.test");
    std::fs::write(d.join("plain.zone"), &text).expect("zone");
    let stem = bind_keygen(&d.join("keys"), "pre.test", &["-f", "KSK"]);
    let key = d.join("keys").join(format!("{stem}.key"));
    let sign = |extra: &[&str], to: &str| {
        let (ok, out) = run(Command::new(tool_path("dnssec-signzone"))
            .args(["-S", "-K", "keys", "-z", "-o", "pre.test", "-f", to])
            .args(extra)
            .arg("plain.zone")
            .current_dir(d));
        assert!(ok, "dnssec-signzone: {out}");
    };
    sign(&[], "zones/pre.test.zone");
    std::fs::write(
        d.join("meridian.toml"),
        "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\n",
    )
    .expect("config");
    let (ok, out) = meridian(d, &["check"]);
    assert!(
        ok && out.contains("signed") && !out.contains("expire"),
        "{out}"
    );
    let server = Server::start_with_config(
        tempfile::tempdir().expect("unused"),
        d.join("meridian.toml"),
    );
    let anchor = anchor_file(d, "pre.test", &key);
    for (name, rtype, verdict) in [
        ("www.pre.test", "A", "; fully validated"),
        ("alias.pre.test", "A", "; fully validated"),
        ("x.wild.pre.test", "TXT", "; fully validated"),
        ("nope.pre.test", "A", "; negative response, fully validated"),
        ("www.pre.test", "MX", "; negative response, fully validated"),
        ("b.pre.test", "A", "; negative response, fully validated"),
    ] {
        let out = delv(&server, &anchor, "pre.test", name, rtype);
        assert!(
            out.contains(verdict),
            "{name} {rtype}: expected {verdict:?}:\n{out}"
        );
    }
    drop(server);
    sign(
        &["-P", "-s", "20200101000000", "-e", "20200201000000"],
        "zones/pre.test.zone",
    );
    let (_, out) = meridian(d, &["check"]);
    assert!(
        out.contains("zone pre.test.: signatures have expired"),
        "{out}"
    );
}

/// A key event reached while running re-signs by itself: a second CSK published now and
/// active a few seconds later starts signing without a reload by hand, and the serial goes
/// up for secondaries.
#[test]
fn a_key_activating_later_starts_signing_when_its_time_comes() {
    if !tools() {
        return;
    }
    let dir = setup(&[("roll.test", &ZONE.replace("signed.test", "roll.test"), None)]);
    let keys = dir.path().join("keys");
    let tags: Vec<u16> = [
        &["-f", "KSK"][..],
        &["-f", "KSK", "-P", "now", "-A", "now+4"],
    ]
    .iter()
    .map(|args| {
        let stem = bind_keygen(&keys, "roll.test", args);
        stem.rsplit('+')
            .next()
            .and_then(|t| t.parse().ok())
            .expect("tag")
    })
    .collect();
    for f in std::fs::read_dir(&keys).expect("keys").flatten() {
        std::fs::set_permissions(
            f.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
    }
    let server = Server::start_with_config(
        tempfile::tempdir().expect("unused"),
        dir.path().join("meridian.toml"),
    );
    let signers = |out: &str| -> std::collections::BTreeSet<u16> {
        out.lines()
            .filter(|l| l.contains("\tRRSIG\tSOA "))
            .filter_map(|l| l.split_whitespace().nth(10)?.parse().ok())
            .collect()
    };
    let serial = |out: &str| -> u32 {
        out.lines()
            .find(|l| l.contains("\tSOA\t"))
            .and_then(|l| l.split_whitespace().nth(6)?.parse().ok())
            .expect("serial")
    };
    let file = dir.path().join("roll.txt");
    let first = axfr(&server, "roll.test", &file);
    assert_eq!(signers(&first), [tags[0]].into_iter().collect(), "{first}");
    assert_eq!(
        first.lines().filter(|l| l.contains("\tDNSKEY\t")).count(),
        2
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut now_signing = signers(&first);
    let mut last = first.clone();
    while std::time::Instant::now() < deadline && now_signing.len() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        last = axfr(&server, "roll.test", &file);
        now_signing = signers(&last);
    }
    assert_eq!(now_signing, tags.iter().copied().collect(), "{last}");
    assert!(serial(&last) > serial(&first), "the serial did not go up");
    verify_with("roll.test", &file, true, false);
}

/// A DNS message's rcode and the owners of its NSEC records (authority section), parsed
/// with hickory.
fn rcode_and_nsec_owners(bytes: &[u8]) -> (u16, Vec<String>) {
    let m = hickory_proto::op::Message::from_vec(bytes).expect("response parses");
    let owners = m
        .authorities
        .iter()
        .filter(|r| u16::from(r.record_type()) == 47)
        .map(|r| r.name.to_string())
        .collect();
    (u16::from(m.metadata.response_code), owners)
}

/// A query with EDNS for `name` `qtype`, raw over UDP: with DO when `dnssec`, and CO as
/// well when `co`.
fn edns_query(server: &Server, name: &str, qtype: u16, dnssec: bool, co: bool) -> Vec<u8> {
    let wire = crate::common::wire_name(name);
    let mut q = meridian::dns::wire::build_query(0x5151, &wire, qtype, true, None);
    // The OPT record's TTL ends with the DO and CO bits (root name, type, class, TTL).
    let flags = match (dnssec, co) {
        (false, _) => 0,
        (true, false) => 0x80,
        (true, true) => 0xC0,
    };
    q[12 + wire.len() + 4 + 7] |= flags;
    crate::common::udp_raw(server.addr, &q).expect("an answer")
}

/// How many RRSIG records a response holds, in any section.
fn rrsig_count(bytes: &[u8]) -> usize {
    let m = hickory_proto::op::Message::from_vec(bytes).expect("response parses");
    m.answers
        .iter()
        .chain(&m.authorities)
        .filter(|r| u16::from(r.record_type()) == 46)
        .count()
}

/// A DO query (with CO when `co`) for `name` `qtype`, raw over UDP.
fn do_query(server: &Server, name: &str, qtype: u16, co: bool) -> Vec<u8> {
    edns_query(server, name, qtype, true, co)
}

/// Compact denial (RFC 9824): a nonexistent name gets NOERROR and one NSEC of its own
/// (types RRSIG NSEC NXNAME), signed on the spot and validated by delv; NXDOMAIN when the
/// query says CO; FORMERR for a question of type NXNAME; past the signing budget the NSEC
/// chain answers instead.
#[test]
fn compact_denial_validates_follows_co_and_keeps_to_its_budget() {
    if !tools() || !require_tool("delv", "bind9-dnsutils") {
        return;
    }
    let dir = setup(&[("signed.test", ZONE, None)]);
    let config = dir.path().join("meridian.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}denial = \"compact\"\n")).expect("config");
    let anchor = keygen_with_anchor(dir.path(), "signed.test");
    let server = Server::start_with_config(tempfile::tempdir().expect("unused"), config.clone());

    let out = delv(&server, &anchor, "signed.test", "nope.signed.test", "A");
    assert!(
        out.contains("; negative response, fully validated"),
        "{out}"
    );
    let (ok, out) = run(Command::new(tool_path("dig"))
        .arg(format!("@{}", server.addr.ip()))
        .args([
            "-p",
            &server.addr.port().to_string(),
            "+dnssec",
            "other.signed.test",
            "A",
        ]));
    assert!(ok && out.contains("status: NOERROR"), "{out}");
    assert!(
        out.contains(
            "other.signed.test.\t60\tIN\tNSEC\t\\000.other.signed.test. RRSIG NSEC TYPE128"
        ),
        "{out}"
    );
    assert!(out.contains("RRSIG\tNSEC 13 3 60 "), "{out}");

    let (rcode, owners) = rcode_and_nsec_owners(&do_query(&server, "co.signed.test.", 1, true));
    assert_eq!(
        (rcode, owners),
        (3, vec!["co.signed.test.".to_string()]),
        "CO: NXDOMAIN"
    );
    let (rcode, _) = rcode_and_nsec_owners(&do_query(&server, "www.signed.test.", 128, false));
    assert_eq!(rcode, 1, "a question of type NXNAME is a FORMERR");

    // Budget: 2 signatures per second per thread; ten names at once are not all compact.
    std::fs::write(
        &config,
        format!("{text}denial = \"compact\"\ncompact_budget = 2\n"),
    )
    .expect("config");
    let (code, body) = crate::common::http_post(server.api.expect("api"), "/reload", "");
    assert_eq!(code, 200, "{body}");
    let (mut compact, mut chain) = (0, 0);
    for i in 0..10 {
        let name = format!("flood{i}.signed.test.");
        let (rcode, owners) = rcode_and_nsec_owners(&do_query(&server, &name, 1, false));
        if owners == [name.clone()] {
            assert_eq!(rcode, 0, "{name}: compact answers NOERROR");
            compact += 1;
        } else {
            assert_eq!(
                (rcode, owners.len()),
                (3, 2),
                "{name}: the chain proves NXDOMAIN"
            );
            chain += 1;
        }
    }
    assert!(
        compact >= 1 && chain >= 2,
        "compact {compact}, chain {chain}"
    );

    // Back to the default budget (the flood above spent this second's): the same name asked
    // without CO until its answer is kept, then with CO, which must still get NXDOMAIN, then
    // without CO again: NOERROR.
    std::fs::write(&config, format!("{text}denial = \"compact\"\n")).expect("config");
    let (code, body) = crate::common::http_post(server.api.expect("api"), "/reload", "");
    assert_eq!(code, 200, "{body}");
    let kept = "kept.signed.test.";
    for _ in 0..4 {
        let (rcode, owners) = rcode_and_nsec_owners(&do_query(&server, kept, 1, false));
        assert_eq!((rcode, owners), (0, vec![kept.to_string()]), "without CO");
    }
    let (rcode, owners) = rcode_and_nsec_owners(&do_query(&server, kept, 1, true));
    assert_eq!(
        (rcode, owners),
        (3, vec![kept.to_string()]),
        "CO after answers without it"
    );
    let (rcode, _) = rcode_and_nsec_owners(&do_query(&server, kept, 1, false));
    assert_eq!(rcode, 0, "without CO after an answer with it");
}
