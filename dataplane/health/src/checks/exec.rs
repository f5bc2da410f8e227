//! `exec` check: run an external command; exit status 0 is up.
//!
//! The command is run directly from its argv (no shell; use
//! `["/bin/sh", "-c", "..."]` for one), with stdin, stdout and stderr on
//! `/dev/null`, in a process group of its own, with the daemon's
//! environment plus:
//!
//! | variable            | value                                  |
//! |---------------------|----------------------------------------|
//! | `SLUICE_REAL_IP`    | the real's address (IPv4 or IPv6)      |
//! | `SLUICE_REAL_PORT`  | the real's port                        |
//! | `SLUICE_CHECK_PORT` | the check port (`port`, else the real's) |
//! | `SLUICE_VIP`        | the virtual service's address          |
//! | `SLUICE_VPORT`      | the virtual service's port             |
//! | `SLUICE_TIMEOUT_MS` | the check's timeout in milliseconds    |
//!
//! A command still running at the timeout fails the check and is killed:
//! `SIGKILL` to its whole process group (so `sh -c` wrappers take their
//! children with them; done by running `kill -s KILL -- -PGID`, as this
//! crate has no unsafe code to call `kill(2)` itself) and to the child, then
//! the child is reaped. Descendants that left the group (e.g. daemonized)
//! are not tracked.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{CheckContext, Deadline};
use std::os::unix::process::{CommandExt, ExitStatusExt};

/// The `SLUICE_*` environment of a check on `ctx`.
pub fn env_for(ctx: &CheckContext) -> Vec<(String, String)> {
    vec![
        ("SLUICE_REAL_IP".into(), ctx.real.ip().to_string()),
        ("SLUICE_REAL_PORT".into(), ctx.real.port().to_string()),
        ("SLUICE_CHECK_PORT".into(), ctx.addr.port().to_string()),
        ("SLUICE_VIP".into(), ctx.vip.ip().to_string()),
        ("SLUICE_VPORT".into(), ctx.vip.port().to_string()),
        (
            "SLUICE_TIMEOUT_MS".into(),
            ctx.timeout.as_millis().to_string(),
        ),
    ]
}

/// Runs `argv` with `env` added, waits for it until the deadline (or until
/// `cancel` is set), and kills it past that.
pub fn check(
    argv: &[String],
    env: &[(String, String)],
    deadline: &Deadline,
    cancel: Option<&AtomicBool>,
) -> Result<String, String> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| "empty command".to_string())?;
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        // systemd's notification and watchdog variables are the daemon's,
        // not a check script's to answer.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawn {program:?}: {e}"))?;
    let mut step = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return describe(status),
            Ok(None) => {}
            Err(e) => {
                kill(&mut child);
                return Err(format!("wait: {e}"));
            }
        }
        let cancelled = cancel.is_some_and(|c| c.load(Ordering::Relaxed));
        let left = match deadline.remaining() {
            Ok(left) if !cancelled => left,
            _ => {
                let pid = child.id();
                kill(&mut child);
                return Err(if cancelled {
                    format!("cancelled; killed pid {pid}")
                } else {
                    format!(
                        "timeout after {} ms; killed pid {pid}",
                        deadline.timeout().as_millis()
                    )
                });
            }
        };
        std::thread::sleep(step.min(left));
        step = (step * 2).min(Duration::from_millis(20));
    }
}

fn describe(status: ExitStatus) -> Result<String, String> {
    if status.success() {
        Ok("exit status 0".to_string())
    } else if let Some(code) = status.code() {
        Err(format!("exit status {code}"))
    } else if let Some(sig) = status.signal() {
        Err(format!("killed by signal {sig}"))
    } else {
        Err(format!("{status}"))
    }
}

/// Kills the child's process group and the child, and reaps the child. The
/// group is signalled before the reap, while its id cannot have been reused.
fn kill(child: &mut Child) {
    let pgid = child.id();
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}
