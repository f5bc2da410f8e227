//! `top`: a live view of the services, their reals and the workers,
//! refreshed every interval until `q`, Esc or Ctrl-C; or, with `--once`,
//! one frame on standard output for scripts.
//!
//! The daemon is asked by a background thread, so that keys are answered
//! at once even while a request is slow. Any failure — the daemon gone,
//! an error reply — ends the view, restores the terminal and exits with
//! the usual code and message.

mod frame;
mod screen;

use crate::client::{self, Failure};
use clap::Args;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use frame::Reading;
use sluice_proto::{Command, ReplyBody};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// Options of `top`.
#[derive(Args, Debug, Clone)]
pub struct TopArgs {
    /// Seconds between refreshes (0.1 to 3600; fractions allowed).
    #[arg(short = 'd', long, value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    interval: Duration,
    /// Print one frame to standard output and exit (no terminal needed).
    #[arg(long)]
    once: bool,
    /// Width of the --once frame [default: $COLUMNS, else 80].
    #[arg(long, requires = "once", value_parser = clap::value_parser!(u16).range(1..))]
    width: Option<u16>,
    /// Height of the --once frame [default: $LINES, else 24].
    #[arg(long, requires = "once", value_parser = clap::value_parser!(u16).range(1..))]
    height: Option<u16>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err(format!("{s} is not between 0.1 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A dimension from `--width`/`--height`, else from the environment,
/// else the default.
fn dimension(arg: Option<u16>, var: &str, default: usize) -> usize {
    arg.map(usize::from)
        .or_else(|| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|&n: &usize| n > 0)
        })
        .unwrap_or(default)
}

/// Asks the daemon for the services and the counters.
fn fetch(socket: &Path) -> Result<Reading, Failure> {
    let unexpected = |what: &str| Failure {
        code: 5,
        message: format!("the daemon answered {what} with another kind of reply"),
    };
    let services = match client::call(socket, &Command::ServiceList { raw: false })? {
        ReplyBody::Services(l) => l,
        _ => return Err(unexpected("service list")),
    };
    let stats = match client::call(socket, &Command::Stats)? {
        ReplyBody::Stats(s) => s,
        _ => return Err(unexpected("stats")),
    };
    Ok(Reading {
        at: SystemTime::now(),
        services,
        stats,
    })
}

/// [`fetch`], trying once more after a failure of the connection itself:
/// a daemon that stops mid-request is then seen as unreachable (exit 3)
/// rather than as a broken reply.
fn fetch_retrying(socket: &Path) -> Result<Reading, Failure> {
    match fetch(socket) {
        Err(f) if f.code == 5 => {
            std::thread::sleep(Duration::from_millis(200));
            fetch(socket).map_err(|g| if g.code == 3 { g } else { f })
        }
        r => r,
    }
}

/// Runs `top`; returns the exit code, having printed any error.
pub fn run(socket: &Path, args: &TopArgs) -> u8 {
    // The first reading before the terminal is touched: a daemon that is
    // not there is reported as by every other command.
    let first = match fetch(socket) {
        Ok(s) => s,
        Err(f) => {
            eprintln!("sluicectl: {}", f.message);
            return f.code;
        }
    };
    if args.once {
        let width = dimension(args.width, "COLUMNS", 80);
        let height = dimension(args.height, "LINES", 24);
        for l in frame::frame(&first, args.interval, false, width, height) {
            println!("{l}");
        }
        return 0;
    }
    if !std::io::stdout().is_terminal() {
        eprintln!("sluicectl: top needs a terminal on standard output; use top --once");
        return 2;
    }
    let result = match screen::Screen::take() {
        Ok(mut screen) => live(&mut screen, socket.to_path_buf(), args.interval, first),
        Err(e) => {
            eprintln!("sluicectl: top needs a terminal ({e}); use top --once");
            return 2;
        }
    };
    // The screen is dropped, the terminal restored: the message shows.
    match result {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("sluicectl: {}", f.message);
            f.code
        }
    }
}

fn is_quit(k: &KeyEvent) -> bool {
    k.kind != KeyEventKind::Release
        && match k.code {
            KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
            KeyCode::Char('c') | KeyCode::Char('C') => k.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// The refresh loop on a taken screen, until a quit key or a failure.
fn live(
    screen: &mut screen::Screen,
    socket: PathBuf,
    interval: Duration,
    first: Reading,
) -> Result<(), Failure> {
    let io_failure = |e: std::io::Error| Failure {
        code: 5,
        message: format!("cannot draw on the terminal: {e}"),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut next = Instant::now() + interval;
        loop {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += interval;
            let r = fetch_retrying(&socket);
            let failed = r.is_err();
            if tx.send(r).is_err() || failed {
                return;
            }
        }
    });
    let mut reading = first;
    let mut dirty = true;
    loop {
        match rx.try_recv() {
            Ok(Ok(s)) => {
                reading = s;
                dirty = true;
            }
            Ok(Err(f)) => return Err(f),
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                return Err(Failure {
                    code: 5,
                    message: "the refresh thread stopped".into(),
                })
            }
        }
        if dirty {
            let (w, h) = screen.size().map_err(io_failure)?;
            let lines = frame::frame(&reading, interval, true, w, h);
            screen.draw(&lines, h).map_err(io_failure)?;
            dirty = false;
        }
        if event::poll(Duration::from_millis(50)).map_err(io_failure)? {
            match event::read().map_err(io_failure)? {
                Event::Key(k) if is_quit(&k) => return Ok(()),
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("x").is_err());
        assert!(parse_interval("NaN").is_err());
    }

    #[test]
    fn quit_keys() {
        let k = |c, m| KeyEvent::new(c, m);
        assert!(is_quit(&k(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(is_quit(&k(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(is_quit(&k(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_quit(&k(KeyCode::Char('c'), KeyModifiers::NONE)));
    }

    #[test]
    fn dimensions() {
        assert_eq!(dimension(Some(100), "SLUICECTL_TEST_UNSET_VAR", 80), 100);
        assert_eq!(dimension(None, "SLUICECTL_TEST_UNSET_VAR", 80), 80);
    }
}
