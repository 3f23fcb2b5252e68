//! One anycast site (geode) behind a real BGP speaker, in network namespaces this test makes
//! and removes: a router namespace running BIRD, a site namespace running BIRD with the
//! shipped `dist/anycast/bird-site.conf`, meridian on the anycast service address, and the
//! shipped `dist/anycast/meridian-anycast-gate`. The route to the service address is at the
//! router only while meridian can serve: drained (SIGUSR1), wedged (SIGSTOP) or stopped, it is
//! withdrawn.
//! Addresses are from 198.18.0.0/15 and exist only inside the namespaces.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{require_tool, tool_path, wait_until};

const SERVICE: &str = "198.18.255.53";

/// The namespaces, links and processes of the test; all removed when dropped.
struct Lab {
    router: String,
    site: String,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

impl Lab {
    fn new() -> Lab {
        let tag = std::process::id() % 100_000;
        let lab = Lab {
            router: format!("meridian-r{tag}"),
            site: format!("meridian-s{tag}"),
            children: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let (vr, vs) = (format!("mrd{tag}r"), format!("mrd{tag}s"));
        ip(&["netns", "add", &lab.router]);
        ip(&["netns", "add", &lab.site]);
        ip(&["link", "add", &vr, "type", "veth", "peer", "name", &vs]);
        ip(&["link", "set", &vr, "netns", &lab.router]);
        ip(&["link", "set", &vs, "netns", &lab.site]);
        ip(&[
            "-n",
            &lab.router,
            "addr",
            "add",
            "198.18.0.1/30",
            "dev",
            &vr,
        ]);
        ip(&["-n", &lab.site, "addr", "add", "198.18.0.2/30", "dev", &vs]);
        for (ns, dev) in [(&lab.router, &vr), (&lab.site, &vs)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n",
            &lab.site,
            "addr",
            "add",
            &format!("{SERVICE}/32"),
            "dev",
            "lo",
        ]);
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `program` inside namespace `ns`, its output in `log`.
    fn spawn(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log: &str,
    ) -> u32 {
        let log = std::fs::File::create(self.path(log)).expect("log");
        let err = log.try_clone().expect("log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn in namespace");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// The router's kernel route to the service address, if BGP installed one.
    fn routed(&self) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.router, "route", "show", SERVICE])
            .output()
            .expect("ip route");
        String::from_utf8_lossy(&out.stdout).contains("proto bird")
    }

