//! The control thread's side of the BGP announcements (see [`crate::bgp`]):
//! the decision re-made every health tick, the operator's withdrawals, the
//! drain before a graceful stop, and what `status` shows.

use super::Control;
use crate::bgp::bird;
use crate::bgp::decide::{decide, Inputs, VipState};
use crate::bgp::speaker::Speaker;
use crate::config::BgpConfig;
use crate::notify::{Verdict, Watchdog};
use sluice_proto::{self as proto, ErrorCode, Reply, ReplyBody};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long a worker may go without polling before its appliance counts
/// as dead and withdraws.
const STUCK_AFTER: Duration = Duration::from_secs(2);

/// The announcements' state.
pub(crate) struct Announcer {
    config: BgpConfig,
    speaker: Speaker,
    /// VIPs the operator withdrew.
    held: Vec<IpAddr>,
    draining: bool,
    liveness: Watchdog,
    alive: bool,
    states: Vec<VipState>,
    text: String,
}

impl Announcer {
    /// Starts the speaker for `config`, with `workers` workers to watch.
    pub(crate) fn start(config: BgpConfig, workers: usize) -> std::io::Result<Announcer> {
        // Nothing is announced before the first decision.
        let first = bird::render(&config, &[]);
        let speaker = Speaker::start(
            config.bird_socket.clone(),
            config.include_file.clone(),
            &first,
        )?;
        Ok(Announcer {
            config,
            speaker,
            held: Vec::new(),
            draining: false,
            // Looks every half of this: a stop shows within 1 to 2 looks.
            liveness: Watchdog::new(STUCK_AFTER, workers),
            alive: true,
            states: Vec::new(),
            text: String::new(),
        })
    }
}

impl Announcer {
    /// Re-makes the decision from the workers' poll counts and the VIPs'
    /// usability at `now`; hands BIRD a new file when it changed.
    fn tick(&mut self, now: Instant, polls: &[u64], vips: &[(IpAddr, bool)]) {
        match self.liveness.tick(now, polls) {
            Verdict::NotDue => {}
            Verdict::Alive => self.alive = true,
            Verdict::Stuck(_) => self.alive = false,
        }
        let states = decide(Inputs {
            vips,
            alive: self.alive,
            draining: self.draining,
            held: &self.held,
        });
        if states == self.states && !self.text.is_empty() {
            return;
        }
        for s in &states {
            let was = self.states.iter().find(|o| o.vip == s.vip);
            if was.map(|w| w.withdrawn.is_none()) == Some(s.withdrawn.is_none()) {
                continue;
            }
            match s.withdrawn {
                None => info!(vip = %s.vip, "announcing"),
                Some(why) => warn!(vip = %s.vip, reason = why.as_str(), "withdrawing"),
            }
        }
        self.states = states;
        self.text = bird::render(&self.config, &self.states);
        self.speaker.set(self.text.clone());
    }
}

