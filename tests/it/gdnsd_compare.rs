//! meridian against gdnsd 3.x on the same synthetic GeoIP database and the same geo map.
//!
//! The test writes a GeoLite2-City-shaped database (a few thousand IPv4 and IPv6 networks,
//! seeded, with gaps, nesting and runs of neighbours in one country), configures gdnsd's geoip
//! plugin and meridian's `geo` policy with the same continent → country → subdivision map,
//! starts both on 127.0.0.1, and asks both for `www` with EDNS Client Subnet for a few
//! thousand client subnets. Each datacenter answers one address, so the answer names the
//! datacenter. meridian must pick gdnsd's datacenter every time, and its ECS scope must never
//! be narrower than gdnsd's; where it is wider, addresses elsewhere in that scope must get the
//! same datacenter from both servers.
//!
//! Needs the Debian package `gdnsd` (skipped loudly without it, fails under CI=true).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use meridian::dns::class::IN;
use meridian::dns::edns_option::ECS;
use meridian::dns::rtype::{A, OPT};
use meridian::geo::writer::{CityRow, city_mmdb};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{DaemonGuard, Server, require_tool, stable_port, tool_path, wire_name};

const ZONE: &str = "cmp.test";
const SEED: u64 = 0x6d65_7269_6469_616e;

/// Datacenters and the one address each answers with.
const DCS: [(&str, [u8; 4]); 6] = [
    ("fra", [192, 0, 2, 1]),
    ("lon", [192, 0, 2, 2]),
    ("nyc", [192, 0, 2, 3]),
    ("sjc", [192, 0, 2, 4]),
    ("sin", [192, 0, 2, 5]),
    ("syd", [192, 0, 2, 6]),
];

/// Order for locations no key matches.
const DEFAULT: &[&str] = &["fra", "nyc", "sin"];

/// The geo map, in meridian's key syntax. Continents without a key (AF, AN, SA) and countries
/// below keyed subdivisions only (SA/BR/SP) test that defaults are inherited from above.
const MAP: &[(&str, &[&str])] = &[
    ("EU", &["fra", "lon"]),
    ("EU/GB", &["lon", "fra"]),
    ("EU/GB/SCT", &["nyc", "lon"]),
    ("EU/GB/ENG/Town 7", &["syd"]),
    ("EU/DE/BY", &["lon"]),
    ("EU/FR", &["fra"]),
    ("NA", &["nyc", "sjc"]),
    ("NA/US/CA", &["sjc", "nyc"]),
    ("NA/US/WA", &["sjc"]),
    ("NA/US/CA/Town 3", &["sin", "sjc"]),
    ("NA/US/TX", &["nyc", "sjc"]),
    // Country CA, not the subdivision US-CA.
    ("NA/CA", &["nyc", "fra"]),
    ("NA/MX", &["sjc"]),
    ("AS", &["sin", "syd"]),
    ("AS/JP", &["syd", "sin"]),
    ("AS/JP/13", &["sjc"]),
    ("OC", &["syd", "sin"]),
    ("OC/NZ/OTA", &["sjc"]),
    ("SA/BR/SP", &["nyc"]),
    ("SA/AR/C", &["fra"]),
    ("AF/ZA", &["lon"]),
];

/// (continent, country, subdivisions) the database draws from.
const COUNTRIES: &[(&str, &str, &[&str])] = &[
    ("EU", "GB", &["ENG", "SCT", "WLS", "NIR"]),
    ("EU", "DE", &["BY", "BE", "HH", "NW"]),
    ("EU", "FR", &["IDF", "ARA", "PAC"]),
    ("EU", "NL", &["NH", "ZH"]),
    ("EU", "IE", &[]),
    ("NA", "US", &["CA", "WA", "NY", "TX", "FL"]),
    ("NA", "CA", &["ON", "QC", "BC"]),
    ("NA", "MX", &["CMX", "JAL"]),
    ("AS", "JP", &["13", "27"]),
    ("AS", "SG", &[]),
    ("AS", "IN", &["MH", "KA"]),
    ("AS", "CN", &["BJ", "GD"]),
    ("OC", "AU", &["NSW", "VIC"]),
    ("OC", "NZ", &["AUK", "OTA"]),
    ("SA", "BR", &["SP", "RJ"]),
    ("SA", "AR", &["B", "C"]),
    ("AF", "ZA", &["GP", "WC"]),
    ("AF", "NG", &["LA"]),
    ("AN", "AQ", &[]),
];

