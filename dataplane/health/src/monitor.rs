//! The [`Monitor`]: runs the checks and agent polls of a set of
//! [`Target`]s on a few threads, keeps each target's [`TargetStatus`], and
//! reports availability changes as [`Transition`]s.
//!
//! # Threads
//!
//! One scheduler thread and `pool_size` worker threads (default
//! [`DEFAULT_POOL_SIZE`], at most [`MAX_POOL_SIZE`]), shared by all
//! targets. The scheduler hands a due check or poll to an idle worker over a
//! rendezvous channel, oldest due first; it never queues work behind a busy
//! worker, and never dispatches a target's check (or poll) while the
//! previous one is still running. Every attempt is bounded by its timeout
//! (see [`checks`](crate::checks)), so a hanging server holds one worker for
//! at most its timeout and other targets keep being checked on time as long
//! as fewer than `pool_size` attempts hang at once.
//!
//! # Timing
//!
//! A target's next check starts `interval` after the previous one was
//! dispatched (not after it finished), so the cadence does not drift by the
//! check's latency. The first check of a new target (or of a changed check,
//! or the first poll of a new agent) is spread over `min(interval, 1 s)` by
//! a hash of its id, so that a large configuration loaded at once does not
//! probe every real in the same millisecond.
//!
//! # Availability
//!
//! A target is *available* ([`TargetStatus::is_available`]) when its check
//! state counts as up (`Up` or `Unknown`, see [`State`]) and its agent, if
//! any, does not hold it `Down` or in `Maint`. Every change of availability
//! after a check result or an agent reply, or caused by
//! [`Monitor::set_targets`] on a kept target (a check set to `none`, an agent
//! removed), is sent on [`Monitor::transitions`]. Targets added or removed
//! by `set_targets` produce no transition: a new target starts `Unknown`,
//! i.e. available. Weights are not announced; read
//! [`TargetStatus::effective_weight_percent`] from [`Monitor::snapshot`].

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;

use crate::agent::{self, AgentAdmin, AgentStatus};
use crate::checks::{self, CheckContext, CheckResult, Deadline};
use crate::state::{ewma, RiseFall, State};
use sluice_model::check::{AgentSpec, CheckKind, CheckSpec, Probe, SpecError};

/// Worker threads of a monitor when the caller has no better idea.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Most worker threads a monitor starts.
pub const MAX_POOL_SIZE: usize = 64;
/// How long [`Monitor::stop`] waits for its threads.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// Transitions buffered for the consumer; more are dropped (and counted,
/// [`Monitor::dropped_transitions`]); the snapshot stays authoritative.
pub const TRANSITION_QUEUE: usize = 4096;
/// Longest the scheduler sleeps with nothing due.
const IDLE_WAKE: Duration = Duration::from_millis(500);
/// Retry delay while every worker is busy.
const BUSY_RETRY: Duration = Duration::from_millis(2);

/// One thing to check: a real server of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The caller's stable key (e.g. a real's slot); unique in a set.
    pub id: u64,
    /// The real server, IP and service port.
    pub addr: SocketAddr,
    /// The virtual service (for the `exec` check's environment).
    pub vip: SocketAddr,
    /// The health check.
    pub check: CheckSpec,
    /// The agent to poll, if any.
    pub agent: Option<AgentSpec>,
}

/// A change of a target's availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The target's [`Target::id`].
    pub id: u64,
    /// Whether the target is now available.
    pub up: bool,
    /// Why, for the log: e.g. `"3 consecutive failed tcp checks: connect:
    /// Connection refused (os error 111)"`, `"agent: maint"`.
    pub reason: String,
    /// When.
    pub at: SystemTime,
}

