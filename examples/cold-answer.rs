//! The answer path with cold caches: between two queries, a buffer bigger than the L2 cache
//! is written, as the kernel's network stack and an idle CPU do between two datagrams on a
//! real server. Prints the mean TSC cycles per query cold and warm (the same query again).
//!
//!     cargo run --release --example cold-answer -- CONFIG QUERIES [ECS_ADDR/PREFIX]
//!
//! QUERIES is a dnsperf file (`name type` per line). Under callgrind with
//! `--toggle-collect=meridian::server::answer::answer_from --cache-sim=yes` it shows which
//! lines of the answer path miss.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};
use meridian::config;
use meridian::dns::MAX_MESSAGE;
use meridian::dns::Transport;
use meridian::dns::name::wire_lower;
use meridian::dns::wire::build_query;
use meridian::engine::{self, Request};
use meridian::health::HealthView;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: cold-answer CONFIG QUERIES [ECS_ADDR/PREFIX]");
        std::process::exit(2);
    }
    let snapshot = match config::load(Path::new(&args[1])) {
        Ok(l) => l.snapshot,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            std::process::exit(1);
        }
    };
    let ecs = args.get(3).map(|s| {
        let parsed = s
            .split_once('/')
            .and_then(|(a, p)| Some((IpAddr::from_str(a).ok()?, p.parse::<u8>().ok()?)));
        parsed.unwrap_or_else(|| fail(&format!("{s}: not ADDR/PREFIX")))
    });
    let text =
        std::fs::read_to_string(&args[2]).unwrap_or_else(|e| fail(&format!("{}: {e}", args[2])));
    let queries: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = Name::from_str(f.next()?).ok()?;
            let qtype = RecordType::from_str(f.next().unwrap_or("A")).ok()?;
            Some(build_query(
                7,
                &wire_lower(&name.append_domain(&Name::root()).ok()?),
                u16::from(qtype),
                true,
                ecs,
            ))
        })
        .collect();
    let health = HealthView::all_up();
    let source = IpAddr::from([127, 0, 0, 1]);
    let mut response = vec![0u8; MAX_MESSAGE];
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let evict_kb: usize = std::env::var("EVICT_KB")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(8192);
    let mut evict = vec![0u8; evict_kb << 10];
    let (mut cold, mut warm, mut n) = (0u64, 0u64, 0u64);
    for round in 0..rounds {
        for q in &queries {
            for i in (0..evict.len()).step_by(64) {
                evict[i] = evict[i].wrapping_add(round as u8);
            }
            std::hint::black_box(&evict);
            let mut answer = || {
                std::hint::black_box(engine::answer(
                    &snapshot,
                    &health,
                    None,
                    &Request::new(q, source, Transport::Udp),
                    &mut response,
                ))
            };
            let t0 = tsc();
            answer();
            let t1 = tsc();
            answer();
            let t2 = tsc();
            cold += t1 - t0;
            warm += t2 - t1;
            n += 1;
        }
    }
    println!(
        "{} queries: cold {:.0} cycles/query, warm {:.0}",
        n,
        cold as f64 / n as f64,
        warm as f64 / n as f64
    );
}

fn fail(message: &str) -> ! {
    eprintln!("cold-answer: {message}");
    std::process::exit(2);
}

fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}
