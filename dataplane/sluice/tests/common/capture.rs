//! tshark in a namespace: capture to a file, then read fields back with
//! checksums verified.

use super::topo::Proc;
use super::*;
use std::io::{BufRead, BufReader};

/// tshark capturing on every interface of a namespace into a file.
pub struct Capture {
    proc: Proc,
    file: std::path::PathBuf,
}

impl Capture {
    /// Starts capturing what matches capture filter `filter`; returns
    /// once tshark captures.
    pub fn start(ns: &Netns, filter: &str, file: std::path::PathBuf) -> Capture {
        let mut child = ns
            .command(&[
                "timeout",
                "300",
                "tshark",
                "-n",
                "-i",
                "any",
                "-f",
                filter,
                "-w",
                file.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark (apt install tshark)");
        // tshark says "Capturing on 'any'" once the capture runs.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        for _ in 0..20 {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            if line.contains("Capturing on") {
                std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
                return Capture {
                    proc: Proc(child),
                    file,
                };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tshark did not start capturing: {seen}");
    }

    /// Stops the capture cleanly (SIGINT flushes the file).
    pub fn stop(mut self) -> std::path::PathBuf {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.proc.0.id().to_string()])
            .status();
        let done = wait_for(Duration::from_secs(20), || {
            self.proc.0.try_wait().ok().flatten().map(|_| ())
        });
        assert!(done.is_some(), "tshark did not stop");
        self.file.clone()
    }
}

/// Fields of the packets of capture `file` that match display filter
/// `filter`, one line per packet.
pub fn tshark_fields(file: &std::path::Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut args = vec![
        "tshark",
        "-n",
        "-r",
        file.to_str().unwrap(),
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-Y",
        filter,
        "-T",
        "fields",
    ];
    for f in fields {
        args.push("-e");
        args.push(f);
    }
    let o = run(&args, Duration::from_secs(60));
    assert!(
        o.status.success(),
        "tshark -r failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
