//! `sluice`, the appliance daemon: `sluice --config FILE`.
//!
//! Reads and validates the TOML configuration, sets up logging and signal
//! handling, and hands over to [`app::run`]. Exit codes: 0 clean stop,
//! 1 runtime failure, 2 bad configuration or arguments, 3 mbufs leaked.
#![forbid(unsafe_code)]

use clap::Parser;
use sluice::{app, config};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Sluice: a DPDK layer-4 load balancer.
#[derive(Parser, Debug)]
#[command(name = "sluice", version, about)]
struct Args {
    /// Configuration file (TOML).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration, print the EAL arguments, and exit.
    #[arg(long)]
    check: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }

    let cfg = match config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: configuration refused: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!("configuration ok: {}", args.config.display());
        println!("EAL arguments: {}", cfg.eal_args().join(" "));
        return ExitCode::SUCCESS;
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("sluice: cannot install a signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let reload = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone()) {
        eprintln!("sluice: cannot install a signal handler: {e}");
        return ExitCode::from(1);
    }
    match app::run(cfg, stop, reload) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(leaked) => {
            eprintln!("sluice: {leaked} mbufs leaked");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::from(1)
        }
    }
}
