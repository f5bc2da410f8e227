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

impl Control<'_> {
    /// Re-makes the decision; hands BIRD a new file when it changed.
    pub(super) fn bgp_tick(&mut self, now: Instant) {
        let polls = super::alive::polls(self.workers);
        let vips = self.lb.vips_usable();
        let Some(a) = self.bgp.as_mut() else {
            return;
        };
        match a.liveness.tick(now, &polls) {
            Verdict::NotDue => {}
            Verdict::Alive => a.alive = true,
            Verdict::Stuck(_) => a.alive = false,
        }
        let states = decide(Inputs {
            vips: &vips,
            alive: a.alive,
            draining: a.draining,
            held: &a.held,
        });
        if states == a.states && !a.text.is_empty() {
            return;
        }
        for s in &states {
            let was = a.states.iter().find(|o| o.vip == s.vip);
            if was.map(|w| w.withdrawn.is_none()) == Some(s.withdrawn.is_none()) {
                continue;
            }
            match s.withdrawn {
                None => info!(vip = %s.vip, "announcing"),
                Some(why) => warn!(vip = %s.vip, reason = why.as_str(), "withdrawing"),
            }
        }
        a.states = states;
        a.text = bird::render(&a.config, &a.states);
        a.speaker.set(a.text.clone());
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
