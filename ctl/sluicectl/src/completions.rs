//! `completions`: shell completion scripts, and (hidden, for packaging)
//! `man`: the manual page, both generated from the command-line
//! definition.

use clap_complete::Shell;
use std::io::Write;

/// Writes the completion script for `shell` of the command `cmd` to `out`.
pub fn write(shell: Shell, cmd: &mut clap::Command, out: &mut dyn Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, cmd, name, out);
}

/// Writes the manual page of `cmd` (section 8) in roff to `out`.
pub fn man(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(cmd).section("8").render(out)
}
