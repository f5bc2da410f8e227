//! Server-agent load feedback, compatible with HAProxy's `agent-check` text
//! protocol.
//!
//! Every agent interval the monitor connects to the agent's TCP port on the
//! real, writes the configured `send` string if any, and reads one line
//! ([`poll`]). The line is a list of words separated by commas and/or
//! spaces, case-insensitive, optionally followed by a `#` comment
//! ([`parse_agent_reply`]):
//!
//! | word              | effect                                                         |
//! |-------------------|----------------------------------------------------------------|
//! | `NN%`             | effective weight = NN % of the configured weight, 0..=256 (as HAProxy; integers only) |
//! | `up`              | operational state up (needs the health check to be up as well) |
//! | `down`            | operational state down: no traffic                              |
//! | `fail`, `stopped` | as `down` (reported as such)                                    |
//! | `ready`           | leave `drain` / `maint`                                         |
//! | `drain`           | weight 0: no new connections, existing ones continue           |
//! | `maint`           | maintenance: no traffic                                         |
//! | `maxconn:N`       | parsed and reported ([`AgentStatus::maxconn`]), not enforced    |
//!
//! Several words combine (`"up 75%"`, `"ready,50%"`); within one reply the
//! last word of each kind wins. Words persist across replies until changed,
//! as in HAProxy: a reply of only `50%` keeps a previous `drain`. The two
//! axes (operational up/down, administrative ready/drain/maint) fold into
//! one [`AgentAdmin`] with precedence `Maint` > `Down` > `Drain` > `Up`.
//!
//! An empty reply, or one with any unknown word, is rejected as a whole:
//! the error is recorded in [`AgentStatus::last_error`] and nothing of the
//! reply is applied. Failing to reach the agent is recorded the same way and
//! does not change the target's state (connectivity is the health check's
//! job, as in HAProxy).

use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

use crate::checks::{tcp, Deadline};

/// Largest accepted weight percentage (HAProxy's limit).
pub const MAX_WEIGHT_PERCENT: u32 = 256;
/// Most bytes read from an agent for one reply.
pub const MAX_REPLY: usize = 1024;

/// The operational-state word of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentOper {
    /// `up`.
    Up,
    /// `down`.
    Down,
    /// `fail`: treated as down.
    Fail,
    /// `stopped`: treated as down.
    Stopped,
}

/// The administrative-state word of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    /// `ready`: neither draining nor in maintenance.
    Ready,
    /// `drain`: weight 0, existing connections continue.
    Drain,
    /// `maint`: maintenance, no traffic.
    Maint,
}

/// What an agent currently asks for, both axes folded into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AgentAdmin {
    /// No state word received yet: no effect.
    #[default]
    None,
    /// Up (`up` or `ready`): no effect beyond the weight.
    Up,
    /// Down (`down`, `fail` or `stopped`): the target is unavailable.
    Down,
    /// Draining: the target stays available with effective weight 0.
    Drain,
    /// Maintenance: the target is unavailable.
    Maint,
}

impl AgentAdmin {
    /// `"none"`, `"up"`, `"down"`, `"drain"` or `"maint"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentAdmin::None => "none",
            AgentAdmin::Up => "up",
            AgentAdmin::Down => "down",
            AgentAdmin::Drain => "drain",
            AgentAdmin::Maint => "maint",
        }
    }

    /// Whether the agent lets the target take traffic at all (everything
    /// but `Down` and `Maint`).
    pub fn allows_traffic(self) -> bool {
        !matches!(self, AgentAdmin::Down | AgentAdmin::Maint)
    }
}

/// A parsed agent reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentReply {
    /// `NN%`: weight as a percentage of the configured weight.
    pub weight_percent: Option<u32>,
    /// `up`, `down`, `fail`, `stopped`.
    pub oper: Option<AgentOper>,
    /// `ready`, `drain`, `maint`.
    pub mode: Option<AgentMode>,
    /// `maxconn:N`.
    pub maxconn: Option<u32>,
    /// Text after `#`, trimmed, if any.
    pub comment: Option<String>,
}

