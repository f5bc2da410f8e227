//! `sluicectl import keepalived` on the sample configurations Debian's
//! keepalived package ships: every virtual server of every sample either
//! becomes a service that `sluice --check` accepts (IPv6 ones included),
//! or is named (with its line) as not carried over; nothing vanishes
//! silently.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

const SAMPLES: &str = "/usr/share/doc/keepalived/samples";

/// The virtual servers a sample defines (`virtual_server X`, not in a
/// comment).
fn virtual_servers(sample: &str) -> usize {
    sample
        .lines()
        .map(|l| l.split(['#', '!']).next().unwrap_or("").trim())
        .filter(|l| l.starts_with("virtual_server ") || l.starts_with("virtual_server\t"))
        .count()
}

/// A configuration around the imported services: one worker, a null port
/// on every IPv4 /24 the reals live in (so every real, NAT or DR, is on a
/// connected prefix).
fn wrap(imported: &str, services: &toml::Value) -> String {
    let mut nets = BTreeSet::new();
    for s in services.as_array().into_iter().flatten() {
        for r in s
            .get("real")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(IpAddr::V4(ip)) = r["ip"].as_str().and_then(|a| a.parse().ok()) {
                let o = ip.octets();
                nets.insert(format!("{}.{}.{}.254/24", o[0], o[1], o[2]));
            }
        }
    }
    let addresses: Vec<String> = nets.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[eal]\nno_huge = true\nmemory_mb = 64\nfile_prefix = \"imp\"\n\n\
         [dataplane]\nworkers = [1]\n\n[control]\nsocket = \"/tmp/sluice-import.sock\"\n\n\
         [[port]]\nname = \"p\"\ndevice = \"net_null0,no-rx=1\"\naddresses = [{}]\n\n{imported}",
        addresses.join(", ")
    )
}

#[test]
fn keepalived_samples_import_or_name_what_they_lack() {
    let dir = Path::new(SAMPLES);
    if !dir.is_dir() {
        skip("keepalived's samples are not installed (scripts/lib/deps.sh installs keepalived)");
        return;
    }
    let tmp = TempDir::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("keepalived.conf")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let (mut imported, mut checked, mut named) = (0, 0, 0);
    for f in &files {
        let sample = std::fs::read_to_string(f).unwrap();
        let o = run(
            &[
                bin("sluicectl").to_str().unwrap(),
                "import",
                "keepalived",
                f.to_str().unwrap(),
            ],
            Duration::from_secs(10),
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{f:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let doc: toml::Value = toml::from_str(&out).unwrap_or_else(|e| panic!("{f:?}: {e}\n{out}"));
        let services = doc
            .get("service")
            .cloned()
            .unwrap_or(toml::Value::Array(vec![]));
        let n = services.as_array().map_or(0, Vec::len);
        let skipped = out
            .lines()
            .filter(|l| {
                l.starts_with("# line") && l.contains("virtual_server ") && l.contains("skipped")
            })
            .count();
        assert_eq!(
            n + skipped,
            virtual_servers(&sample),
            "{f:?}: each virtual server imported or named as skipped:\n{out}"
        );
        named += out.lines().filter(|l| l.starts_with("# line")).count();
        if n == 0 {
            continue;
        }
        imported += n;
        let cfg = tmp.path().join("sluice.toml");
        std::fs::write(&cfg, wrap(&out, &services)).unwrap();
        let o = run(
            &[
                bin("sluice").to_str().unwrap(),
                "--config",
                cfg.to_str().unwrap(),
                "--check",
            ],
            Duration::from_secs(10),
        );
        assert!(
            o.status.success(),
            "{f:?}: sluice --check refused the import: {}\n{out}",
            String::from_utf8_lossy(&o.stderr)
        );
        checked += 1;
    }
    println!("samples: {} files, {imported} services imported, {checked} files accepted by sluice --check, {named} things named", files.len());
    assert!(checked >= 10, "{checked}");
}

/// ipvsadm-save rules, piped through `sluicectl import ipvsadm`, make a
/// configuration `sluice --check` accepts; the firewall-mark service is
/// named on standard error with its line.
#[test]
fn ipvsadm_rules_import_into_a_configuration_that_checks() {
    let rules = "\
-A -t 192.0.2.100:80 -s wlc -p 300
-a -t 192.0.2.100:80 -r 198.51.100.11:8080 -m -w 3
-a -t 192.0.2.100:80 -r 198.51.100.12:8080 -m -w 1 -x 200 -y 100
-A -u 192.0.2.100:53 -s sh
-a -u 192.0.2.100:53 -r 192.0.2.21:53 -g -w 1
-A -f 3 -s rr
";
    let tmp = TempDir::new();
    let file = tmp.path().join("rules");
    std::fs::write(&file, rules).unwrap();
    let o = run(
        &[
            bin("sluicectl").to_str().unwrap(),
            "import",
            "ipvsadm",
            file.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 6: firewall-mark services (-f) are not supported"),
        "{err}"
    );
    let doc: toml::Value = toml::from_str(&out).unwrap();
    let services = doc["service"].clone();
    assert_eq!(services.as_array().unwrap().len(), 2);
    let cfg = tmp.path().join("sluice.toml");
    std::fs::write(&cfg, wrap(&out, &services)).unwrap();
    let o = run(
        &[
            bin("sluice").to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--check",
        ],
        Duration::from_secs(10),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
