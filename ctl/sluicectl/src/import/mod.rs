//! `sluicectl import`: an operator's LVS configuration, from `ipvsadm-save
//! -n` rules or a `keepalived.conf`, as `[[service]]` sections of Sluice's
//! configuration file. What cannot be carried over is never dropped
//! silently: each such thing is named with its line, as a comment at the
//! top of the output and on standard error.

mod ipvsadm;
mod keepalived;

use clap::Subcommand;
use serde::Serialize;
use sluice_proto::{SchedulerKind, ServiceKey, ServiceSpec};
use std::path::PathBuf;

/// Where the configuration comes from.
#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// `ipvsadm-save -n` rules, read from standard input (or FILE).
    Ipvsadm {
        /// The rules (default: standard input).
        file: Option<PathBuf>,
    },
    /// The `virtual_server` blocks of a keepalived configuration (its
    /// `include`s followed).
    Keepalived {
        /// keepalived.conf.
        file: PathBuf,
    },
}

/// Services read so far, and notes on what was not carried over.
#[derive(Debug, Default)]
pub struct Import {
    /// The services, in the order they were defined.
    pub services: Vec<ServiceSpec>,
    /// (line, what): things not carried over, or changed on the way.
    pub notes: Vec<(usize, String)>,
}

impl Import {
    fn note(&mut self, line: usize, what: String) {
        self.notes.push((line, what));
    }

    fn service_mut(&mut self, key: &ServiceKey) -> Option<&mut ServiceSpec> {
        self.services.iter_mut().find(|s| s.key() == *key)
    }

    /// The `[[service]]` sections, notes first as comments.
    pub fn to_toml(&self, source: &str) -> String {
        #[derive(Serialize)]
        struct Doc<'a> {
            service: &'a [ServiceSpec],
        }
        let mut out = format!(
            "# Imported from {source} by sluicectl import: {} service(s).\n",
            self.services.len()
        );
        for (line, what) in &self.notes {
            out.push_str(&format!("# line {line}: {what}\n"));
        }
        out.push('\n');
        match toml::to_string(&Doc {
            service: &self.services,
        }) {
            Ok(body) => out.push_str(&body),
            Err(e) => out.push_str(&format!("# cannot write the services: {e}\n")),
        }
        out
    }
}

/// Sluice's scheduler for LVS scheduler `name`; one Sluice lacks becomes
/// wlc, with a note.
fn scheduler(out: &mut Import, line: usize, name: &str) -> SchedulerKind {
    match name.to_ascii_lowercase().parse() {
        Ok(k) => k,
        Err(_) => {
            out.note(
                line,
                format!("scheduler {name:?} is not supported: wlc is used instead"),
            );
            SchedulerKind::default()
        }
    }
}

/// Runs the command: the TOML on standard output, the notes also on
/// standard error. An unreadable file is an error.
pub fn run(cmd: &ImportCmd) -> Result<String, String> {
    let (import, source) = match cmd {
        ImportCmd::Ipvsadm { file } => {
            let text = match file {
                Some(f) => {
                    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?
                }
                None => std::io::read_to_string(std::io::stdin())
                    .map_err(|e| format!("standard input: {e}"))?,
            };
            (ipvsadm::import(&text), "ipvsadm rules".to_string())
        }
        ImportCmd::Keepalived { file } => {
            (keepalived::import(file)?, format!("{}", file.display()))
        }
    };
    for (line, what) in &import.notes {
        eprintln!("sluicectl import: line {line}: {what}");
    }
    Ok(import.to_toml(&source))
}