/// A target's health as the monitor sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetStatus {
    /// The target's [`Target::id`].
    pub id: u64,
    /// The real's address.
    pub addr: SocketAddr,
    /// The kind of check.
    pub kind: CheckKind,
    /// The check state; `Unknown` (the initial state) counts as up.
    pub state: State,
    /// The latest check result.
    pub last_result: Option<CheckResult>,
    /// When [`state`](Self::state) last changed (including `Unknown → Up`).
    pub last_change: Option<SystemTime>,
    /// Consecutive successful checks ending with the latest.
    pub consecutive_ok: u32,
    /// Consecutive failed checks ending with the latest.
    pub consecutive_fail: u32,
    /// Checks finished since the target (or its check) was set.
    pub checks: u64,
    /// EWMA of the latency of successful checks, alpha 0.3
    /// ([`EWMA_ALPHA`](crate::EWMA_ALPHA)).
    pub latency_ewma: Option<Duration>,
    /// The agent's state, if the target has an agent.
    pub agent: Option<AgentStatus>,
}

impl TargetStatus {
    /// Whether the target may take traffic: its check state counts as up
    /// and its agent (if any) does not hold it down or in maintenance.
    pub fn is_available(&self) -> bool {
        available(self.state, self.agent.as_ref())
    }

    /// The weight to use, as a percentage of the configured weight: 0 when
    /// unavailable or draining, else the agent's percentage (0..=256),
    /// else 100.
    pub fn effective_weight_percent(&self) -> u32 {
        if !self.is_available() {
            return 0;
        }
        self.agent
            .as_ref()
            .map_or(100, AgentStatus::effective_weight_percent)
    }

    /// Whether the agent asks for draining (weight 0, keep connections).
    pub fn is_draining(&self) -> bool {
        self.agent
            .as_ref()
            .is_some_and(|a| a.admin == AgentAdmin::Drain)
    }
}

fn available(state: State, agent: Option<&AgentStatus>) -> bool {
    state.counts_as_up() && agent.is_none_or(|a| a.admin.allows_traffic())
}

/// Runs health checks and agent polls for a set of targets on a scheduler
/// thread and a bounded worker pool. See the [module docs](self).
///
/// Dropping the monitor stops it ([`Monitor::stop`]).
pub struct Monitor {
    shared: Arc<Shared>,
    transitions: Receiver<Transition>,
    threads: Vec<JoinHandle<()>>,
    pool_size: usize,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("pool_size", &self.pool_size)
            .field("threads", &self.threads.len())
            .finish()
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the scheduler: targets changed, a worker finished, stop.
    wake: Condvar,
    /// Set by `stop`; also cancels running `exec` checks.
    stop: AtomicBool,
    transitions: Sender<Transition>,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<u64, Entry>,
    /// Source of generations: results of work dispatched under an older
    /// spec are discarded.
    next_generation: u64,
}

struct Entry {
    target: Target,
    probe: Arc<Probe>,
    check_gen: u64,
    health: RiseFall,
    last_result: Option<CheckResult>,
    last_change: Option<SystemTime>,
    checks: u64,
    latency_ewma: Option<Duration>,
    next_check: Instant,
    check_in_flight: bool,
    agent: Option<AgentRuntime>,
}

struct AgentRuntime {
    gen: u64,
    status: AgentStatus,
    next_poll: Instant,
    in_flight: bool,
}

struct Job {
    id: u64,
    gen: u64,
    dispatched: Instant,
    work: Work,
}

enum Work {
    Check {
        probe: Arc<Probe>,
        ctx: CheckContext,
    },
    Agent {
        addr: SocketAddr,
        send: Option<String>,
        timeout: Duration,
    },
}

enum Outcome {
    Check(CheckResult),
    Agent(Result<String, String>),
}

