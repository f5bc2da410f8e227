//! The `virtual_server` blocks of a keepalived configuration as services.
//!
//! Carried over: the address and port, `protocol`, `lb_algo`/`lvs_sched`,
//! `lb_kind`/`lvs_method`, `persistence_timeout`,
//! `persistence_granularity`, `delay_loop` (the checks' interval), and per
//! `real_server`: `weight`, `inhibit_on_failure` (Sluice keeps a failed
//! real configured and takes it out of scheduling anyway) and one checker:
//! `TCP_CHECK`, `HTTP_GET` (`url { path status_code }`), `MISC_CHECK`
//! (`misc_path`, `misc_timeout`), with `connect_port`, `connect_timeout`
//! and `retry`. `include` is followed (relative to the including file; no
//! wildcards). Everything else inside a virtual server is named with its
//! file and line: firewall-mark and group virtual servers, GRE tunnels,
//! `sorry_server`, quorum settings, HTTPS, SMTP, DNS, ping and UDP
//! checkers, a URL's `digest`, and a second checker on one real. Blocks
//! outside virtual servers (VRRP, global settings) are not the load
//! balancer's and are skipped without a word.

use super::{scheduler, Import};
use sluice_proto::{
    CheckKind, CheckSpec, Forward, Persistence, Protocol, RealSpec, ServiceSpec, StatusMatch,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Includes followed at most this deep (a loop is refused).
const MAX_INCLUDE_DEPTH: usize = 8;

/// A word of the file, where it stands.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    line: usize,
    file: usize,
}

/// One statement: a keyword, its arguments, and the block it opens.
#[derive(Debug)]
struct Node {
    key: String,
    args: Vec<String>,
    line: usize,
    file: usize,
    block: Vec<Node>,
}

/// Reads `path` and what it includes.
pub fn import(path: &Path) -> Result<Import, String> {
    let mut files = Vec::new();
    let mut tokens = Vec::new();
    let mut out = Import::default();
    read(path, 0, &mut files, &mut tokens, &mut out)?;
    let nodes = parse(&tokens, &mut 0);
    let mut r = Reader { out, files };
    for n in &nodes {
        r.top(n);
    }
    Ok(r.out)
}

/// Splits `path` into tokens (following `include`), recording the file.
fn read(
    path: &Path,
    depth: usize,
    files: &mut Vec<PathBuf>,
    tokens: &mut Vec<Token>,
    out: &mut Import,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = files.len();
    files.push(path.to_path_buf());
    for (n, line) in text.lines().enumerate() {
        let words = split(line);
        if words.first().map(String::as_str) == Some("include") {
            let Some(inc) = words.get(1) else {
                out.note(n + 1, format!("{}: include without a file", path.display()));
                continue;
            };
            if inc.contains(['*', '?', '[']) || depth >= MAX_INCLUDE_DEPTH {
                out.note(
                    n + 1,
                    format!(
                        "{}: include {inc:?} (wildcards, or nested too deep) is not followed",
                        path.display()
                    ),
                );
                continue;
            }
            let base = path.parent().unwrap_or(Path::new("."));
            read(&base.join(inc), depth + 1, files, tokens, out)?;
            continue;
        }
        for w in words {
            tokens.push(Token {
                text: w,
                line: n + 1,
                file,
            });
        }
    }
    Ok(())
}

/// The words of a line: comments (`#`, `!`) cut, braces apart, quoted
/// strings kept whole.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                if quoted {
                    words.push(std::mem::take(&mut cur));
                }
                quoted = !quoted;
            }
            _ if quoted => cur.push(c),
            '#' | '!' => break,
            '{' | '}' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                words.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Statements from `tokens[*i..]` up to a closing brace (consumed) or the
