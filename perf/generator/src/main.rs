//! `sluice-gen`: parses the options (flags over an optional TOML file),
//! runs the measurement or the RFC 2544 search on DPDK ([`app`]), prints
//! the summary and writes the JSON report.
#![forbid(unsafe_code)]

mod app;

use clap::Parser;
use sluice_gen::cli::Opts;
use sluice_gen::config::Config;
use sluice_gen::report;
use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = Opts::parse();
    let opts = match opts.config.clone() {
        Some(path) => match Opts::from_file(&path) {
            Ok(file) => opts.over(file),
            Err(e) => {
                eprintln!("sluice-gen: {e}");
                return ExitCode::from(2);
            }
        },
        None => opts,
    };
    let cfg = match Config::from_opts(opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice-gen: {e}");
            return ExitCode::from(2);
        }
    };
    let rep = match app::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report::summarize(&rep));
    if let Some(path) = &cfg.json {
        let text = match serde_json::to_string_pretty(&rep) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("sluice-gen: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("sluice-gen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
