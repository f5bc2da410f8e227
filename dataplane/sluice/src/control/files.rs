//! The configuration file over the socket: `save` prints the running
//! configuration, `reload` and `restore` replace the services from a file
//! whose other sections must match the running ones.

use super::Control;
use crate::config::Config;
use sluice_proto::{ErrorCode, Reply, ReplyBody};
use std::path::Path;
use tracing::warn;

impl Control<'_> {
    /// The running configuration in the file's format.
    pub(super) fn save(&self) -> Reply {
        Reply::ok(ReplyBody::Config {
            toml: self.config.to_toml(&self.lb.specs()),
        })
    }

    /// Re-reads the configuration file.
    pub(super) fn reload(&mut self) -> Reply {
        let loaded = Config::load(&self.config.file.clone());
        self.replace_from("reload", loaded)
    }

    /// Applies a configuration sent over the socket.
    pub(super) fn restore(&mut self, text: &str) -> Reply {
        self.replace_from("restore", Config::parse(Path::new("restore"), text))
    }

    fn replace_from(
        &mut self,
        what: &str,
        loaded: Result<Config, crate::config::ConfigError>,
    ) -> Reply {
        match loaded {
            Ok(new) => self.replace_config(new, what),
            Err(e) => {
                warn!(uid = self.peer.uid, by = %self.peer, "{what} refused: {e}");
                Reply::error(ErrorCode::Refused, format!("configuration refused: {e}"))
            }
        }
    }

    /// Applies the services of `new` if its other sections match the
    /// running configuration.
    fn replace_config(&mut self, mut new: Config, what: &str) -> Reply {
        let diff = self.config.static_differences(&new);
        if !diff.is_empty() {
            let msg = format!(
                "{what}: {} changed; only [[service]] sections apply without a restart",
                diff.join(", ")
            );
            warn!(uid = self.peer.uid, by = %self.peer, "{msg}");
            return Reply::error(ErrorCode::Refused, msg);
        }
        match self.lb.replace(&new.services) {
            Ok((snap, summary)) => {
                new.file = self.config.file.clone();
                self.config = new;
                self.apply(format!("{what}: {summary}"), Ok(snap))
            }
            Err(e) => self.apply(what.to_string(), Err(e)),
        }
    }
}