/// end: a keyword takes the words on its line, and a `{` (on that line or
/// the next token) opens its block.
fn parse(tokens: &[Token], i: &mut usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    while *i < tokens.len() {
        let t = &tokens[*i];
        *i += 1;
        match t.text.as_str() {
            "}" => return nodes,
            "{" => {
                // A block with no keyword: read and dropped.
                parse(tokens, i);
                continue;
            }
            _ => {}
        }
        let mut node = Node {
            key: t.text.clone(),
            args: Vec::new(),
            line: t.line,
            file: t.file,
            block: Vec::new(),
        };
        while let Some(a) = tokens.get(*i) {
            if a.text == "{" {
                *i += 1;
                node.block = parse(tokens, i);
                break;
            }
            if a.text == "}" || a.line != t.line || a.file != t.file {
                break;
            }
            node.args.push(a.text.clone());
            *i += 1;
        }
        nodes.push(node);
    }
    nodes
}

struct Reader {
    out: Import,
    files: Vec<PathBuf>,
}

/// What a virtual server says about its reals and checks.
#[derive(Clone, Copy)]
struct Settings {
    forward: Option<Forward>,
    interval_ms: Option<u64>,
}

impl Reader {
    fn note(&mut self, n: &Node, what: String) {
        let what = if n.file == 0 {
            what
        } else {
            format!("{}: {what}", self.files[n.file].display())
        };
        self.out.note(n.line, what);
    }

    fn top(&mut self, n: &Node) {
        match n.key.as_str() {
            "virtual_server" => self.virtual_server(n),
            "virtual_server_group" => self.note(
                n,
                "virtual_server_group is not supported: its virtual servers are skipped".into(),
            ),
            _ => {}
        }
    }

    fn virtual_server(&mut self, n: &Node) {
        let (ip, port) = match n.args.as_slice() {
            [ip, port] if ip != "fwmark" && ip != "group" => {
                (ip.parse::<IpAddr>(), port.parse::<u16>())
            }
            [kind, _] => {
                return self.note(
                    n,
                    format!("virtual_server {kind} is not supported: skipped"),
                )
            }
            _ => {
                return self.note(
                    n,
                    "virtual_server without an address and port: skipped".into(),
                )
            }
        };
        let (Ok(ip), Ok(port)) = (ip, port) else {
            return self.note(
                n,
                format!(
                    "virtual_server {:?}: not an address and port: skipped",
                    n.args
                ),
            );
        };
        let mut spec = ServiceSpec::new(Protocol::Tcp, ip, port);
        let mut set = Settings {
            forward: Some(Forward::Nat),
            interval_ms: None,
        };
        let mut timeout = None;
        let mut granularity = None;
        for s in &n.block {
            let arg = s.args.first().map(String::as_str).unwrap_or("");
            match s.key.as_str() {
                "protocol" => match arg.to_ascii_uppercase().as_str() {
                    "TCP" => spec.protocol = Protocol::Tcp,
                    "UDP" => spec.protocol = Protocol::Udp,
                    other => {
                        return self.note(
                            s,
                            format!("protocol {other} is not supported: virtual server skipped"),
                        )
                    }
                },
                "lb_algo" | "lvs_sched" => spec.scheduler = scheduler(&mut self.out, s.line, arg),
                "lb_kind" | "lvs_method" => {
                    set.forward = match arg.to_ascii_uppercase().as_str() {
                        "NAT" => Some(Forward::Nat),
                        "DR" => Some(Forward::Dr),
                        // DPVS's keepalived: full NAT.
                        "FNAT" => Some(Forward::FullNat),
                        // `lvs_method TUN [type ipip|gue|gre [port N]]`
                        "TUN" => match s.args.get(2).map(|t| t.to_ascii_lowercase()) {
                            None if s.args.len() == 1 => Some(Forward::Ipip),
                            Some(t) if t == "ipip" => Some(Forward::Ipip),
                            Some(t) if t == "gue" => {
                                if s.args.len() > 3 {
                                    self.note(
                                        s,
                                        "a GUE port per virtual server: Sluice has one, \
                                         [tunnel] gue_port (6080 unless set)"
                                            .to_string(),
                                    );
                                }
                                Some(Forward::Gue)
                            }
                            _ => {
                                self.note(
                                    s,
                                    format!(
                                        "lb_kind {}: only ipip and gue tunnels are supported: \
                                         its reals are skipped",
                                        s.args.join(" ")
                                    ),
                                );
                                None
                            }
                        },
                        other => {
                            self.note(
                                s,
                                format!("lb_kind {other} is not supported: its reals are skipped"),
                            );
                            None
                        }
                    }
                }
                "persistence_timeout" => timeout = arg.parse::<u32>().ok().filter(|t| *t > 0),
                "persistence_granularity" => granularity = crate::verbs::parse_netmask(arg).ok(),
                "delay_loop" => set.interval_ms = arg.parse::<u64>().ok().map(|s| s * 1000),
                "real_server" => {}
                "laddr_group_name" => self.note(
                    s,
                    format!(
                        "laddr_group_name {arg}: DPVS's local address groups are not read; \
                         list the group's addresses in the service's local_addresses"
                    ),
                ),
                other => self.note(s, format!("{other} is not supported: ignored")),
            }
        }
        if let Some(timeout_secs) = timeout {
            spec.persistence = Some(Persistence {
                timeout_secs,
                netmask: granularity,
            });
        }
        for s in n.block.iter().filter(|s| s.key == "real_server") {
            if let Some(r) = self.real_server(s, port, set) {
                spec.reals.push(r);
            }
        }
        self.out.services.push(spec);
    }