/// Parses one agent reply line (see the [module docs](self)). Only the first
/// line is considered; a trailing `\r` is ignored.
pub fn parse_agent_reply(reply: &str) -> Result<AgentReply, String> {
    let line = reply.split('\n').next().unwrap_or("");
    let (words, comment) = match line.split_once('#') {
        Some((w, c)) => (w, Some(c.trim().to_string())),
        None => (line, None),
    };
    let mut out = AgentReply {
        comment,
        ..AgentReply::default()
    };
    let mut any = false;
    for word in words
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        any = true;
        let lower = word.to_ascii_lowercase();
        match lower.as_str() {
            "up" => out.oper = Some(AgentOper::Up),
            "down" => out.oper = Some(AgentOper::Down),
            "fail" => out.oper = Some(AgentOper::Fail),
            "stopped" => out.oper = Some(AgentOper::Stopped),
            "ready" => out.mode = Some(AgentMode::Ready),
            "drain" => out.mode = Some(AgentMode::Drain),
            "maint" => out.mode = Some(AgentMode::Maint),
            _ => {
                if let Some(pct) = lower.strip_suffix('%') {
                    out.weight_percent = Some(parse_percent(pct, word)?);
                } else if let Some(n) = lower.strip_prefix("maxconn:") {
                    let n = parse_digits(n).ok_or_else(|| format!("bad maxconn in {word:?}"))?;
                    out.maxconn = Some(n);
                } else {
                    return Err(format!("unknown word {:?}", truncate(word, 40)));
                }
            }
        }
    }
    if !any {
        return Err("empty reply".to_string());
    }
    Ok(out)
}

fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_percent(digits: &str, word: &str) -> Result<u32, String> {
    let pct =
        parse_digits(digits).ok_or_else(|| format!("bad percentage {:?}", truncate(word, 40)))?;
    if pct > MAX_WEIGHT_PERCENT {
        return Err(format!("percentage {word:?} above {MAX_WEIGHT_PERCENT}%"));
    }
    Ok(pct)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// What the monitor knows about a target's agent: the values in force
/// (from the replies applied so far) and the outcome of the latest poll.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    /// The last reply applied (its first line, trimmed). Unchanged by a
    /// failed poll or a rejected reply.
    pub last_reply: String,
    /// The weight percentage in force (`None`: none received, 100 % applies).
    pub weight_percent: Option<u32>,
    /// The folded administrative state in force.
    pub admin: AgentAdmin,
    /// The operational word in force.
    pub oper: Option<AgentOper>,
    /// The administrative word in force.
    pub mode: Option<AgentMode>,
    /// `maxconn:N` in force, reported only.
    pub maxconn: Option<u32>,
    /// The error of the latest poll (connect failure, timeout, rejected
    /// reply), cleared by the next good reply.
    pub last_error: Option<String>,
    /// When the latest poll finished.
    pub last_poll: Option<SystemTime>,
    /// Polls finished so far.
    pub polls: u64,
}

impl AgentStatus {
    /// Applies a parsed reply (`raw` is kept as [`last_reply`](Self::last_reply))
    /// and clears `last_error`.
    pub fn apply(&mut self, reply: &AgentReply, raw: &str) {
        if let Some(w) = reply.weight_percent {
            self.weight_percent = Some(w);
        }
        if let Some(o) = reply.oper {
            self.oper = Some(o);
        }
        if let Some(m) = reply.mode {
            self.mode = Some(m);
        }
        if let Some(m) = reply.maxconn {
            self.maxconn = Some(m);
        }
        self.admin = fold(self.oper, self.mode);
        self.last_reply = raw.lines().next().unwrap_or("").trim().to_string();
        self.last_error = None;
    }

    /// Parses and applies `raw`, or records the parse error and keeps the
    /// values in force.
    pub fn apply_raw(&mut self, raw: &str) {
        match parse_agent_reply(raw) {
            Ok(reply) => self.apply(&reply, raw),
            Err(e) => {
                let line = raw.lines().next().unwrap_or("").trim();
                self.last_error = Some(format!("rejected reply {:?}: {e}", truncate(line, 80)));
            }
        }
    }