// ---------------------------------------------------------------------------------------
// The synthetic database

/// A record for `net` in country `c`: mostly continent + country (+ subdivision, city), with
/// a few anomalies MaxMind's files have too (no data, continent only, country only). The
/// ASN differs per row, so neighbours are distinct records and merging is the table's job.
fn location_row(rng: &mut StdRng, net: IpNet, c: usize) -> CityRow {
    let (continent, country, subs) = COUNTRIES[c];
    let row = CityRow::new(net);
    let roll: f64 = rng.random();
    if roll < 0.02 {
        return row;
    }
    if roll < 0.04 {
        return row.continent(continent);
    }
    if roll < 0.05 {
        return row.country(country);
    }
    let mut row = row.continent(continent).country(country);
    if !subs.is_empty() && rng.random_bool(0.8) {
        row = row.subdivision(subs[rng.random_range(0..subs.len())]);
    }
    if rng.random_bool(0.7) {
        let town = rng.random_range(0..8);
        row = row.city(&format!("Town {town}")).coords(
            rng.random_range(-60.0..70.0),
            rng.random_range(-180.0..180.0),
        );
    }
    row.asn(rng.random_range(1_000..400_000))
}

fn random_country(rng: &mut StdRng) -> usize {
    rng.random_range(0..COUNTRIES.len())
}

/// IPv4: 16 /16s walked in aligned /19–/26 steps with ~12% gaps, the country kept from one
/// network to the next 75% of the time; plus 4 country-wide /12s with more specific /24s of
/// other places inside. IPv6: 16 /32s, each starting with a run of /36–/48 networks.
fn database_rows(rng: &mut StdRng) -> Vec<CityRow> {
    let mut rows = Vec::new();
    let mut blocks = BTreeSet::new();
    while blocks.len() < 16 {
        let first: u32 = rng.random_range(1..=150);
        if first == 10 || first == 127 {
            continue;
        }
        blocks.insert((first << 24) | (rng.random_range(0..=255u32) << 16));
    }
    for base in blocks {
        let end = base + 0x1_0000;
        let mut cur = base;
        let mut country = random_country(rng);
        while cur < end {
            let k = rng.random_range(6..=cur.trailing_zeros().min(13));
            if !rng.random_bool(0.12) {
                if !rng.random_bool(0.75) {
                    country = random_country(rng);
                }
                let net = Ipv4Net::new(Ipv4Addr::from(cur), (32 - k) as u8).unwrap();
                rows.push(location_row(rng, IpNet::V4(net), country));
            }
            cur += 1 << k;
        }
    }
    for first in [160u32, 175, 190, 205] {
        let base = (first << 24) | (rng.random_range(0..16u32) << 20);
        let (continent, country, _) = COUNTRIES[random_country(rng)];
        let wide = Ipv4Net::new(Ipv4Addr::from(base), 12).unwrap();
        rows.push(
            CityRow::new(IpNet::V4(wide))
                .continent(continent)
                .country(country),
        );
        for _ in 0..15 {
            let inner = base | (rng.random_range(0..1u32 << 12) << 8);
            let net = Ipv4Net::new(Ipv4Addr::from(inner), 24).unwrap();
            let c = random_country(rng);
            rows.push(location_row(rng, IpNet::V4(net), c));
        }
    }
    let mut v6_blocks = BTreeSet::new();
    while v6_blocks.len() < 16 {
        v6_blocks.insert(rng.random_range(0x2400_0000u32..0x2c00_0000));
    }
    for top in v6_blocks {
        let mut cur = u128::from(top) << 96;
        let mut country = random_country(rng);
        for _ in 0..rng.random_range(20..50) {
            let k = rng.random_range(80..=cur.trailing_zeros().min(92));
            if !rng.random_bool(0.12) {
                if !rng.random_bool(0.75) {
                    country = random_country(rng);
                }
                let net = Ipv6Net::new(Ipv6Addr::from(cur), (128 - k) as u8).unwrap();
                rows.push(location_row(rng, IpNet::V6(net), country));
            }
            cur += 1 << k;
        }
    }
    rows
}