    fn real_server(&mut self, n: &Node, vport: u16, set: Settings) -> Option<RealSpec> {
        let [ip, port] = n.args.as_slice() else {
            self.note(n, "real_server without an address and port: skipped".into());
            return None;
        };
        let (Ok(ip), Ok(port)) = (ip.parse::<IpAddr>(), port.parse::<u16>()) else {
            self.note(
                n,
                format!("real_server {ip} {port}: not an address and port: skipped"),
            );
            return None;
        };
        let forward = set.forward?;
        let keeps_port = forward.answers_directly();
        let mut real = RealSpec::new(ip, if keeps_port { vport } else { port });
        real.forward = forward;
        if keeps_port && port != vport {
            let how = if forward == Forward::Dr {
                "direct routing"
            } else {
                "a tunnel"
            };
            self.note(
                n,
                format!("real_server {ip} {port}: {how} keeps the port, {vport}"),
            );
        }
        for s in &n.block {
            let arg = s.args.first().map(String::as_str).unwrap_or("");
            match s.key.as_str() {
                "weight" => real.weight = arg.parse().unwrap_or(1),
                "inhibit_on_failure" => {}
                "TCP_CHECK" | "HTTP_GET" | "MISC_CHECK" if real.check.is_some() => self.note(
                    s,
                    format!(
                        "a second checker ({}) on one real is not supported: ignored",
                        s.key
                    ),
                ),
                "TCP_CHECK" | "HTTP_GET" | "MISC_CHECK" => real.check = self.checker(s, set),
                other => self.note(s, format!("{other} is not supported: ignored")),
            }
        }
        Some(real)
    }

