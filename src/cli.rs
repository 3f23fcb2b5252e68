//! What the subcommands do, kept out of `main.rs` so that it only parses arguments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config;
use crate::zone::name;

pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MERIDIAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn serve(config_path: PathBuf) -> ExitCode {
    let loaded = match config::load(&config_path) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match crate::server::run(config_path, loaded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn check(config_path: &Path) -> ExitCode {
    match config::load(config_path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            for z in loaded.snapshot.zones.zones() {
                println!(
                    "zone {}: serial {}, {} records",
                    name::to_text(z.origin()),
                    z.serial(),
                    z.record_count()
                );
            }
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                println!("error: {e}");
            }
            println!("{} error(s)", errors.len());
            ExitCode::FAILURE
        }
    }
}