// ---------------------------------------------------------------------------------------
// Configuration of both servers

/// The map as gdnsd's nested hash: `EU => { default => [...], GB => [...] }`.
#[derive(Default)]
struct MapNode {
    list: Option<&'static [&'static str]>,
    children: BTreeMap<String, MapNode>,
}

impl MapNode {
    fn render(&self, out: &mut String) {
        let list = |l: &[&str]| format!("[{}]", l.join(", "));
        if self.children.is_empty() {
            out.push_str(&list(self.list.unwrap_or(&[])));
            return;
        }
        out.push_str("{ ");
        if let Some(l) = self.list {
            write!(out, "default => {}, ", list(l)).unwrap();
        }
        for (key, child) in &self.children {
            write!(out, "\"{key}\" => ").unwrap();
            child.render(out);
            out.push_str(", ");
        }
        out.push('}');
    }
}

fn gdnsd_map() -> String {
    let mut root = MapNode::default();
    for (key, list) in MAP {
        let mut node = &mut root;
        for part in key.split('/') {
            node = node.children.entry(part.to_string()).or_default();
        }
        node.list = Some(list);
    }
    root.list = Some(DEFAULT);
    let mut out = String::new();
    root.render(&mut out);
    out
}

fn gdnsd_config(dir: &Path, port: u16, db: &Path) -> String {
    let names: Vec<&str> = DCS.iter().map(|d| d.0).collect();
    let dcmap: Vec<String> = DCS
        .iter()
        .map(|(n, a)| format!("{n} => {}", Ipv4Addr::from(*a)))
        .collect();
    format!(
        r#"options => {{
  listen => [ "127.0.0.1:{port}" ]
  run_dir => "{run}"
  state_dir => "{state}"
  udp_threads => 1
  tcp_threads => 1
  edns_client_subnet => true
}}
plugins => {{
  geoip => {{
    maps => {{
      cmp => {{
        geoip2_db => "{db}"
        datacenters => [{names}]
        map => {map}
      }}
    }}
    resources => {{
      www => {{
        map => cmp
        dcmap => {{ {dcmap} }}
      }}
    }}
  }}
}}
"#,
        run = dir.join("run").display(),
        state = dir.join("state").display(),
        db = db.display(),
        names = names.join(", "),
        map = gdnsd_map(),
        dcmap = dcmap.join(", "),
    )
}

fn zone_file(dynamic: &str) -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n\
         @ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n\
         @ IN NS ns1\n@ IN NS ns2\nns1 IN A 127.0.0.1\nns2 IN A 127.0.0.2\n{dynamic}"
    )
}

fn meridian_dynamic() -> String {
    let mut t = String::from("[datacenters]\n");
    for (name, _) in DCS {
        writeln!(t, "{name} = {{}}").unwrap();
    }
    t.push_str("\n[pools.web]\nendpoints = [\n");
    for (name, addr) in DCS {
        writeln!(
            t,
            "  {{ id = \"{name}-1\", datacenter = \"{name}\", address = \"{}\" }},",
            Ipv4Addr::from(addr)
        )
        .unwrap();
    }
    t.push_str("]\n\n[geo_maps.cmp]\n");
    let quoted = |l: &[&str]| {
        let v: Vec<String> = l.iter().map(|d| format!("\"{d}\"")).collect();
        format!("[{}]", v.join(", "))
    };
    writeln!(t, "default = {}\n\n[geo_maps.cmp.map]", quoted(DEFAULT)).unwrap();
    for (key, list) in MAP {
        writeln!(t, "\"{key}\" = {}", quoted(list)).unwrap();
    }
    t.push_str("\n[names.www]\npool = \"web\"\npolicy = \"geo\"\nmap = \"cmp\"\nttl = 30\n");
    t
}

