//! The targets that read text or bytes from operators and agents: the
//! control protocol's request line, the configuration file and the agent
//! reply. Each must answer any input with a value or an error, never a
//! panic, and what it accepts must survive a round trip.

use sluice::config::Config;
use sluice::control::server::parse_request;
use sluice_health::agent::{parse_agent_reply, MAX_WEIGHT_PERCENT};
use sluice_proto::{Request, PROTOCOL_VERSION};
use std::path::Path;

/// One request line. An accepted request, written back as JSON, parses to
/// the same command.
pub fn control(data: &[u8]) {
    if let Ok(cmd) = parse_request(data) {
        let again = serde_json::to_vec(&Request {
            version: PROTOCOL_VERSION,
            request: cmd.clone(),
        })
        .expect("an accepted request serialises");
        assert_eq!(parse_request(&again).ok(), Some(cmd), "round trip");
    }
}

/// One configuration file. An accepted file, saved as `sluicectl save`
/// writes it, loads to the same services.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = Config::parse(Path::new("fuzz.toml"), text) else {
        return;
    };
    let saved = c.to_toml(&c.services);
    let again = Config::parse(Path::new("saved.toml"), &saved)
        .unwrap_or_else(|e| panic!("a saved configuration does not load: {e}\n{saved}"));
    assert_eq!(again.services, c.services, "services after save and load");
}

/// One agent reply. A percentage is never above the documented maximum.
pub fn agent(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = parse_agent_reply(&text) {
        assert!(r.weight_percent.is_none_or(|p| p <= MAX_WEIGHT_PERCENT));
    }
}
