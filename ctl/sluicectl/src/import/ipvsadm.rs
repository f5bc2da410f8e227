//! `ipvsadm-save -n` rules (`-A` services, `-a` reals) as services.
//!
//! Understood: `-t`/`-u` with an address and port (IPv6 in brackets), `-s`
//! scheduler, `-p` persistence (with or without a timeout; ipvsadm's
//! default 300 s), `-M` netmask (dotted or a prefix length), `-r` real with
//! or without a port (the service's), `-g` direct routing, `-m` NAT, `-i`
//! tunnels (`--tun-type` ipip or gue), `-w` weight, `-x`/`-y` thresholds;
//! DPVS's full NAT: `-b` on a real, and `-P` (`--add-laddr`) rules whose
//! `-z` adds a local address to a service; the long spellings of each. Everything else is reported with its line
//! number: firewall-mark services (`-f`), GRE tunnels, a per-real GUE port
//! (`--tun-port`: Sluice has one, `[tunnel] gue_port`), one-packet
//! scheduling (`-o`), scheduler flags (`-b`), persistence engines (`--pe`)
//! and schedulers Sluice lacks.

use super::{scheduler, Import};
use sluice_proto::{Forward, Persistence, Protocol, RealSpec, ServiceSpec};
use std::net::SocketAddr;

/// Reads the rules in `text`.
pub fn import(text: &str) -> Import {
    let mut out = Import::default();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "-A" | "--add-service" => add_service(&mut out, n, &words[1..]),
            "-a" | "--add-server" => add_real(&mut out, n, &words[1..]),
            "-P" | "--add-laddr" => add_local_address(&mut out, n, &words[1..]),
            other => out.note(n, format!("{other:?} is not an -A or -a rule: skipped")),
        }
    }
    out
}

/// The service address of a rule: `-t`/`-u` and its operand, or why not.
fn service_of(words: &[&str]) -> Result<(Protocol, SocketAddr), String> {
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let proto = match *w {
            "-t" | "--tcp-service" => Protocol::Tcp,
            "-u" | "--udp-service" => Protocol::Udp,
            "-f" | "--fwmark-service" => {
                return Err("firewall-mark services (-f) are not supported".into())
            }
            "--sctp-service" => return Err("SCTP services are not supported".into()),
            _ => continue,
        };
        let a = it.next().ok_or("-t/-u without an address")?;
        return a
            .parse()
            .map(|a| (proto, a))
            .map_err(|_| format!("{a:?} is not an address:port"));
    }
    Err("no -t or -u service".into())
}

/// The operand after option `names` in `words`, if the option is there.
fn operand<'a>(words: &[&'a str], names: &[&str]) -> Option<Option<&'a str>> {
    let i = words.iter().position(|w| names.contains(w))?;
    Some(words.get(i + 1).copied().filter(|w| !w.starts_with('-')))
}

fn add_service(out: &mut Import, n: usize, words: &[&str]) {
    let (protocol, a) = match service_of(words) {
        Ok(x) => x,
        Err(e) => return out.note(n, format!("{e}: service skipped")),
    };
    let sched = operand(words, &["-s", "--scheduler"])
        .flatten()
        .unwrap_or("wlc");
    let mut spec = ServiceSpec::new(protocol, a.ip(), a.port());
    spec.scheduler = scheduler(out, n, sched);
    if let Some(t) = operand(words, &["-p", "--persistent"]) {
        let timeout_secs = match t.map(str::parse::<u32>) {
            None => 300,
            Some(Ok(t)) if t > 0 => t,
            Some(_) => return out.note(n, format!("-p {t:?} is not a timeout: service skipped")),
        };
        let netmask = match operand(words, &["-M", "--netmask"]).flatten() {
            None => None,
            Some(m) => match crate::verbs::parse_netmask(m).ok() {
                Some(len) => Some(len),
                None => return out.note(n, format!("-M {m:?} is not a netmask: service skipped")),
            },
        };
        spec.persistence = Some(Persistence {
            timeout_secs,
            netmask,
        });
    }
    for (flag, what) in [
        ("-o", "one-packet scheduling (-o)"),
        ("--ops", "one-packet scheduling (--ops)"),
        ("-b", "scheduler flags (-b)"),
        ("--sched-flags", "scheduler flags (--sched-flags)"),
        ("--pe", "persistence engines (--pe)"),
    ] {
        if words.contains(&flag) {
            out.note(n, format!("{what} are not supported: ignored"));
        }
    }
    if out.service_mut(&spec.key()).is_some() {
        return out.note(n, format!("{} is added twice: skipped", spec.key()));
    }
    out.services.push(spec);
}

