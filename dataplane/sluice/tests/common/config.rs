//! One builder for the daemon's test configurations: the `[eal]`,
//! `[dataplane]` and `[control]` preamble every test shares, its ports, and
//! whatever sections a test appends. `@PREFIX@` and `@SOCKET@` are filled in
//! by [`super::Daemon::start`].

/// A test configuration being built.
#[derive(Clone, Debug)]
pub struct TestConfig {
    eal: Vec<String>,
    memory_mb: u32,
    workers: Vec<u32>,
    dataplane: Vec<String>,
    control: Vec<String>,
    ports: String,
    extra: String,
}

impl TestConfig {
    /// No hugepages, one worker on lcore 1, a 64k connection table, and no
    /// port yet.
    pub fn new() -> TestConfig {
        TestConfig {
            eal: vec!["no_huge = true".into()],
            memory_mb: 128,
            workers: vec![1],
            dataplane: vec!["idle_sleep_us = 1000".into(), "connections = 65536".into()],
            control: Vec::new(),
            ports: String::new(),
            extra: String::new(),
        }
    }

    /// One `net_null` port "null" at 192.0.2.1/24 that receives nothing,
    /// with small rings: a daemon to talk to, without traffic.
    pub fn null_port() -> TestConfig {
        TestConfig::new()
            .small_rings()
            .port("null", "net_null0,no-rx=1", &["192.0.2.1/24"])
    }

    /// A 4096-mbuf pool and 512-descriptor rings (enough for one null or
    /// pcap port).
    pub fn small_rings(self) -> TestConfig {
        self.dataplane("mempool_size = 4096")
            .dataplane("rx_desc = 512")
            .dataplane("tx_desc = 512")
    }

    /// Workers on these lcores.
    pub fn workers(mut self, lcores: &[u32]) -> TestConfig {
        self.workers = lcores.to_vec();
        self
    }

    /// An explicit lcore-to-CPU map (`--lcores`), if any.
    pub fn lcores(self, map: Option<&str>) -> TestConfig {
        match map {
            Some(m) => self.eal(&format!("lcores = \"{m}\"")),
            None => self,
        }
    }

    /// EAL memory in MiB.
    pub fn memory_mb(mut self, mb: u32) -> TestConfig {
        self.memory_mb = mb;
        self
    }

    /// Hugepages, kept linked so that secondary processes (dpdk-dumpcap)
    /// can attach.
    pub fn hugepages_for_secondaries(mut self) -> TestConfig {
        self.eal.retain(|l| l != "no_huge = true");
        self.eal("no_huge = false").eal("huge_unlink = false")
    }

    /// The idle sleep of the workers.
    pub fn idle_sleep_us(mut self, us: u32) -> TestConfig {
        self.dataplane.retain(|l| !l.starts_with("idle_sleep_us"));
        self.dataplane(&format!("idle_sleep_us = {us}"))
    }

    /// Another `[eal]` line.
    pub fn eal(mut self, line: &str) -> TestConfig {
        self.eal.push(line.into());
        self
    }

    /// Another `[dataplane]` line.
    pub fn dataplane(mut self, line: &str) -> TestConfig {
        self.dataplane.push(line.into());
        self
    }

    /// Another `[control]` line.
    pub fn control(mut self, line: &str) -> TestConfig {
        self.control.push(line.into());
        self
    }

    /// A port.
    pub fn port(self, name: &str, device: &str, addresses: &[&str]) -> TestConfig {
        self.port_with(name, device, addresses, "")
    }

    /// A port with further lines (`kernel_interface = ...`).
    pub fn port_with(
        mut self,
        name: &str,
        device: &str,
        addresses: &[&str],
        lines: &str,
    ) -> TestConfig {
        let addresses: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
        self.ports.push_str(&format!(
            "\n[[port]]\nname = \"{name}\"\ndevice = \"{device}\"\naddresses = [{}]\n{lines}",
            addresses.join(", ")
        ));
        self
    }

    /// Sections appended after the ports (services, timeouts, metrics).
    pub fn then(mut self, sections: &str) -> TestConfig {
        self.extra.push('\n');
        self.extra.push_str(sections);
        self
    }

    /// The TOML.
    pub fn render(&self) -> String {
        let lines = |v: &[String]| v.iter().map(|l| format!("{l}\n")).collect::<String>();
        let workers: Vec<String> = self.workers.iter().map(|w| w.to_string()).collect();
        format!(
            "[eal]\n{}memory_mb = {}\nfile_prefix = \"@PREFIX@\"\n\n\
             [dataplane]\nworkers = [{}]\n{}\n\
             [control]\nsocket = \"@SOCKET@\"\n{}{}{}",
            lines(&self.eal),
            self.memory_mb,
            workers.join(", "),
            lines(&self.dataplane),
            lines(&self.control),
            self.ports,
            self.extra
        )
    }
}

impl Default for TestConfig {
    fn default() -> TestConfig {
        TestConfig::new()
    }
}

impl std::fmt::Display for TestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}