// ---------------------------------------------------------------------------------------
// gdnsd

/// A running gdnsd; stopped when dropped.
struct Gdnsd {
    child: DaemonGuard,
    addr: SocketAddr,
}

/// Starts gdnsd in the foreground with its config in `dir` and waits until it answers.
fn start_gdnsd(dir: &Path, db: &Path) -> Gdnsd {
    let zone = zone_file("www 30 DYNA geoip!www\n");
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(dir.join("zones").join(ZONE), zone).unwrap();
    let mut last_log = String::new();
    // The port is free when picked but could be taken before gdnsd binds it: retry.
    for _attempt in 0..3 {
        let port = stable_port();
        std::fs::write(dir.join("config"), gdnsd_config(dir, port, db)).unwrap();
        let log_path = dir.join("gdnsd.log");
        let child = DaemonGuard::spawn(
            Command::new(tool_path("gdnsd"))
                .arg("-c")
                .arg(dir)
                .arg("start"),
            dir,
            &log_path,
        );
        let mut g = Gdnsd {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let sock = client_socket(Duration::from_millis(200));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !matches!(g.child.try_wait(), Ok(None)) {
                break;
            }
            if ask_once(&sock, g.addr, None).is_some() {
                return g;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    }
    panic!("gdnsd did not start; its log:\n{last_log}");
}

// ---------------------------------------------------------------------------------------
// Queries

/// What a server said for one client subnet.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Answer {
    /// Index into DCS; None for an answer without a known address.
    dc: Option<usize>,
    /// ECS scope prefix; None when the response had no ECS option.
    scope: Option<u8>,
}

fn client_socket(timeout: Duration) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(timeout)).expect("timeout");
    sock
}

/// `www.<zone>` A, with EDNS and, when given, an ECS option for (address, source prefix).
fn build_query(id: u16, ecs: Option<(IpAddr, u8)>) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(&wire_name(&format!("www.{ZONE}")));
    q.extend_from_slice(&A.to_be_bytes());
    q.extend_from_slice(&IN.to_be_bytes());
    // OPT: root owner, payload 1232, no extended flags.
    q.push(0);
    q.extend_from_slice(&OPT.to_be_bytes());
    q.extend_from_slice(&1232u16.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0]);
    let mut rdata = Vec::new();
    if let Some((addr, prefix)) = ecs {
        let (family, bytes): (u16, Vec<u8>) = match addr {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (2, a.octets().to_vec()),
        };
        let n = usize::from(prefix).div_ceil(8);
        let mut addr_bytes = bytes[..n].to_vec();
        if prefix % 8 != 0 {
            addr_bytes[n - 1] &= 0xffu8 << (8 - prefix % 8);
        }
        rdata.extend_from_slice(&ECS.to_be_bytes());
        rdata.extend_from_slice(&((4 + n) as u16).to_be_bytes());
        rdata.extend_from_slice(&family.to_be_bytes());
        rdata.extend_from_slice(&[prefix, 0]);
        rdata.extend_from_slice(&addr_bytes);
    }
    q.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    q.extend_from_slice(&rdata);
    q
}

fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *m.get(i)?;
        match len {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => return Some(i + 2),
            l => i += 1 + usize::from(l),
        }
    }
}

/// The first A record's datacenter and the ECS scope of a response to `id`.
fn parse_response(m: &[u8], id: u16) -> Option<Answer> {
    let u16_at = |i: usize| Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]));
    if m.len() < 12 || u16_at(0)? != id || m[2] & 0x80 == 0 {
        return None;
    }
    let rcode = m[3] & 0x0f;
    assert_eq!(rcode, 0, "rcode {rcode} in response");
    let (qd, an, ns, ar) = (u16_at(4)?, u16_at(6)?, u16_at(8)?, u16_at(10)?);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(m, i)? + 4;
    }
    let mut answer = Answer {
        dc: None,
        scope: None,
    };
    for section in 0..3 {
        let count = [an, ns, ar][section];
        for _ in 0..count {
            i = skip_name(m, i)?;
            let rtype = u16_at(i)?;
            let rdlen = usize::from(u16_at(i + 8)?);
            let rdata = m.get(i + 10..i + 10 + rdlen)?;
            i += 10 + rdlen;
            if section == 0 && rtype == A && rdlen == 4 && answer.dc.is_none() {
                answer.dc = DCS.iter().position(|d| d.1 == rdata[..4]);
            }
            if section == 2 && rtype == OPT {
                let mut j = 0;
                while j + 4 <= rdata.len() {
                    let code = u16::from_be_bytes([rdata[j], rdata[j + 1]]);
                    let len = usize::from(u16::from_be_bytes([rdata[j + 2], rdata[j + 3]]));
                    if code == ECS && len >= 4 {
                        answer.scope = rdata.get(j + 7).copied();
                    }
                    j += 4 + len;
                }
            }
        }
    }
    Some(answer)
}