    /// A query from the router namespace to the service address is answered.
    fn answers(&self) -> bool {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.router])
            .arg(tool_path("dig"))
            .args([
                "+time=1",
                "+tries=1",
                "+norecurse",
                &format!("@{SERVICE}"),
                "example.com",
                "SOA",
            ])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).contains("status: NOERROR")
    }

    fn logs(&self) -> String {
        [
            "router-bird.log",
            "site-bird.log",
            "gate.log",
            "meridian.log",
        ]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(self.path(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            format!(
                "--- {f}\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // BIRD daemonizes into the namespace: deleting it does not end BIRD, its pid file does.
        for pid_file in ["router-bird.pid", "site-bird.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.path(pid_file)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.router])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.site])
            .status();
    }
}

const ROUTER_BIRD: &str = r#"
router id 198.18.0.1;
log stderr all;
protocol device { scan time 1; }
protocol kernel { ipv4 { export all; import none; }; }
protocol bgp site {
  local 198.18.0.1 as 64500;
  neighbor 198.18.0.2 as 64501;
  hold time 3; keepalive time 1; connect retry time 1;
  ipv4 { import all; export none; };
}
"#;

const ZONE: &str = "\
$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 1 3600 600 86400 60
@    NS  ns1
ns1  A   198.18.255.53
";

fn kill(signal: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
    assert!(ok.is_ok_and(|s| s.success()), "kill {signal} {pid}");
}

/// Time until `f` holds, polled every 50 ms, at most `limit` (then the test fails).
fn until(what: &str, limit: Duration, lab: &Lab, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {limit:?}\n{}", lab.logs());
}

#[test]
fn a_site_announces_the_service_address_only_while_meridian_serves() {
    let _heavy = crate::common::heavy();
    if !require_tool("bird", "bird2") || !require_tool("dig", "bind9-dnsutils") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut lab = Lab::new();

    // The site's BIRD runs the shipped configuration, logging to a file.
    let shipped =
        std::fs::read_to_string(root.join("dist/anycast/bird-site.conf")).expect("bird-site.conf");
    let site_conf = shipped.replace("log syslog all;", "log stderr all;");
    std::fs::write(lab.path("site.conf"), site_conf).expect("site conf");
    std::fs::write(lab.path("router.conf"), ROUTER_BIRD).expect("router conf");
    let bird = tool_path("bird");
    for (ns, who) in [(lab.router.clone(), "router"), (lab.site.clone(), "site")] {
        let conf = lab.path(&format!("{who}.conf")).display().to_string();
        let ctl = lab.path(&format!("{who}.ctl")).display().to_string();
        let pid = lab.path(&format!("{who}-bird.pid")).display().to_string();
        lab.spawn(
            &ns,
            &bird,
            &["-f", "-c", &conf, "-s", &ctl, "-P", &pid],
            &[],
            &format!("{who}-bird.log"),
        );
    }

    // meridian on the service address, its API on the site's own loopback.
    std::fs::create_dir(lab.path("zones")).expect("zones");
    std::fs::write(lab.path("zones/example.com.zone"), ZONE).expect("zone");
    let config = lab.path("meridian.toml");
    std::fs::write(
        &config,
        format!("zones_dir = \"zones\"\n[server]\nlisten = [\"{SERVICE}:53\"]\nudp_threads = 1\n[api]\nlisten = \"127.0.0.1:8053\"\n"),
    )
    .expect("config");
    let site = lab.site.clone();
    let config_arg = config.display().to_string();
    let meridian = lab.spawn(
        &site,
        Path::new(env!("CARGO_BIN_EXE_meridian")),
        &["serve", "--config", &config_arg],
        &[("MERIDIAN_LOG", "warn".to_string())],
        "meridian.log",
    );

    // The gate, as shipped, checking every 0.2 s (withdraw after 2 failures).
    let ctl = lab.path("site.ctl").display().to_string();
    lab.spawn(
        &site,
        &root.join("dist/anycast/meridian-anycast-gate"),
        &[],
        &[
            ("SERVICE_ADDR", SERVICE.to_string()),
            ("PROBE_NAME", "example.com".to_string()),
            ("BIRD_SOCKET", ctl),
            ("INTERVAL", "0.2".to_string()),
            (
                "PATH",
                std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin",
            ),
        ],
        "gate.log",
    );

    let announced = until(
        "the route to be announced",
        Duration::from_secs(20),
        &lab,
        || lab.routed(),
    );
    println!("announced {announced:?} after start");
    assert!(
        lab.answers(),
        "the router reaches meridian through the anycast route\n{}",
        lab.logs()
    );

    // Drained: /health says so, the gate withdraws, the router loses the route.
    kill("-USR1", meridian);
    let withdrawn = until(
        "the route to be withdrawn after a drain",
        Duration::from_secs(5),
        &lab,
        || !lab.routed(),
    );
    println!("drain → withdrawn in {withdrawn:?}");
    assert!(!lab.answers(), "no route, no answer");

    // Undrained: announced again.
    kill("-USR2", meridian);
    let back = until(
        "the route to come back",
        Duration::from_secs(5),
        &lab,
        || lab.routed(),
    );
    println!("undrain → announced in {back:?}");
    wait_until("answers through the route", Duration::from_secs(5), || {
        lab.answers()
    });

    // Wedged (every thread stopped, the process still there): the probes time out, withdrawn.
    kill("-STOP", meridian);
    let withdrawn = until(
        "the route to be withdrawn while meridian is wedged",
        Duration::from_secs(8),
        &lab,
        || !lab.routed(),
    );
    println!("wedged → withdrawn in {withdrawn:?}");
    kill("-CONT", meridian);
    let back = until(
        "the route to come back after the wedge",
        Duration::from_secs(8),
        &lab,
        || lab.routed(),
    );
    println!("unwedged → announced in {back:?}");

    // Stopped: withdrawn.
    kill("-KILL", meridian);
    let withdrawn = until(
        "the route to be withdrawn after a stop",
        Duration::from_secs(5),
        &lab,
        || !lab.routed(),
    );
    println!("stop → withdrawn in {withdrawn:?}");
    // Bound: FALL (2) × INTERVAL (0.2 s) + a probe's own timeout (1 s) + BGP update, with
    // slack for a loaded machine.
    assert!(withdrawn < Duration::from_secs(3), "{withdrawn:?}");
}
