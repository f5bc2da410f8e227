//! The Prometheus text format 0.0.4 and OpenMetrics 1.0.0: families of
//! samples, written in either, with the escaping and units each wants.

use std::fmt::Write as _;

/// Content type of the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` at least as much as plain text.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut om = 0.0f64;
        let mut text = 0.0f64;
        for range in accept.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f64;
            for p in params {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v.trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 1.0);
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The Content-Type of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Monotonic; samples are named `<family>_total`.
    Counter,
    Gauge,
    /// Constant 1 with labels; the sample is `<family>_info` (a gauge in
    /// the Prometheus format).
    Info,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => f.write_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

pub(super) type Labels = Vec<(&'static str, String)>;

/// One metric family: its base name (without `_total` or `_info`), help,
/// type and samples.
pub(super) struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<(Labels, Value)>,
}

/// Families in the order they are written.
#[derive(Default)]
pub(super) struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    pub(super) fn family(
        &mut self,
        name: impl Into<String>,
        kind: Kind,
        help: impl Into<String>,
    ) -> &mut Family {
        self.families.push(Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        });
        self.families.last_mut().expect("just pushed")
    }

    pub(super) fn counter(
        &mut self,
        name: impl Into<String>,
        help: impl Into<String>,
    ) -> &mut Family {
        self.family(name, Kind::Counter, help)
    }

    pub(super) fn gauge(
        &mut self,
        name: impl Into<String>,
        help: impl Into<String>,
    ) -> &mut Family {
        self.family(name, Kind::Gauge, help)
    }

    pub(super) fn write(&self, format: Format) -> String {
        let om = format == Format::OpenMetrics;
        let mut out = String::with_capacity(16 * 1024);
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let (family, sample, type_name) = match (f.kind, om) {
                (Kind::Counter, false) => (format!("{}_total", f.name), "_total", "counter"),
                (Kind::Counter, true) => (f.name.to_string(), "_total", "counter"),
                (Kind::Gauge, _) => (f.name.to_string(), "", "gauge"),
                (Kind::Info, false) => (format!("{}_info", f.name), "_info", "gauge"),
                (Kind::Info, true) => (f.name.to_string(), "_info", "info"),
            };
            let _ = writeln!(out, "# HELP {family} {}", escape_help(&f.help, om));
            let _ = writeln!(out, "# TYPE {family} {type_name}");
            if om {
                if let Some(unit) = unit_of(&f.name) {
                    let _ = writeln!(out, "# UNIT {family} {unit}");
                }
            }
            for (labels, value) in &f.samples {
                out.push_str(&f.name);
                out.push_str(sample);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        if om {
            out.push_str("# EOF\n");
        }
        out
    }
}

impl Family {
    pub(super) fn sample(&mut self, labels: Labels, value: impl Into<Value>) -> &mut Family {
        self.samples.push((labels, value.into()));
        self
    }
}

/// The OpenMetrics unit a family's name ends in, if any.
fn unit_of(name: &str) -> Option<&'static str> {
    ["seconds", "bytes"].into_iter().find(|u| {
        name.len() > u.len() + 1 && name.ends_with(u) && name[..name.len() - u.len()].ends_with('_')
    })
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Escapes help text: backslash and newline (and double quote in
/// OpenMetrics, whose 0.0.4 parser would refuse it).
fn escape_help(v: &str, om: bool) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '"' if om => s.push_str("\\\""),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values_and_help() {
        assert_eq!(escape_label(r#"x"y"#), r#"x\"y"#);
        assert_eq!(escape_label("\\"), "\\\\");
        assert_eq!(escape_label("l1\nl2"), "l1\\nl2");
        assert_eq!(escape_label("plain 1.2.3:4"), "plain 1.2.3:4");
        assert_eq!(escape_help("a\\b\n\"c\"", false), "a\\\\b\\n\"c\"");
        assert_eq!(escape_help("a\\b\n\"c\"", true), "a\\\\b\\n\\\"c\\\"");
    }

    #[test]
    fn values_are_formatted_as_prometheus_numbers() {
        assert_eq!(Value::from(0.0).to_string(), "0");
        assert_eq!(Value::from(0.5).to_string(), "0.5");
        assert_eq!(Value::from(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::from(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::from(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::from(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(Value::from(true).to_string(), "1");
    }

    #[test]
    fn units_come_from_name_suffixes() {
        assert_eq!(unit_of("sluice_uptime_seconds"), Some("seconds"));
        assert_eq!(unit_of("sluice_port_rx_bytes"), Some("bytes"));
        assert_eq!(unit_of("sluice_port_device_ibytes"), None);
        assert_eq!(unit_of("sluice_service_bytes_in"), None);
        assert_eq!(unit_of("bytes"), None);
    }

    #[test]
    fn accept_header_negotiation() {
        use Format::*;
        assert_eq!(Format::from_accept(None), Prometheus);
        assert_eq!(Format::from_accept(Some("*/*")), Prometheus);
        assert_eq!(Format::from_accept(Some("text/plain")), Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text")),
            OpenMetrics
        );
        // What Prometheus sends.
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some(
                "Application/OpenMetrics-Text; version=1.0.0; charset=utf-8"
            )),
            OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some(
                "text/plain;version=0.0.4,application/openmetrics-text;q=0.5"
            )),
            Prometheus
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Prometheus
        );
        assert_eq!(Format::OpenMetrics.content_type(), OPENMETRICS_CONTENT_TYPE);
        assert_eq!(Format::Prometheus.content_type(), PROMETHEUS_CONTENT_TYPE);
    }
}