/// One try: send and wait for the matching response (None on timeout).
fn ask_once(sock: &UdpSocket, server: SocketAddr, ecs: Option<(IpAddr, u8)>) -> Option<Answer> {
    let id: u16 = rand::random();
    sock.send_to(&build_query(id, ecs), server).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, from) = sock.recv_from(&mut buf).ok()?;
        if from == server
            && let Some(a) = parse_response(&buf[..n], id)
        {
            return Some(a);
        }
    }
}

fn ask(sock: &UdpSocket, server: SocketAddr, addr: IpAddr, prefix: u8) -> Answer {
    for _ in 0..4 {
        if let Some(a) = ask_once(sock, server, Some((addr, prefix))) {
            return a;
        }
    }
    panic!("no answer from {server} for {addr}/{prefix}");
}

// ---------------------------------------------------------------------------------------
// Client subnets

fn truncate(addr: IpAddr, prefix: u8) -> IpAddr {
    IpNet::new(addr, prefix).unwrap().trunc().network()
}

fn random_in(rng: &mut StdRng, net: IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let host = u32::MAX.checked_shr(u32::from(n.prefix_len())).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(
                u32::from(n.network()) | (rng.random::<u32>() & host),
            ))
        }
        IpNet::V6(n) => {
            let host = u128::MAX
                .checked_shr(u32::from(n.prefix_len()))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(
                u128::from(n.network()) | (rng.random::<u128>() & host),
            ))
        }
    }
}

/// The last address of `net`.
fn last_in(net: IpNet) -> IpAddr {
    net.broadcast()
}

/// (address, source prefix, kind): IPv4 /24s and IPv6 /48s, three quarters inside the
/// database's networks and the rest anywhere; 6to4 /48s embedding IPv4 networks; random
/// source prefix lengths of both families; and /0 of both.
fn client_subnets(rng: &mut StdRng, rows: &[CityRow]) -> Vec<(IpAddr, u8, &'static str)> {
    let v4: Vec<IpNet> = rows
        .iter()
        .map(|r| r.network)
        .filter(|n| matches!(n, IpNet::V4(_)))
        .collect();
    let v6: Vec<IpNet> = rows
        .iter()
        .map(|r| r.network)
        .filter(|n| matches!(n, IpNet::V6(_)))
        .collect();
    let mut out = Vec::new();
    for _ in 0..2400 {
        let addr = if rng.random_bool(0.75) {
            let net = v4[rng.random_range(0..v4.len())];
            random_in(rng, net)
        } else {
            IpAddr::V4(Ipv4Addr::from(
                rng.random_range(0x0100_0000u32..0xe000_0000),
            ))
        };
        out.push((truncate(addr, 24), 24, "v4"));
    }
    for _ in 0..800 {
        let addr = if rng.random_bool(0.75) {
            let net = v6[rng.random_range(0..v6.len())];
            random_in(rng, net)
        } else {
            // Global unicast, not Teredo (2001::/32) or 6to4 (2002::/16).
            let top = loop {
                let t = rng.random_range(0x2000u128..0x4000);
                if t != 0x2001 && t != 0x2002 {
                    break t;
                }
            };
            IpAddr::V6(Ipv6Addr::from((top << 112) | (rng.random::<u128>() >> 16)))
        };
        out.push((truncate(addr, 48), 48, "v6"));
    }
    for _ in 0..100 {
        let net = v4[rng.random_range(0..v4.len())];
        let IpAddr::V4(a) = random_in(rng, net) else {
            unreachable!()
        };
        let six = (0x2002u128 << 112) | (u128::from(u32::from(a)) << 80);
        out.push((IpAddr::V6(Ipv6Addr::from(six)), 48, "6to4"));
    }
    // Every source prefix length, not only /24 and /48: random lengths of both families
    // (the address inside the database three times in four), and /0 (the client opts out:
    // located by the packet's source, scope 0; RFC 7871 §7.1.2).
    for _ in 0..400 {
        let prefix = rng.random_range(0..=32u8);
        let addr = if rng.random_bool(0.75) {
            let net = v4[rng.random_range(0..v4.len())];
            random_in(rng, net)
        } else {
            IpAddr::V4(Ipv4Addr::from(
                rng.random_range(0x0100_0000u32..0xe000_0000),
            ))
        };
        out.push((truncate(addr, prefix), prefix, "v4 any length"));
    }
    for _ in 0..200 {
        let prefix = rng.random_range(0..=128u8);
        let net = v6[rng.random_range(0..v6.len())];
        let addr = random_in(rng, net);
        out.push((truncate(addr, prefix), prefix, "v6 any length"));
    }
    out.push((IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0, "v4 /0"));
    out.push((IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0, "v6 /0"));
    out
}

