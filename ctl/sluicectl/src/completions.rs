//! `completions`: shell completion scripts generated from the command-line
//! definition.

use clap_complete::Shell;
use std::io::Write;

/// Writes the completion script for `shell` of the command `cmd` to `out`.
pub fn write(shell: Shell, cmd: &mut clap::Command, out: &mut dyn Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, cmd, name, out);
}
