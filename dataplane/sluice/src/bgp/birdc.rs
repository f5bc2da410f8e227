//! BIRD's control socket, as `birdc` speaks it: a greeting (`0001 BIRD
//! 2.0.12 ready.`), then for each command lines of `CODE-text` (more
//! follow), ` text` (continuation) and a last `CODE text`. Codes 8000 and
//! up are errors (8xxx run-time, 9xxx parse).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long one exchange may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Connects to BIRD and returns its greeting's text (its version).
fn connect(socket: &Path) -> Result<(BufReader<UnixStream>, String), String> {
    let s = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach BIRD at {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let (code, text) = reply(&mut r)?;
    if code != 1 {
        return Err(format!("unexpected greeting from BIRD: {code:04} {text}"));
    }
    Ok((r, text))
}

/// Reads one reply: its last code and all its text.
fn reply(r: &mut BufReader<UnixStream>) -> Result<(u32, String), String> {
    let mut text = String::new();
    for _ in 0..10_000 {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return Err("BIRD closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading from BIRD: {e}")),
        }
        let line = line.trim_end_matches('\n');
        let (code, last, rest) = match parse_line(line) {
            Some(x) => x,
            None => (0, false, line.trim_start()),
        };
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(rest);
        if last {
            return Ok((code, text));
        }
    }
    Err("BIRD's reply did not end".into())
}

/// `CODE-text` or `CODE text`: the code, whether it is the last line, the
/// text.
fn parse_line(line: &str) -> Option<(u32, bool, &str)> {
    let b = line.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = line[..4].parse().ok()?;
    match b[4] {
        b' ' => Some((code, true, &line[5..])),
        b'-' => Some((code, false, &line[5..])),
        _ => None,
    }
}

/// Sends `command` and returns the reply's text; an error reply is an
/// error.
fn command(socket: &Path, command: &str) -> Result<String, String> {
    let (mut r, _) = connect(socket)?;
    r.get_mut()
        .write_all(format!("{command}\n").as_bytes())
        .map_err(|e| format!("writing to BIRD: {e}"))?;
    let (code, text) = reply(&mut r)?;
    if code >= 8000 {
        return Err(format!("BIRD refused `{command}`: {text}"));
    }
    Ok(text)
}

/// Makes BIRD re-read its configuration (and with it the include file).
pub fn configure(socket: &Path) -> Result<String, String> {
    command(socket, "configure")
}

/// BIRD's greeting (its version), when it is reachable.
pub fn greeting(socket: &Path) -> Result<String, String> {
    connect(socket).map(|(_, g)| g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A stand-in BIRD that answers one connection with `answer`.
    fn fake(answer: &'static str) -> (tempfile_dir::Dir, std::thread::JoinHandle<String>) {
        let dir = tempfile_dir::Dir::new();
        let path = dir.0.join("bird.ctl");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"0001 BIRD 2.0.12 ready.\n").unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut cmd = String::new();
            r.read_line(&mut cmd).unwrap();
            s.write_all(answer.as_bytes()).unwrap();
            cmd
        });
        (dir, h)
    }

    mod tempfile_dir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "sluice-birdc-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn configure_reads_the_whole_reply() {
        let (d, h) =
            fake("0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n");
        let t = configure(&d.0.join("bird.ctl")).unwrap();
        assert_eq!(h.join().unwrap(), "configure\n");
        assert_eq!(
            t,
            "Reading configuration from /etc/bird/bird.conf\nReconfigured"
        );
    }

    #[test]
    fn an_error_reply_is_an_error() {
        let (d, h) = fake("0002-Reading configuration from /etc/bird/bird.conf\n8002 /run/sluice/bird.conf:3:1 syntax error\n");
        let e = configure(&d.0.join("bird.ctl")).unwrap_err();
        h.join().unwrap();
        assert!(e.contains("syntax error"), "{e}");
    }

    #[test]
    fn no_bird_is_an_error_not_a_hang() {
        let d = tempfile_dir::Dir::new();
        let e = configure(&d.0.join("bird.ctl")).unwrap_err();
        assert!(e.contains("cannot reach BIRD"), "{e}");
        assert_eq!(
            parse_line("0001 BIRD ready."),
            Some((1, true, "BIRD ready."))
        );
        assert_eq!(parse_line(" continued"), None);
    }
}