    /// A checker block as a check, or None (noted) when it cannot be one.
    fn checker(&mut self, n: &Node, set: Settings) -> Option<CheckSpec> {
        let kind = match n.key.as_str() {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" => CheckKind::Http,
            _ => CheckKind::Exec,
        };
        let mut c = CheckSpec::new(kind);
        if let Some(i) = set.interval_ms {
            c.interval_ms = i;
        }
        for s in &n.block {
            let arg = s.args.first().map(String::as_str).unwrap_or("");
            match s.key.as_str() {
                "connect_port" => c.port = arg.parse().ok(),
                "connect_timeout" | "misc_timeout" => {
                    if let Ok(t) = arg.parse::<u64>() {
                        c.timeout_ms = t * 1000;
                    }
                }
                "retry" | "nb_get_retry" => {
                    if let Ok(r) = arg.parse::<u32>() {
                        c.fall = r.max(1);
                    }
                }
                "delay_before_retry" => {}
                "url" if c.path.is_some() => self.note(
                    s,
                    "a second url is not supported: the first is checked".into(),
                ),
                "url" => self.url(s, &mut c),
                "misc_path" => c.command = Some(arg.split_whitespace().map(String::from).collect()),
                other => self.note(s, format!("{} {other} is not supported: ignored", n.key)),
            }
        }
        if kind == CheckKind::Exec && c.command.is_none() {
            self.note(n, "MISC_CHECK without misc_path: no check".into());
            return None;
        }
        Some(c)
    }