    /// The effective weight as a percentage of the configured weight: 0
    /// while draining or while the agent holds the target out, else the
    /// agent's percentage, 100 if it sent none.
    pub fn effective_weight_percent(&self) -> u32 {
        match self.admin {
            AgentAdmin::Drain | AgentAdmin::Down | AgentAdmin::Maint => 0,
            AgentAdmin::None | AgentAdmin::Up => self.weight_percent.unwrap_or(100),
        }
    }
}

/// Folds the two axes: `Maint` > `Down` > `Drain` > `Up` > `None`.
fn fold(oper: Option<AgentOper>, mode: Option<AgentMode>) -> AgentAdmin {
    match (oper, mode) {
        (_, Some(AgentMode::Maint)) => AgentAdmin::Maint,
        (Some(AgentOper::Down | AgentOper::Fail | AgentOper::Stopped), _) => AgentAdmin::Down,
        (_, Some(AgentMode::Drain)) => AgentAdmin::Drain,
        (Some(AgentOper::Up), _) | (_, Some(AgentMode::Ready)) => AgentAdmin::Up,
        (None, None) => AgentAdmin::None,
    }
}

/// Polls the agent at `addr` once: connect, write `send` if any, read up to
/// [`MAX_REPLY`] bytes until a newline or the agent closes, all within
/// `deadline`. Returns the reply text (lossy UTF-8).
pub fn poll(addr: SocketAddr, send: Option<&str>, deadline: &Deadline) -> Result<String, String> {
    let mut stream = tcp::connect(addr, deadline)?;
    if let Some(send) = send.filter(|s| !s.is_empty()) {
        tcp::send(&mut stream, send.as_bytes(), deadline)?;
    }
    let mut buf = Vec::with_capacity(128);
    while !buf.contains(&b'\n') && buf.len() < MAX_REPLY {
        if tcp::read_some(&mut stream, &mut buf, deadline, "read")? == 0 {
            break;
        }
    }
    if buf.is_empty() {
        return Err("agent closed the connection without a reply".to_string());
    }
    buf.truncate(MAX_REPLY);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AgentReply {
        parse_agent_reply(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn percentages() {
        assert_eq!(p("75%").weight_percent, Some(75));
        assert_eq!(p("75%\n").weight_percent, Some(75));
        assert_eq!(p("75%\r\n").weight_percent, Some(75));
        assert_eq!(p("  0%  ").weight_percent, Some(0));
        assert_eq!(p("100%").weight_percent, Some(100));
        assert_eq!(p("256%").weight_percent, Some(256));
        assert_eq!(p("007%").weight_percent, Some(7));
        for bad in [
            "257%",
            "%",
            "-5%",
            "7.5%",
            "x%",
            "99999999999%",
            "75",
            "75 %",
        ] {
            assert!(parse_agent_reply(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn words() {
        assert_eq!(p("drain").mode, Some(AgentMode::Drain));
        assert_eq!(p("MAINT").mode, Some(AgentMode::Maint));
        assert_eq!(p("Ready").mode, Some(AgentMode::Ready));
        assert_eq!(p("up").oper, Some(AgentOper::Up));
        assert_eq!(p("down").oper, Some(AgentOper::Down));
        assert_eq!(p("fail").oper, Some(AgentOper::Fail));
        assert_eq!(p("stopped").oper, Some(AgentOper::Stopped));
        assert_eq!(p("maxconn:30").maxconn, Some(30));
        assert!(parse_agent_reply("maxconn:").is_err());
        assert!(parse_agent_reply("maxconn:x").is_err());
    }

    #[test]
    fn combinations_and_comments() {
        let r = p("up 75%");
        assert_eq!((r.oper, r.weight_percent), (Some(AgentOper::Up), Some(75)));
        let r = p("ready,50%");
        assert_eq!(
            (r.mode, r.weight_percent),
            (Some(AgentMode::Ready), Some(50))
        );
        let r = p("up, ready ,\t 10% maxconn:5 # all fine");
        assert_eq!(r.oper, Some(AgentOper::Up));
        assert_eq!(r.mode, Some(AgentMode::Ready));
        assert_eq!(r.weight_percent, Some(10));
        assert_eq!(r.maxconn, Some(5));
        assert_eq!(r.comment.as_deref(), Some("all fine"));
        // Last word of a kind wins.
        let r = p("down up 10% 20%");
        assert_eq!((r.oper, r.weight_percent), (Some(AgentOper::Up), Some(20)));
        // Only the first line counts.
        assert_eq!(p("50%\ngarbage").weight_percent, Some(50));
        let r = p("drain#");
        assert_eq!(
            (r.mode, r.comment.as_deref()),
            (Some(AgentMode::Drain), Some(""))
        );
    }

    #[test]
    fn garbage_rejected() {
        for bad in [
            "",
            "   ",
            "\n",
            ",,,",
            "# only a comment",
            "hello",
            "up sideways",
            "75% banana",
            "HTTP/1.1 200 OK",
            "<html>",
            "upp",
            "\u{0}",
        ] {
            assert!(parse_agent_reply(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_agent_reply("").unwrap_err(), "empty reply");
        assert!(parse_agent_reply("up sideways")
            .unwrap_err()
            .contains("\"sideways\""));
    }

    #[test]
    fn status_persistence_and_folding() {
        let mut s = AgentStatus::default();
        assert_eq!(s.admin, AgentAdmin::None);
        assert_eq!(s.effective_weight_percent(), 100);
        s.apply_raw("75%\n");
        assert_eq!((s.weight_percent, s.admin), (Some(75), AgentAdmin::None));
        assert_eq!(s.last_reply, "75%");
        assert_eq!(s.effective_weight_percent(), 75);
        s.apply_raw("drain");
        assert_eq!((s.weight_percent, s.admin), (Some(75), AgentAdmin::Drain));
        assert_eq!(s.effective_weight_percent(), 0);
        assert!(s.admin.allows_traffic());
        // A percentage alone keeps drain.
        s.apply_raw("50%");
        assert_eq!(s.admin, AgentAdmin::Drain);
        s.apply_raw("ready");
        assert_eq!(
            (s.admin, s.effective_weight_percent()),
            (AgentAdmin::Up, 50)
        );
        s.apply_raw("maint");
        assert!(!s.admin.allows_traffic());
        s.apply_raw("down");
        assert_eq!(s.admin, AgentAdmin::Maint, "maint outranks down");
        s.apply_raw("ready");
        assert_eq!(s.admin, AgentAdmin::Down, "ready does not clear down");
        s.apply_raw("up");
        assert_eq!(s.admin, AgentAdmin::Up);
        // Garbage: recorded, nothing applied.
        let before = s.clone();
        s.apply_raw("what is this\n");
        assert_eq!(
            s.last_error.as_deref(),
            Some("rejected reply \"what is this\": unknown word \"what\"")
        );
        assert_eq!(
            AgentStatus {
                last_error: None,
                ..s.clone()
            },
            before
        );
        s.apply_raw("up");
        assert_eq!(s.last_error, None);
    }

    #[test]
    fn fold_precedence() {
        use AgentMode::*;
        use AgentOper::*;
        assert_eq!(fold(None, None), AgentAdmin::None);
        assert_eq!(fold(Some(Up), None), AgentAdmin::Up);
        assert_eq!(fold(None, Some(Ready)), AgentAdmin::Up);
        assert_eq!(fold(Some(Up), Some(Drain)), AgentAdmin::Drain);
        assert_eq!(fold(Some(Fail), Some(Drain)), AgentAdmin::Down);
        assert_eq!(fold(Some(Stopped), Some(Ready)), AgentAdmin::Down);
        assert_eq!(fold(Some(Down), Some(Maint)), AgentAdmin::Maint);
    }
}
