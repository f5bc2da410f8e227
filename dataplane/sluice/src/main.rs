//! `sluice`, the appliance daemon: `sluice --config FILE`.
//!
//! Reads and validates the TOML configuration, sets up logging and signal
//! handling, and hands over to [`app::run`]. `--check` validates the
//! configuration and the machine and exits; `--prepare` sets the machine
//! up with DPDK's tools and exits. Exit codes: 0 clean stop (or check
//! passed, machine prepared), 1 runtime failure (or the machine is not
//! ready, or a preparation step failed), 2 bad configuration or arguments,
//! 3 mbufs leaked.
#![forbid(unsafe_code)]

use clap::Parser;
use sluice::{app, config, machine};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Sluice: a DPDK layer-4 load balancer.
#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a DPDK layer-4 load balancer",
    long_about = "Sluice owns the NICs named in its configuration, takes every connection to \
                  its virtual services (VIP:port, TCP or UDP), schedules each to a real server \
                  and forwards its packets there by NAT or direct routing, on every worker \
                  core. It is driven at run time with sluicectl(8) over its control socket; \
                  the configuration file is described in sluice.toml(5).",
    after_help = "Signals: SIGTERM and SIGINT stop it, SIGHUP reloads the configuration file.\n\
                  Exit codes: 0 clean stop (or --check: ready), 1 runtime failure (or --check: \
                  machine not ready), 2 bad configuration or arguments, 3 mbufs leaked.\n\
                  Files: /etc/sluice/sluice.toml, /run/sluice/sluice.sock.\n\
                  Environment: SLUICE_LOG (log filter, e.g. debug), NOTIFY_SOCKET and \
                  WATCHDOG_USEC (set by systemd for Type=notify)."
)]
struct Args {
    /// Configuration file (TOML; see sluice.toml(5)).
    #[arg(short, long, value_name = "FILE", required_unless_present = "man")]
    config: Option<PathBuf>,
    /// Validate the configuration and check the machine (hugepages,
    /// devices and drivers, CPUs, IOMMU), print what to run for each
    /// shortcoming, and exit: 0 ready, 1 not ready, 2 bad configuration.
    #[arg(long, conflicts_with = "prepare")]
    check: bool,
    /// Reserve hugepages and bind PCI ports as the [machine] section says,
    /// with dpdk-hugepages.py and dpdk-devbind.py, and exit (systemd's
    /// ExecStartPre).
    #[arg(long)]
    prepare: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Print the manual page sluice(8), in roff (for packaging).
    #[arg(long, hide = true)]
    man: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    /// Human-readable lines on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
    /// Straight to systemd's journal, every field a journal field
    /// (`journalctl -u sluice -o verbose`); text on stderr if there is no
    /// journal.
    Journald,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(config_path) = args.config.clone() else {
        use clap::CommandFactory;
        let man = clap_mangen::Man::new(Args::command()).section("8");
        return match man.render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sluice: cannot write the manual page: {e}");
                ExitCode::from(1)
            }
        };
    };
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(journal) => {
                use tracing_subscriber::layer::SubscriberExt;
                use tracing_subscriber::util::SubscriberInitExt;
                tracing_subscriber::registry()
                    .with(log_filter())
                    .with(journal.with_syslog_identifier("sluice".into()))
                    .init();
            }
            Err(e) => {
                builder.init();
                tracing::warn!("no journal ({e}); logging to stderr");
            }
        },
    }

    let cfg = match config::Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: configuration refused: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        return check(&cfg, &config_path);
    }
    if args.prepare {
        return prepare(&cfg);
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

/// What to log: `$SLUICE_LOG` (`tracing`'s filter syntax), else info.
fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// `--check`: the configuration passed; now the machine.
fn check(cfg: &config::Config, path: &std::path::Path) -> ExitCode {
    println!("configuration ok: {}", path.display());
    println!("EAL arguments: {}", cfg.eal_args().join(" "));
    let found = machine::check(cfg, &machine::probe(std::path::Path::new("/"), cfg));
    println!("machine:");
    for f in &found {
        println!("  {f}");
    }
    let failed = found
        .iter()
        .filter(|f| f.level == machine::Level::Fail)
        .count();
    if failed == 0 {
        println!("machine ready");
        ExitCode::SUCCESS
    } else {
        println!("machine not ready: {failed} to fix (see fix: above)");
        ExitCode::from(1)
    }
}

/// `--prepare`: runs DPDK's tools where the machine is short of what the
/// configuration asks.
fn prepare(cfg: &config::Config) -> ExitCode {
    let m = machine::probe(std::path::Path::new("/"), cfg);
    let commands = machine::prepare_commands(cfg, &m);
    if commands.is_empty() {
        println!("sluice: prepare: nothing to do");
    }
    for c in commands {
        println!("sluice: prepare: {}: {c}", c.why);
        let status = std::process::Command::new(&c.argv[0])
            .args(&c.argv[1..])
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("sluice: prepare: `{c}` failed ({s})");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("sluice: prepare: cannot run {}: {e}", c.argv[0]);
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
