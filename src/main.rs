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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    meridian::cli::init_logging(&cli.log_format);
    match cli.command {
        Command::Serve { config, api_listen } => meridian::cli::serve(config, api_listen),
        Command::Check { config } => meridian::cli::check(&config),
        Command::Explain {
            name,
            rtype,
            client,
            config,
        } => meridian::cli::explain(&config, &name, &rtype, &client),
    }
}