/// DPVS's `-P -t VIP:port -z LIP [-F dev]`: a local address for the
/// service's full-NAT reals (the device is the port the route gives).
fn add_local_address(out: &mut Import, n: usize, words: &[&str]) {
    let (protocol, a) = match service_of(words) {
        Ok(x) => x,
        Err(e) => return out.note(n, format!("{e}: local address skipped")),
    };
    let key = ServiceSpec::new(protocol, a.ip(), a.port()).key();
    let Some(Some(z)) = operand(words, &["-z", "--laddr"]) else {
        return out.note(n, "-P without -z: skipped".into());
    };
    let Ok(ip) = z.parse() else {
        return out.note(n, format!("-z {z:?} is not an address: skipped"));
    };
    let Some(svc) = out.service_mut(&key) else {
        return out.note(n, format!("{key}: no such service (-A first): skipped"));
    };
    if !svc.local_addresses.contains(&ip) {
        svc.local_addresses.push(ip);
    }
}

fn add_real(out: &mut Import, n: usize, words: &[&str]) {
    let (protocol, a) = match service_of(words) {
        Ok(x) => x,
        Err(e) => return out.note(n, format!("{e}: real skipped")),
    };
    let key = ServiceSpec::new(protocol, a.ip(), a.port()).key();
    let Some(r) = operand(words, &["-r", "--real-server"]).flatten() else {
        return out.note(n, "-a without -r: skipped".into());
    };
    let addr: SocketAddr = match r.parse() {
        Ok(a) => a,
        Err(_) => match r.trim_matches(['[', ']']).parse() {
            Ok(ip) => SocketAddr::new(ip, a.port()),
            Err(_) => return out.note(n, format!("-r {r:?} is not an address: skipped")),
        },
    };
    let forward = if words.iter().any(|w| *w == "-i" || *w == "--ipip") {
        match operand(words, &["--tun-type"]).flatten().unwrap_or("ipip") {
            "ipip" => Forward::Ipip,
            "gue" => Forward::Gue,
            other => {
                return out.note(
                    n,
                    format!(
                        "{addr}: --tun-type {other} is not supported (ipip, gue): real skipped"
                    ),
                )
            }
        }
    } else if words.iter().any(|w| *w == "-g" || *w == "--gatewaying") {
        Forward::Dr
    } else if words.iter().any(|w| *w == "-b" || *w == "--fullnat") {
        Forward::FullNat
    } else {
        Forward::Nat
    };
    if let Some(port) = operand(words, &["--tun-port"]).flatten() {
        out.note(
            n,
            format!(
                "{addr}: --tun-port {port}: Sluice sends GUE to one port for every real, \
                 [tunnel] gue_port in its configuration (6080 unless set)"
            ),
        );
    }
    let number = |names: &[&str], default: u32| -> Result<u32, String> {
        match operand(words, names) {
            None => Ok(default),
            Some(v) => v
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{} needs a number", names[0])),
        }
    };
    let values = (
        number(&["-w", "--weight"], 1),
        number(&["-x", "--u-threshold"], 0),
        number(&["-y", "--l-threshold"], 0),
    );
    let (weight, upper, lower) = match values {
        (Ok(w), Ok(x), Ok(y)) => (w, x, y),
        (w, x, y) => {
            let e = [w.err(), x.err(), y.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            return out.note(n, format!("{}: skipped", e.join(", ")));
        }
    };
    let Some(svc) = out.service_mut(&key) else {
        return out.note(n, format!("{key} has no -A rule before it: real skipped"));
    };
    let mut real = RealSpec::new(addr.ip(), addr.port());
    real.weight = weight;
    real.forward = forward;
    real.upper_threshold = upper;
    real.lower_threshold = lower;
    svc.reals.push(real);
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "\
-A -t 192.0.2.100:80 -s wlc -p 300 -M 255.255.255.0
-a -t 192.0.2.100:80 -r 198.51.100.11:8080 -m -w 3
-a -t 192.0.2.100:80 -r 198.51.100.12:8080 -m -w 0 -x 100 -y 50
-A -u 192.0.2.100:53 -s rr
-a -u 192.0.2.100:53 -r 192.0.2.21:53 -g -w 1
-A -f 7 -s rr
-a -f 7 -r 198.51.100.13:80 -g -w 1
-A -t 192.0.2.101:443 -s lblc -o
-a -t 192.0.2.101:443 -r 198.51.100.14 -i -w 1
-a -t 192.0.2.101:443 -r 198.51.100.15 -m -w 1
-a -t 192.0.2.101:443 -r 198.51.100.16 -i --tun-type gue --tun-port 5555 -w 1
-a -t 192.0.2.101:443 -r 198.51.100.17 -i --tun-type gre -w 1
-A -t [2001:db8::100]:80 -s mh
-a -t [2001:db8::100]:80 -r [2001:db8:2::11]:80 -g -w 2
";

    #[test]
    fn rules_become_services_and_the_rest_is_named_by_line() {
        let i = import(RULES);
        assert_eq!(i.services.len(), 4);
        let web = &i.services[0];
        assert_eq!(web.key().to_string(), "tcp 192.0.2.100:80");
        assert_eq!(web.scheduler.to_string(), "wlc");
        assert_eq!(
            web.persistence,
            Some(Persistence {
                timeout_secs: 300,
                netmask: Some(24)
            })
        );
        assert_eq!(web.reals.len(), 2);
        assert_eq!(
            (web.reals[0].weight, web.reals[0].forward),
            (3, Forward::Nat)
        );
        assert_eq!(
            (
                web.reals[1].weight,
                web.reals[1].upper_threshold,
                web.reals[1].lower_threshold
            ),
            (0, 100, 50)
        );
        let dns = &i.services[1];
        assert_eq!(
            (dns.protocol, dns.reals[0].forward),
            (Protocol::Udp, Forward::Dr)
        );
        // A real without a port takes the service's.
        let tls = &i.services[2];
        assert_eq!(tls.reals.len(), 3);
        assert!(tls.reals.iter().all(|r| r.port == 443));
        assert_eq!(i.services[3].key().to_string(), "tcp [2001:db8::100]:80");
        assert_eq!(i.services[3].reals[0].ip.to_string(), "2001:db8:2::11");
        // Tunnels: IP-in-IP by default, GUE by --tun-type.
        let forwards: Vec<Forward> = tls.reals.iter().map(|r| r.forward).collect();
        assert_eq!(forwards, [Forward::Ipip, Forward::Nat, Forward::Gue]);
        let lines: Vec<usize> = i.notes.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![6, 7, 8, 8, 11, 12], "{:?}", i.notes);
        assert!(i.notes[0].1.contains("firewall-mark"));
        assert!(i.notes[2].1.contains("lblc"));
        assert!(i.notes[3].1.contains("one-packet"));
        assert!(i.notes[4].1.contains("--tun-port 5555"));
        assert!(i.notes[5].1.contains("--tun-type gre is not supported"));
    }

    /// DPVS's full NAT: `-b` reals and `-P ... -z` local addresses.
    #[test]
    fn full_nat_reals_and_local_addresses() {
        let i = import(
            "-A -t 192.0.2.100:80 -s rr\n\
             -a -t 192.0.2.100:80 -r 203.0.113.11:8080 -b -w 1\n\
             -P -t 192.0.2.100:80 -z 198.51.100.200 -F dpdk1\n\
             --add-laddr -t 192.0.2.100:80 -z 198.51.100.201 -F dpdk1\n\
             -P -t 192.0.2.100:81 -z 198.51.100.202\n\
             -P -t 192.0.2.100:80\n",
        );
        let s = &i.services[0];
        assert_eq!(s.reals[0].forward, Forward::FullNat);
        let l: Vec<String> = s.local_addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(l, ["198.51.100.200", "198.51.100.201"]);
        let lines: Vec<usize> = i.notes.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![5, 6], "{:?}", i.notes);
    }
}