/// The database rows whose networks contain `addr`, for messages.
fn rows_at(rows: &[CityRow], addr: IpAddr) -> String {
    let mut hits: Vec<&CityRow> = rows.iter().filter(|r| r.network.contains(&addr)).collect();
    hits.sort_by_key(|r| r.network.prefix_len());
    if hits.is_empty() {
        return "no database network".into();
    }
    hits.iter()
        .map(|r| {
            format!(
                "{} {}/{}/{} city {:?}",
                r.network,
                r.continent.as_deref().unwrap_or("-"),
                r.country.as_deref().unwrap_or("-"),
                r.subdivision.as_deref().unwrap_or("-"),
                r.city.as_deref().unwrap_or("-"),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn dc_name(dc: Option<usize>) -> &'static str {
    dc.map_or("none", |i| DCS[i].0)
}

#[derive(Default)]
struct Means {
    n: usize,
    meridian: f64,
    gdnsd: f64,
}

impl Means {
    fn add(&mut self, m: u8, g: u8) {
        self.n += 1;
        self.meridian += f64::from(m);
        self.gdnsd += f64::from(g);
    }

    fn show(&self) -> String {
        let n = self.n.max(1) as f64;
        format!("{:.2} vs {:.2}", self.meridian / n, self.gdnsd / n)
    }
}

#[test]
fn geo_answers_and_scopes_match_gdnsd() {
    if !require_tool("gdnsd", "gdnsd") {
        return;
    }
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(SEED);
    let rows = database_rows(&mut rng);
    let n_v4 = rows
        .iter()
        .filter(|r| matches!(r.network, IpNet::V4(_)))
        .count();
    let work = tempfile::tempdir().expect("temp dir");
    let db = work.path().join("Synthetic-City.mmdb");
    std::fs::write(&db, city_mmdb("Meridian-Synthetic-City", &rows).unwrap()).unwrap();

    let gdnsd_dir = work.path().join("gdnsd");
    let gdnsd = start_gdnsd(&gdnsd_dir, &db);
    let dynamic = meridian_dynamic();
    let meridian = Server::start(
        &[
            (&format!("{ZONE}.zone"), &zone_file("")),
            (&format!("{ZONE}.toml"), &dynamic),
        ],
        &format!("[geoip]\ndatabases = [\"{}\"]\necs = true\n", db.display()),
    );

    let subnets = client_subnets(&mut rng, &rows);
    let sock = client_socket(Duration::from_millis(500));
    let mut disagreements = Vec::new();
    let mut narrower = Vec::new();
    let mut wrong_wide = Vec::new();
    let mut agree = 0;
    let (mut wider, mut same_scope, mut probes) = (0, 0, 0);
    let mut means: BTreeMap<&str, Means> = BTreeMap::new();
    let mut all = Means::default();
    let mut per_dc = [0usize; DCS.len()];
    for &(addr, prefix, kind) in &subnets {
        let g = ask(&sock, gdnsd.addr, addr, prefix);
        let m = ask(&sock, meridian.addr, addr, prefix);
        let (Some(gs), Some(ms)) = (g.scope, m.scope) else {
            panic!("{addr}/{prefix}: no ECS option in an answer: gdnsd {g:?}, meridian {m:?}");
        };
        means.entry(kind).or_default().add(ms, gs);
        all.add(ms, gs);
        if g.dc.is_none() {
            disagreements.push(format!("{addr}/{prefix}: gdnsd gave no known address"));
            continue;
        }
        if m.dc != g.dc {
            disagreements.push(format!(
                "{addr}/{prefix} ({kind}): meridian {} /{ms}, gdnsd {} /{gs}; database: {}",
                dc_name(m.dc),
                dc_name(g.dc),
                rows_at(&rows, addr),
            ));
            continue;
        }
        agree += 1;
        if let Some(dc) = m.dc {
            per_dc[dc] += 1;
        }
        if ms > gs {
            narrower.push(format!(
                "{addr}/{prefix} ({kind}): meridian scope /{ms} narrower than gdnsd /{gs} ({}); \
                 database: {}",
                dc_name(m.dc),
                rows_at(&rows, addr),
            ));
        } else if ms < gs {
            wider += 1;
            // The wider scope must hold: elsewhere in it, the same datacenter from both.
            let scope_net = IpNet::new(addr, ms).unwrap().trunc();
            let full = if addr.is_ipv4() { 32 } else { 128 };
            let probe_addrs = [
                random_in(&mut rng, scope_net),
                random_in(&mut rng, scope_net),
                last_in(scope_net),
            ];
            for probe in probe_addrs {
                probes += 1;
                let pm = ask(&sock, meridian.addr, probe, full);
                let pg = ask(&sock, gdnsd.addr, probe, full);
                if pm.dc != m.dc || pg.dc != m.dc {
                    wrong_wide.push(format!(
                        "{addr}/{prefix} ({kind}): meridian scope /{ms} (gdnsd /{gs}) for {}, \
                         but {probe} gets meridian {} gdnsd {}; database: {}",
                        dc_name(m.dc),
                        dc_name(pm.dc),
                        dc_name(pg.dc),
                        rows_at(&rows, probe),
                    ));
                }
            }
        } else {
            same_scope += 1;
        }
    }

    let n = subnets.len();
    println!(
        "database: {} networks ({} IPv4, {} IPv6); {} queries; {:.1} s",
        rows.len(),
        n_v4,
        rows.len() - n_v4,
        n,
        started.elapsed().as_secs_f64()
    );
    for (kind, m) in &means {
        println!(
            "  {kind}: {} subnets, mean scope meridian {}",
            m.n,
            m.show()
        );
    }
    let per_dc: Vec<String> = DCS
        .iter()
        .zip(per_dc)
        .map(|((name, _), n)| format!("{name} {n}"))
        .collect();
    println!("  answers: {}", per_dc.join(", "));
    println!(
        "  scopes: {same_scope} equal, {wider} wider in meridian ({probes} probes inside them, \
         {} wrong), {} narrower",
        wrong_wide.len(),
        narrower.len()
    );
    println!(
        "gdnsd comparison: {n} subnets, agreement {agree}/{n}, mean scope meridian {}",
        all.show()
    );
    let show = |v: &[String]| {
        v.iter()
            .take(40)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        disagreements.is_empty(),
        "{} datacenter disagreements:\n{}",
        disagreements.len(),
        show(&disagreements)
    );
    assert!(
        narrower.is_empty(),
        "{} scopes narrower than gdnsd's:\n{}",
        narrower.len(),
        show(&narrower)
    );
    assert!(
        wrong_wide.is_empty(),
        "{} wider scopes that do not hold:\n{}",
        wrong_wide.len(),
        show(&wrong_wide)
    );
}