impl Control<'_> {
    /// Re-makes the decision; hands BIRD a new file when it changed.
    pub(super) fn bgp_tick(&mut self, now: Instant) {
        let polls = super::alive::polls(self.workers);
        let vips = self.lb.vips_usable();
        if let Some(a) = self.bgp.as_mut() {
            a.tick(now, &polls, &vips);
        }
    }

    /// `vip withdraw` / `vip announce`.
    pub(super) fn vip_hold(&mut self, vip: IpAddr, withdraw: bool) -> Reply {
        let known = self.lb.vips_usable().iter().any(|(v, _)| *v == vip);
        let Some(a) = self.bgp.as_mut() else {
            return Reply::error(
                ErrorCode::Refused,
                "no [bgp] section is configured: nothing is announced",
            );
        };
        if !known {
            return Reply::error(ErrorCode::Refused, format!("no service has the VIP {vip}"));
        }
        a.held.retain(|v| *v != vip);
        if withdraw {
            a.held.push(vip);
        }
        self.bgp_tick(Instant::now());
        let what = if withdraw {
            format!("{vip} withdrawn")
        } else {
            format!("{vip} announced again where its reals allow")
        };
        info!(change = %what, by = %self.peer, "BGP");
        Reply::ok(ReplyBody::Applied(proto::Applied {
            message: what,
            epoch: self.publisher.epoch(),
        }))
    }

    /// Before a graceful stop: withdraws every VIP, waits until BIRD has
    /// taken that (2 s at most), then `drain_ms` for the routers to move.
    pub(super) fn bgp_drain(&mut self) {
        if let Some(a) = self.bgp.as_mut() {
            a.draining = true;
        } else {
            return;
        }
        self.bgp_tick(Instant::now());
        let Some(a) = self.bgp.as_ref() else { return };
        if !a.speaker.wait_applied(&a.text, Duration::from_secs(2)) {
            warn!("BIRD did not take the withdrawal; stopping anyway");
            return;
        }
        info!(
            drain_ms = a.config.drain_ms,
            "VIPs withdrawn; waiting for the routers"
        );
        std::thread::sleep(Duration::from_millis(u64::from(a.config.drain_ms)));
    }

    /// What `status` shows of the announcements.
    pub(super) fn bgp_status(&self) -> Option<Box<proto::BgpStatus>> {
        let a = self.bgp.as_ref()?;
        let s = a.speaker.state();
        Some(Box::new(proto::BgpStatus {
            bird_socket: a.config.bird_socket.display().to_string(),
            include_file: a.config.include_file.display().to_string(),
            bird: match &s.bird {
                Ok(g) => g.clone(),
                Err(e) => e.clone(),
            },
            in_sync: s.applied.as_deref() == Some(a.text.as_str()),
            applied_secs_ago: s.applied_at.map(|t| t.elapsed().as_secs()),
            error: s.error,
            alive: a.alive,
            vips: a
                .states
                .iter()
                .map(|v| proto::VipAnnouncement {
                    vip: v.vip,
                    announced: v.withdrawn.is_none(),
                    reason: v.withdrawn.map(|w| w.as_str().to_string()),
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::decide::Withdrawn;
    use crate::config::Neighbor;

    /// A worker whose poll count stops moving withdraws every VIP within
    /// two looks (1 to 2 s), and they come back when it moves again.
    #[test]
    fn a_stuck_worker_withdraws_every_vip() {
        let dir = std::env::temp_dir().join(format!("sluice-bgp-{}", std::process::id()));
        let config = BgpConfig {
            router_id: "198.51.100.11".parse().unwrap(),
            local_as: 64513,
            bird_socket: dir.join("no-bird.ctl"),
            include_file: dir.join("bird.conf"),
            drain_ms: 0,
            hold_time: 3,
            bfd: false,
            neighbors: vec![Neighbor {
                address: "198.51.100.1".parse().unwrap(),
                remote_as: 64512,
            }],
            vips: vec![],
        };
        let mut a = Announcer::start(config, 2).unwrap();
        let vips = [("192.0.2.10".parse().unwrap(), true)];
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let announced = |a: &Announcer| a.states.iter().all(|s| s.withdrawn.is_none());
        a.tick(at(0), &[1, 1], &vips);
        a.tick(at(1000), &[5, 5], &vips);
        assert!(announced(&a));
        // Worker 1 stops.
        a.tick(at(2000), &[9, 5], &vips);
        a.tick(at(3000), &[13, 5], &vips);
        assert!(
            a.states
                .iter()
                .all(|s| s.withdrawn == Some(Withdrawn::Stuck)),
            "{:?}",
            a.states
        );
        assert!(!a.text.contains("192.0.2.10/32"), "{}", a.text);
        // It moves again.
        a.tick(at(4000), &[17, 6], &vips);
        assert!(announced(&a), "{:?}", a.states);
        assert!(a.text.contains("route 192.0.2.10/32 blackhole;"));
        let written = std::fs::read_to_string(dir.join("bird.conf")).unwrap_or_default();
        assert!(written.contains("router id 198.51.100.11;"), "{written}");
        drop(a);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
