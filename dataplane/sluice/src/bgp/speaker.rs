//! The thread that hands the announcements to BIRD, so that a slow or
//! absent BIRD never holds the control thread: it writes the include file
//! (atomically, so BIRD never reads half of it, and a BIRD that restarts
//! reads the latest), then asks BIRD to re-read its configuration, and
//! tries again every second until BIRD has taken it.

use super::birdc;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long after a failure the next try comes.
const RETRY: Duration = Duration::from_secs(1);
/// How often BIRD's reachability is looked at.
const PROBE: Duration = Duration::from_secs(2);

/// What the speaker last managed, for `sluicectl status`.
#[derive(Debug, Clone)]
pub struct SpeakerState {
    /// The text BIRD last took.
    pub applied: Option<String>,
    /// When.
    pub applied_at: Option<Instant>,
    /// The last failure, while the latest text is not taken.
    pub error: Option<String>,
    /// BIRD's greeting at the last look, or why it was not reachable.
    pub bird: Result<String, String>,
}

impl SpeakerState {
    fn new() -> SpeakerState {
        SpeakerState {
            applied: None,
            applied_at: None,
            error: None,
            bird: Err("not looked at yet".into()),
        }
    }
}

/// The speaker thread's handle.
pub struct Speaker {
    tx: Option<Sender<String>>,
    state: Arc<Mutex<SpeakerState>>,
    thread: Option<JoinHandle<()>>,
}

impl Speaker {
    /// Writes `first` to `file` now (so that a BIRD started after the
    /// daemon finds it), then starts the thread for BIRD at `socket`.
    pub fn start(socket: PathBuf, file: PathBuf, first: &str) -> std::io::Result<Speaker> {
        write_file(&file, first).map_err(std::io::Error::other)?;
        let (tx, rx) = unbounded();
        let state = Arc::new(Mutex::new(SpeakerState::new()));
        let s = state.clone();
        let thread = std::thread::Builder::new()
            .name("bgp".into())
            .spawn(move || run(&rx, &socket, &file, &s))?;
        Ok(Speaker {
            tx: Some(tx),
            state,
            thread: Some(thread),
        })
    }

    /// Asks for `text` to be BIRD's (the latest asked wins).
    pub fn set(&self, text: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(text);
        }
    }

    /// What the speaker last managed.
    pub fn state(&self) -> SpeakerState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (at most `limit`) until BIRD has taken `text`; whether it did.
    pub fn wait_applied(&self, text: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.state().applied.as_deref() == Some(text) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: &Receiver<String>, socket: &Path, file: &Path, state: &Mutex<SpeakerState>) {
    let mut want: Option<String> = None;
    let mut done = true;
    let mut next_try = Instant::now();
    let mut next_probe = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(t) => {
                let t = rx.try_iter().last().unwrap_or(t);
                if want.as_ref() != Some(&t) {
                    want = Some(t);
                    done = false;
                    next_try = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        if let (false, Some(text), true) = (done, &want, now >= next_try) {
            let r = apply(socket, file, text);
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            match r {
                Ok(()) => {
                    done = true;
                    s.applied = Some(text.clone());
                    s.applied_at = Some(Instant::now());
                    s.error = None;
                    info!("BIRD took the announcements");
                }
                Err(e) => {
                    if s.error.as_ref() != Some(&e) {
                        warn!("BIRD did not take the announcements (trying every second): {e}");
                    }
                    s.error = Some(e);
                    next_try = now + RETRY;
                }
            }
        }
        if now >= next_probe {
            next_probe = now + PROBE;
            let g = birdc::greeting(socket);
            state.lock().unwrap_or_else(|e| e.into_inner()).bird = g;
        }
    }
}

/// Writes `text` to `file` and makes BIRD re-read its configuration.
fn apply(socket: &Path, file: &Path, text: &str) -> Result<(), String> {
    write_file(file, text)?;
    birdc::configure(socket).map(|_| ())
}

/// Writes `text` to `file` through a temporary file and a rename.
fn write_file(file: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file).map_err(|e| format!("renaming to {}: {e}", file.display()))
}