impl Monitor {
    /// Starts a monitor with `pool_size` worker threads (clamped to
    /// 1..=[`MAX_POOL_SIZE`]) and a scheduler thread, with no targets.
    pub fn new(pool_size: usize) -> io::Result<Monitor> {
        let pool_size = pool_size.clamp(1, MAX_POOL_SIZE);
        let (tx, rx) = crossbeam_channel::bounded(TRANSITION_QUEUE);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            transitions: tx,
            dropped: AtomicU64::new(0),
        });
        let mut monitor = Monitor {
            shared: Arc::clone(&shared),
            transitions: rx,
            threads: Vec::with_capacity(pool_size + 1),
            pool_size,
        };
        // Rendezvous: a job is only handed over to a worker waiting for one.
        let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(0);
        for i in 0..pool_size {
            let shared = Arc::clone(&shared);
            let job_rx = job_rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("sluice-health-{i}"))
                .spawn(move || worker(&shared, &job_rx))?;
            monitor.threads.push(handle);
        }
        drop(job_rx);
        let handle = std::thread::Builder::new()
            .name("sluice-health-sched".into())
            .spawn(move || scheduler(&shared, &job_tx))?;
        monitor.threads.push(handle);
        Ok(monitor)
    }

    /// The number of worker threads.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Replaces the set of targets, all or nothing: every target is
    /// validated first (unique ids, valid check and agent specs).
    ///
    /// For an id already present with the same `addr`, the state is kept:
    /// * same check and agent: nothing changes (a new `vip` is used from the
    ///   next check on);
    /// * a changed check keeps the check state (`Up`/`Down`/`Unknown`) but
    ///   restarts the streaks, the result, the latency and the count; a
    ///   check changed to `none` makes the target `Up`, a check changed from
    ///   `none` restarts it `Unknown`;
    /// * a changed agent keeps the agent's values until its next reply; a
    ///   removed agent is forgotten.
    ///
    /// An id with another `addr` is a new target. Work in flight for a
    /// removed or changed target is discarded when it ends.
    pub fn set_targets(&self, targets: Vec<Target>) -> Result<(), SpecError> {
        let mut seen = HashSet::with_capacity(targets.len());
        let mut probes = Vec::with_capacity(targets.len());
        for t in &targets {
            if !seen.insert(t.id) {
                return Err(SpecError(format!("duplicate target id {}", t.id)));
            }
            let probe = t
                .check
                .probe()
                .map_err(|e| SpecError(format!("target {} ({}): check: {e}", t.id, t.addr)))?;
            if let Some(a) = &t.agent {
                a.validate()
                    .map_err(|e| SpecError(format!("target {} ({}): {e}", t.id, t.addr)))?;
            }
            probes.push(probe);
        }
        let now = Instant::now();
        let mut inner = self.shared.lock();
        let mut old = std::mem::take(&mut inner.entries);
        for (t, probe) in targets.into_iter().zip(probes) {
            let id = t.id;
            let entry = match old.remove(&id) {
                Some(mut e) if e.target.addr == t.addr => {
                    if let Some(tr) = e.update(t, probe, now, &mut inner.next_generation) {
                        self.shared.emit(tr);
                    }
                    e
                }
                _ => Entry::new(t, probe, now, &mut inner.next_generation),
            };
            inner.entries.insert(id, entry);
        }
        drop(inner);
        self.shared.wake.notify_all();
        Ok(())
    }

    /// The status of every target, by id.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        let inner = self.shared.lock();
        let mut v: Vec<TargetStatus> = inner.entries.values().map(Entry::status).collect();
        v.sort_unstable_by_key(|s| s.id);
        v
    }

    /// The status of the target `id`.
    pub fn status(&self, id: u64) -> Option<TargetStatus> {
        self.shared.lock().entries.get(&id).map(Entry::status)
    }

    /// The availability changes, in order. Buffered up to
    /// [`TRANSITION_QUEUE`]; the receiver may be cloned and moved to
    /// another thread (`recv`, `recv_timeout`, `try_iter`, `select!`...).
    pub fn transitions(&self) -> &Receiver<Transition> {
        &self.transitions
    }

    /// Transitions dropped because the queue was full.
    pub fn dropped_transitions(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Stops the monitor: no new work is dispatched, running `exec` checks
    /// are killed, and the threads are joined for at most [`STOP_GRACE`].
    /// A worker still inside a socket call by then is detached; it exits
    /// when its attempt's timeout ends. Returns whether every thread was
    /// joined. Idempotent; also run on drop.
    pub fn stop(&mut self) -> bool {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            // Take the lock so the scheduler is either waiting (and gets
            // the notification) or will see the flag before waiting.
            let _inner = self.shared.lock();
            self.shared.wake.notify_all();
        }
        let give_up = Instant::now() + STOP_GRACE;
        loop {
            let (done, running): (Vec<_>, Vec<_>) =
                self.threads.drain(..).partition(|h| h.is_finished());
            self.threads = running;
            for h in done {
                let _ = h.join();
            }
            if self.threads.is_empty() {
                return true;
            }
            if Instant::now() >= give_up {
                self.threads.clear();
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, t: Transition) {
        if let Err(TrySendError::Full(_)) = self.transitions.try_send(t) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Window over which first checks are spread.
const MAX_SPREAD: Duration = Duration::from_secs(1);

/// A stable offset in `0..min(interval, 1 s)` for `id` (splitmix64).
fn spread(id: u64, interval: Duration) -> Duration {
    let interval = interval.min(MAX_SPREAD);
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(z % ms)
}

fn next_gen(counter: &mut u64) -> u64 {
    *counter += 1;
    *counter
}

impl AgentRuntime {
    fn new(id: u64, spec: &AgentSpec, now: Instant, gen: u64) -> Self {
        AgentRuntime {
            gen,
            status: AgentStatus::default(),
            next_poll: now + spread(id, spec.interval()),
            in_flight: false,
        }
    }
}

impl Entry {
    fn new(target: Target, probe: Probe, now: Instant, gens: &mut u64) -> Self {
        let state = if probe == Probe::None {
            State::Up
        } else {
            State::Unknown
        };
        let agent = target
            .agent
            .as_ref()
            .map(|a| AgentRuntime::new(target.id, a, now, next_gen(gens)));
        Entry {
            health: RiseFall::with_state(target.check.rise, target.check.fall, state),
            probe: Arc::new(probe),
            check_gen: next_gen(gens),
            last_result: None,
            last_change: None,
            checks: 0,
            latency_ewma: None,
            next_check: now + spread(target.id, target.check.interval()),
            check_in_flight: false,
            agent,
            target,
        }
    }

    fn available(&self) -> bool {
        available(self.health.state(), self.agent.as_ref().map(|a| &a.status))
    }

    /// Applies a new spec for the same id and address; returns the
    /// transition if availability changed.
    fn update(
        &mut self,
        target: Target,
        probe: Probe,
        now: Instant,
        gens: &mut u64,
    ) -> Option<Transition> {
        let was = self.available();
        if self.target.check != target.check {
            let c = &target.check;
            let before = self.health.state();
            let state = if probe == Probe::None {
                State::Up
            } else if *self.probe == Probe::None {
                State::Unknown
            } else {
                before
            };
            self.health = RiseFall::with_state(c.rise, c.fall, state);
            if state != before {
                self.last_change = Some(SystemTime::now());
            }
            self.probe = Arc::new(probe);
            self.check_gen = next_gen(gens);
            self.check_in_flight = false;
            self.last_result = None;
            self.latency_ewma = None;
            self.checks = 0;
            self.next_check = now + spread(target.id, c.interval());
        }
        if self.target.agent != target.agent {
            self.agent = match (self.agent.take(), &target.agent) {
                (_, None) => None,
                (Some(mut a), Some(spec)) => {
                    a.gen = next_gen(gens);
                    a.in_flight = false;
                    a.next_poll = now + spread(target.id, spec.interval());
                    Some(a)
                }
                (None, Some(spec)) => Some(AgentRuntime::new(target.id, spec, now, next_gen(gens))),
            };
        }
        self.target = target;
        let is = self.available();
        (was != is).then(|| Transition {
            id: self.target.id,
            up: is,
            reason: "configuration changed".to_string(),
            at: SystemTime::now(),
        })
    }

    fn status(&self) -> TargetStatus {
        TargetStatus {
            id: self.target.id,
            addr: self.target.addr,
            kind: self.target.check.kind,
            state: self.health.state(),
            last_result: self.last_result.clone(),
            last_change: self.last_change,
            consecutive_ok: self.health.consecutive_ok(),
            consecutive_fail: self.health.consecutive_fail(),
            checks: self.checks,
            latency_ewma: self.latency_ewma,
            agent: self.agent.as_ref().map(|a| a.status.clone()),
        }
    }

    fn check_due(&self, now: Instant) -> bool {
        !self.check_in_flight && *self.probe != Probe::None && self.next_check <= now
    }

    fn agent_due(&self, now: Instant) -> bool {
        self.agent
            .as_ref()
            .is_some_and(|a| !a.in_flight && a.next_poll <= now)
    }

    /// The earliest time something of this entry becomes due, if anything
    /// is waiting.
    fn next_due(&self) -> Option<Instant> {
        let check =
            (!self.check_in_flight && *self.probe != Probe::None).then_some(self.next_check);
        let agent = self
            .agent
            .as_ref()
            .filter(|a| !a.in_flight)
            .map(|a| a.next_poll);
        match (check, agent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn check_job(&self, now: Instant) -> Job {
        let t = &self.target;
        Job {
            id: t.id,
            gen: self.check_gen,
            dispatched: now,
            work: Work::Check {
                probe: Arc::clone(&self.probe),
                ctx: CheckContext {
                    real: t.addr,
                    addr: t.check.check_addr(t.addr),
                    vip: t.vip,
                    timeout: t.check.timeout(),
                },
            },
        }
    }

    fn agent_job(&self, now: Instant) -> Option<Job> {
        let (a, spec) = (self.agent.as_ref()?, self.target.agent.as_ref()?);
        Some(Job {
            id: self.target.id,
            gen: a.gen,
            dispatched: now,
            work: Work::Agent {
                addr: spec.agent_addr(self.target.addr),
                send: spec.send.clone(),
                timeout: spec.timeout(),
            },
        })
    }

    fn apply_check(&mut self, r: CheckResult, dispatched: Instant) -> Option<Transition> {
        self.check_in_flight = false;
        self.next_check = dispatched + self.target.check.interval();
        self.checks += 1;
        if r.ok {
            self.latency_ewma = Some(ewma(self.latency_ewma, r.latency));
        }
        let was = self.available();
        let before = self.health.state();
        self.health.record(r.ok);
        if self.health.state() != before {
            self.last_change = Some(r.at);
        }
        let is = self.available();
        let transition = (was != is).then(|| {
            let (n, what) = if is {
                (self.health.rise(), "successful")
            } else {
                (self.health.fall(), "failed")
            };
            Transition {
                id: self.target.id,
                up: is,
                reason: format!(
                    "{n} consecutive {what} {} checks: {}",
                    self.target.check.kind, r.detail
                ),
                at: r.at,
            }
        });
        self.last_result = Some(r);
        transition
    }

    fn apply_agent(
        &mut self,
        outcome: Result<String, String>,
        dispatched: Instant,
    ) -> Option<Transition> {
        let was = self.available();
        let interval = self.target.agent.as_ref()?.interval();
        let a = self.agent.as_mut()?;
        a.in_flight = false;
        a.next_poll = dispatched + interval;
        a.status.polls += 1;
        let at = SystemTime::now();
        a.status.last_poll = Some(at);
        match outcome {
            Ok(raw) => a.status.apply_raw(&raw),
            Err(e) => a.status.last_error = Some(e),
        }
        let reason = format!(
            "agent: {} (reply {:?})",
            a.status.admin.as_str(),
            a.status.last_reply
        );
        let is = self.available();
        (was != is).then_some(Transition {
            id: self.target.id,
            up: is,
            reason,
            at,
        })
    }
}

/// The scheduler loop: dispatch due work to idle workers, then sleep until
/// the next due time or a wake-up.
fn scheduler(shared: &Shared, jobs: &Sender<Job>) {
    let mut inner = shared.lock();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let mut due: Vec<(Instant, u64, bool)> = Vec::new();
        for e in inner.entries.values() {
            if e.check_due(now) {
                due.push((e.next_check, e.target.id, false));
            }
            if e.agent_due(now) {
                if let Some(a) = &e.agent {
                    due.push((a.next_poll, e.target.id, true));
                }
            }
        }
        due.sort_unstable();
        let mut busy = false;
        for (_, id, is_agent) in due {
            let Some(e) = inner.entries.get_mut(&id) else {
                continue;
            };
            let job = if is_agent {
                match e.agent_job(now) {
                    Some(j) => j,
                    None => continue,
                }
            } else {
                e.check_job(now)
            };
            match jobs.try_send(job) {
                Ok(()) => {
                    if is_agent {
                        if let Some(a) = e.agent.as_mut() {
                            a.in_flight = true;
                        }
                    } else {
                        e.check_in_flight = true;
                    }
                }
                Err(TrySendError::Full(_)) => {
                    busy = true;
                    break;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        let sleep = if busy {
            BUSY_RETRY
        } else {
            let next = inner
                .entries
                .values()
                .filter_map(Entry::next_due)
                .min()
                .unwrap_or(now + IDLE_WAKE)
                .min(now + IDLE_WAKE);
            next.saturating_duration_since(Instant::now())
        };
        if !sleep.is_zero() {
            inner = shared
                .wake
                .wait_timeout(inner, sleep)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A worker: run jobs until the scheduler goes away.
fn worker(shared: &Shared, jobs: &Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        let outcome = catch_unwind(AssertUnwindSafe(|| run_job(&job.work, &shared.stop)))
            .unwrap_or_else(|_| match job.work {
                Work::Check { .. } => Outcome::Check(CheckResult {
                    ok: false,
                    detail: "internal error: check panicked".into(),
                    latency: job.dispatched.elapsed(),
                    at: SystemTime::now(),
                }),
                Work::Agent { .. } => Outcome::Agent(Err("internal error: poll panicked".into())),
            });
        let mut inner = shared.lock();
        if let Some(e) = inner.entries.get_mut(&job.id) {
            let transition = match outcome {
                Outcome::Check(r) if e.check_gen == job.gen => e.apply_check(r, job.dispatched),
                Outcome::Agent(r) if e.agent.as_ref().is_some_and(|a| a.gen == job.gen) => {
                    e.apply_agent(r, job.dispatched)
                }
                _ => None,
            };
            if let Some(t) = transition {
                shared.emit(t);
            }
        }
        drop(inner);
        shared.wake.notify_all();
    }
}

fn run_job(work: &Work, stop: &AtomicBool) -> Outcome {
    match work {
        Work::Check { probe, ctx } => Outcome::Check(checks::run(probe, ctx, Some(stop))),
        Work::Agent {
            addr,
            send,
            timeout,
        } => Outcome::Agent(agent::poll(
            *addr,
            send.as_deref(),
            &Deadline::after(*timeout),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_within_interval_and_stable() {
        let i = Duration::from_millis(2000);
        for id in 0..1000 {
            assert!(spread(id, i) < MAX_SPREAD);
            assert!(spread(id, Duration::from_millis(100)) < Duration::from_millis(100));
            assert_eq!(spread(id, i), spread(id, i));
        }
        assert_eq!(spread(7, Duration::ZERO), Duration::ZERO);
        // Spread out, not all in the same place.
        let distinct: HashSet<_> = (0..100).map(|id| spread(id, i)).collect();
        assert!(distinct.len() > 50);
    }

    fn status(state: State, agent: Option<AgentStatus>) -> TargetStatus {
        TargetStatus {
            id: 1,
            addr: "127.0.0.1:1".parse().unwrap(),
            kind: CheckKind::Tcp,
            state,
            last_result: None,
            last_change: None,
            consecutive_ok: 0,
            consecutive_fail: 0,
            checks: 0,
            latency_ewma: None,
            agent,
        }
    }

    #[test]
    fn availability_and_weight() {
        assert!(status(State::Unknown, None).is_available());
        assert!(status(State::Up, None).is_available());
        assert!(!status(State::Down, None).is_available());
        assert_eq!(status(State::Up, None).effective_weight_percent(), 100);
        assert_eq!(status(State::Down, None).effective_weight_percent(), 0);
        let mut a = AgentStatus::default();
        a.apply_raw("150%");
        assert_eq!(
            status(State::Up, Some(a.clone())).effective_weight_percent(),
            150
        );
        assert_eq!(
            status(State::Down, Some(a.clone())).effective_weight_percent(),
            0
        );
        a.apply_raw("drain");
        let s = status(State::Up, Some(a.clone()));
        assert!(s.is_available() && s.is_draining());
        assert_eq!(s.effective_weight_percent(), 0);
        a.apply_raw("maint");
        assert!(!status(State::Up, Some(a.clone())).is_available());
        a.apply_raw("ready");
        a.apply_raw("down");
        assert!(!status(State::Up, Some(a)).is_available());
    }
}
