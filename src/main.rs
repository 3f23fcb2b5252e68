//! Command line only: parse arguments and call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "meridian",
    version,
    about = "Authoritative DNS server for global traffic steering"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the zones of a configuration.
    Serve {
        #[arg(short, long, default_value = "meridian.toml")]
        config: PathBuf,
        /// Listen for the admin API here instead of the config's api.listen.
        #[arg(long)]
        api_listen: Option<std::net::SocketAddr>,
        /// Answer DNS here instead of the config's server.listen (repeatable).
        #[arg(long)]
        listen: Vec<std::net::SocketAddr>,
    },
    /// Validate the configuration and every zone; print every error with file and line.
    Check {
        #[arg(short, long, default_value = "meridian.toml")]
        config: PathBuf,
    },
    /// Show what would be answered to a client, and why: location, candidates, scope.
    Explain {
        /// The name asked for, e.g. www.example.com
        name: String,
        /// The record type.
        #[arg(default_value = "A")]
        rtype: String,
        /// The client address, optionally with an ECS prefix: 81.2.69.160 or 81.2.69.0/24
        #[arg(long)]
        client: String,
        #[arg(short, long, default_value = "meridian.toml")]
        config: PathBuf,
    },
    /// What a configuration change does to traffic: for each dynamic name the share of the
    /// address space (and the continents and countries) whose first datacenter changes, and
    /// the static RRsets added, removed and changed.
    Diff {
        /// The old configuration (with --rev: the configuration).
        old: Option<PathBuf>,
        /// The new configuration.
        #[arg(default_value = "meridian.toml")]
        new: PathBuf,
        /// Compare NEW with itself at this git revision (e.g. HEAD, origin/main).
        #[arg(long)]
        rev: Option<String>,
        /// Print Markdown (for a pull request) instead of text.
        #[arg(long)]
        markdown: bool,
    },
    /// DNSSEC keys: make one, print the DS for the registrar, show every key's state.
    Dnssec {
        #[command(subcommand)]
        action: DnssecAction,
    },
    /// Send one query every interval to a server and print each one's fate (sent at in unix
    /// ms, sequence, rcode or timeout, round trip ms, answers), then a summary on stderr.
    Probe {
        /// The server: ADDR or ADDR:PORT (port 53 by default).
        server: String,
        /// The name asked for.
        name: String,
        /// The record type.
        #[arg(default_value = "A")]
        rtype: String,
        /// Seconds between queries.
        #[arg(long, default_value_t = 0.05)]
        interval: f64,
        /// Seconds before an unanswered query counts as lost.
        #[arg(long, default_value_t = 1.0)]
        timeout: f64,
        /// Queries to send.
        #[arg(long, default_value_t = 100)]
        count: u32,
        /// Send EDNS Client Subnet ADDR/PREFIX.
        #[arg(long)]
        subnet: Option<String>,
        /// Vary every query: "subnet" (a random /24 as ECS) or "label" (a random label in
        /// front of NAME), so no cache helps; or "case" (NAME's letters in a random case, as
        /// a 0x20 resolver asks).
        #[arg(long, value_parser = ["subnet", "label", "case"])]
        vary: Option<String>,
        /// Only the summary, no line per query.
        #[arg(long)]
        quiet: bool,
        /// Set DO (DNSSEC OK): a signed zone answers with its signatures.
        #[arg(long)]
        dnssec: bool,
    },
}

#[derive(Subcommand)]
enum DnssecAction {
    /// Make a key for ZONE in [dnssec] key_dir: a CSK (flags 257) unless --zsk.
    Keygen {
        zone: String,
        /// ECDSAP256SHA256 (default, or [dnssec] algorithm) or ED25519.
        #[arg(long)]
        algorithm: Option<String>,
        /// A zone-signing key (flags 256) for a KSK/ZSK split.
        #[arg(long)]
        zsk: bool,
        #[arg(short, long, default_value = "meridian.toml")]
        config: PathBuf,
    },
    /// Print the DS records (SHA-256) of ZONE's key-signing keys for the registrar.
    Ds {
        zone: String,
        #[arg(short, long, default_value = "meridian.toml")]
        config: PathBuf,
    },
    /// Every key of every signed zone: state, next key event, signature expiry.
    Status {
        #[arg(short, long, default_value = "meridian.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    meridian::cli::init_logging(&cli.log_format);
    match cli.command {
        Command::Serve {
            config,
            api_listen,
            listen,
        } => meridian::cli::serve(config, listen, api_listen),
        Command::Check { config } => meridian::cli::check(&config),
        Command::Explain {
            name,
            rtype,
            client,
            config,
        } => meridian::cli::explain(&config, &name, &rtype, &client),
        Command::Diff {
            old,
            new,
            rev,
            markdown,
        } => match (old, rev) {
            // With --rev the one positional argument is the configuration.
            (Some(config), Some(rev)) => meridian::cli::diff(None, &config, Some(&rev), markdown),
            (old, rev) => meridian::cli::diff(old.as_deref(), &new, rev.as_deref(), markdown),
        },
        Command::Dnssec { action } => match action {
            DnssecAction::Keygen {
                zone,
                algorithm,
                zsk,
                config,
            } => meridian::cli::dnssec_keygen(&config, &zone, algorithm.as_deref(), zsk),
            DnssecAction::Ds { zone, config } => meridian::cli::dnssec_ds(&config, &zone),
            DnssecAction::Status { config } => meridian::cli::dnssec_status(&config),
        },
        Command::Probe {
            server,
            name,
            rtype,
            interval,
            timeout,
            count,
            subnet,
            vary,
            quiet,
            dnssec,
        } => {
            let vary = match vary.as_deref() {
                Some("subnet") => meridian::probe::Vary::Subnet,
                Some("label") => meridian::probe::Vary::Label,
                Some("case") => meridian::probe::Vary::Case,
                _ => meridian::probe::Vary::Nothing,
            };
            let plan = (name, rtype, subnet, vary, quiet, dnssec);
            probe(&server, plan, interval, timeout, count)
        }
    }
}

/// What `meridian probe` asks: name, type, subnet, what varies, quiet, DO.
type ProbeQuestion = (
    String,
    String,
    Option<String>,
    meridian::probe::Vary,
    bool,
    bool,
);

fn probe(
    server: &str,
    (name, rtype, subnet, vary, quiet, dnssec): ProbeQuestion,
    interval: f64,
    timeout: f64,
    count: u32,
) -> ExitCode {
    let server = match server.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        Err(_) => match server.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, 53),
            Err(_) => {
                eprintln!("error: server {server:?} is not ADDR or ADDR:PORT");
                return ExitCode::FAILURE;
            }
        },
    };
    let seconds = |s: f64| {
        (s.is_finite() && s > 0.0 && s < 3600.0).then(|| std::time::Duration::from_secs_f64(s))
    };
    let (Some(interval), Some(timeout)) = (seconds(interval), seconds(timeout)) else {
        eprintln!("error: interval and timeout are seconds above 0 and below 3600");
        return ExitCode::FAILURE;
    };
    let plan = meridian::probe::ProbePlan {
        server,
        name,
        rtype,
        subnet,
        interval,
        timeout,
        count,
        vary,
        quiet,
        dnssec,
    };
    match meridian::probe::run(&plan, &mut std::io::stdout().lock()) {
        Ok(summary) => {
            eprintln!("{}", summary.line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