    fn url(&mut self, n: &Node, c: &mut CheckSpec) {
        for s in &n.block {
            let arg = s.args.first().cloned().unwrap_or_default();
            match s.key.as_str() {
                "path" => c.path = Some(arg),
                "status_code" => match StatusMatch::parse(&arg) {
                    Ok(m) => c.expect_status = Some(m),
                    Err(e) => self.note(s, format!("status_code {arg}: {}", e.0)),
                },
                other => self.note(s, format!("url {other} is not supported: ignored")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import_text(text: &str) -> Import {
        let dir = std::env::temp_dir().join(format!("sluicectl-ka-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join(format!("k{}.conf", text.len()));
        std::fs::write(&f, text).unwrap();
        let i = import(&f).unwrap();
        std::fs::remove_file(&f).unwrap();
        i
    }

    #[test]
    fn virtual_servers_with_checkers() {
        let i = import_text(
            r#"! a comment
global_defs { router_id X }
vrrp_instance VI_1 { interface eth0 }
virtual_server 192.0.2.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol TCP
    sorry_server 192.0.2.200 80
    real_server 198.51.100.11 8080 {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url { path /health
                  digest 640205b7b0fc66c1ea91c463fac6334d
                  status_code 200 }
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
        TCP_CHECK { connect_port 8080 }
    }
    real_server 198.51.100.12 8080 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh arg1"
            misc_timeout 5
        }
    }
}
virtual_server fwmark 1 { lb_algo rr }
virtual_server 192.0.2.101 53 {
    protocol UDP
    lb_kind DR
    lb_algo lblc
    real_server 192.0.2.21 5353 { weight 1 }
}
"#,
        );
        assert_eq!(i.services.len(), 2, "{:?}", i.notes);
        let web = &i.services[0];
        assert_eq!(web.key().to_string(), "tcp 192.0.2.100:80");
        assert_eq!(web.scheduler.to_string(), "wrr");
        assert_eq!(
            web.persistence,
            Some(Persistence {
                timeout_secs: 50,
                netmask: Some(24)
            })
        );
        let r = &web.reals[0];
        assert_eq!((r.weight, r.port, r.forward), (3, 8080, Forward::Nat));
        let c = r.check.as_ref().unwrap();
        assert_eq!(
            (
                c.kind,
                c.path.as_deref(),
                c.timeout_ms,
                c.fall,
                c.interval_ms
            ),
            (CheckKind::Http, Some("/health"), 3000, 3, 6000)
        );
        assert_eq!(c.expect_status.as_ref().unwrap().to_string(), "200");
        let m = web.reals[1].check.as_ref().unwrap();
        assert_eq!(
            m.command.as_deref(),
            Some(&["/usr/local/bin/check.sh".to_string(), "arg1".into()][..])
        );
        assert_eq!(m.timeout_ms, 5000);
        let dns = &i.services[1];
        assert_eq!(
            (dns.protocol, dns.reals[0].forward, dns.reals[0].port),
            (Protocol::Udp, Forward::Dr, 53)
        );
        let notes: Vec<String> = i.notes.iter().map(|(l, w)| format!("{l}: {w}")).collect();
        for want in [
            "11: sorry_server is not supported",
            "17: url digest is not supported",
            "23: a second checker (TCP_CHECK)",
            "32: virtual_server fwmark is not supported",
            "36: scheduler \"lblc\" is not supported",
            "37: real_server 192.0.2.21 5353: direct routing keeps the port, 53",
        ] {
            assert!(
                notes.iter().any(|n| n.starts_with(want)),
                "{want} in {notes:#?}"
            );
        }
        assert_eq!(notes.len(), 6, "{notes:#?}");
    }

    /// `lvs_method TUN` is IP-in-IP, `TUN type gue` GUE; GRE is named and
    /// its reals skipped.
    #[test]
    fn tunnels() {
        let i = import_text(
            r#"virtual_server 192.0.2.100 80 {
    lb_kind TUN
    real_server 203.0.113.11 80 { weight 1 }
}
virtual_server 192.0.2.100 443 {
    lvs_method TUN type gue port 5555
    real_server 203.0.113.12 8443 { weight 1 }
}
virtual_server 192.0.2.100 53 {
    lvs_method TUN type gre
    real_server 203.0.113.13 53 { weight 1 }
}
"#,
        );
        let forwards: Vec<Vec<Forward>> = i
            .services
            .iter()
            .map(|s| s.reals.iter().map(|r| r.forward).collect())
            .collect();
        assert_eq!(
            forwards,
            [vec![Forward::Ipip], vec![Forward::Gue], vec![]],
            "{:?}",
            i.notes
        );
        assert_eq!(i.services[1].reals[0].port, 443);
        let notes: Vec<String> = i.notes.iter().map(|(l, w)| format!("{l}: {w}")).collect();
        for want in [
            "6: a GUE port per virtual server",
            "7: real_server 203.0.113.12 8443: a tunnel keeps the port, 443",
            "10: lb_kind TUN type gre: only ipip and gue",
        ] {
            assert!(
                notes.iter().any(|n| n.starts_with(want)),
                "{want} in {notes:#?}"
            );
        }
    }

    #[test]
    fn includes_are_followed_and_loops_stop() {
        let dir = std::env::temp_dir().join(format!("sluicectl-inc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.conf"), "include vs.conf\ninclude *.conf\n").unwrap();
        std::fs::write(
            dir.join("vs.conf"),
            "virtual_server 192.0.2.100 80 {\n  lb_algo rr\n  quorum 2\n}\ninclude vs.conf\n",
        )
        .unwrap();
        let i = import(&dir.join("main.conf")).unwrap();
        // vs.conf includes itself: followed to the depth bound, then noted.
        assert_eq!(i.services.len(), MAX_INCLUDE_DEPTH);
        assert!(
            i.notes.iter().any(|(l, w)| *l == 2 && w.contains("*.conf")),
            "{:?}",
            i.notes
        );
        assert!(
            i.notes
                .iter()
                .any(|(l, w)| *l == 3 && w.contains("vs.conf: quorum is not supported")),
            "{:?}",
            i.notes
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// DPVS's keepalived: `lb_kind FNAT` is full NAT; its local address
    /// group is named, not dropped silently.
    #[test]
    fn dpvs_full_nat() {
        let dir = std::env::temp_dir().join(format!("sluicectl-fnat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("k.conf"),
            "virtual_server 192.0.2.100 80 {\n  lb_kind FNAT\n  laddr_group_name lg1\n  \
             protocol TCP\n  real_server 203.0.113.11 8080 {\n    weight 1\n  }\n}\n",
        )
        .unwrap();
        let i = import(&dir.join("k.conf")).unwrap();
        assert_eq!(i.services[0].reals[0].forward, Forward::FullNat);
        assert!(
            i.notes
                .iter()
                .any(|(l, w)| *l == 3 && w.contains("local_addresses")),
            "{:?}",
            i.notes
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
