//! Overload and health: thresholds re-checked against the workers' gauges,
//! and health-check results that change a real's weight published as a
//! snapshot, with no one touching anything.

use super::Control;
use tracing::info;

impl Control<'_> {
    /// Updates overload marks and publishes what health checks changed.
    pub(super) fn health_tick(&mut self) {
        self.lb.update_overload();
        if let Some((snap, what)) = self.lb.health_tick() {
            let epoch = self.publisher.publish(snap);
            info!(change = %what, epoch, by = "health", "configuration changed");
        }
    }
}
