//! `restore`'s input: a configuration file's text, from a file or from
//! standard input. (`save` and `reload` need nothing beyond their command.)

use clap::Args;
use sluice_proto::Command;
use std::io::Read;
use std::path::PathBuf;

/// Options of `restore`.
#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The configuration file (as `save` prints it); `-` reads standard
    /// input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

impl RestoreArgs {
    /// Reads the file and builds the request; the error is for the
    /// operator (exit 2).
    pub fn into_command(self) -> Result<Command, String> {
        let config = if self.file.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read the configuration from standard input: {e}"))?;
            s
        } else {
            std::fs::read_to_string(&self.file)
                .map_err(|e| format!("cannot read {}: {e}", self.file.display()))?
        };
        Ok(Command::Restore { config })
    }
}
