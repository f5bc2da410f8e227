//! The monitor end to end: scheduling, rise/fall, transitions, agents,
//! target updates and stopping, against servers on 127.0.0.1.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::*;
use sluice_health::{
    AgentAdmin, AgentSpec, CheckKind, CheckSpec, Monitor, State, Target, TargetStatus,
};

const VIP: &str = "192.0.2.10:80";

fn tcp(interval_ms: u64, timeout_ms: u64, rise: u32, fall: u32) -> CheckSpec {
    let mut c = CheckSpec::new(CheckKind::Tcp);
    c.interval_ms = interval_ms;
    c.timeout_ms = timeout_ms;
    c.rise = rise;
    c.fall = fall;
    c
}

fn target(id: u64, addr: SocketAddr, check: CheckSpec) -> Target {
    Target {
        id,
        addr,
        vip: VIP.parse().unwrap(),
        check,
        agent: None,
    }
}

fn status(m: &Monitor, id: u64) -> TargetStatus {
    m.status(id).expect("target present")
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn tcp_up_down_up() {
    let l = TcpListener::bind(local(0)).unwrap();
    let addr = addr_of(&l);
    let m = Monitor::new(2).unwrap();
    m.set_targets(vec![target(1, addr, tcp(60, 40, 2, 2))])
        .unwrap();
    // Unknown (counts as up) at first.
    let s = status(&m, 1);
    assert_eq!(s.state, State::Unknown);
    assert!(s.is_available());
    assert!(wait_until(WAIT, || status(&m, 1).state == State::Up));
    // Unknown -> Up is no change of availability.
    assert!(m.transitions().try_recv().is_err());
    let s = status(&m, 1);
    assert!(s.consecutive_ok >= 2 && s.checks >= 2);
    assert!(s.last_change.is_some());
    assert!(s.latency_ewma.is_some());
    assert!(s.last_result.as_ref().unwrap().ok);

    // Close the port: down after `fall` failures.
    drop(l);
    let t = m.transitions().recv_timeout(WAIT).expect("down transition");
    assert_eq!((t.id, t.up), (1, false));
    assert!(
        t.reason.starts_with("2 consecutive failed tcp checks"),
        "{}",
        t.reason
    );
    let s = status(&m, 1);
    assert_eq!(s.state, State::Down);
    assert!(!s.is_available());
    assert_eq!(s.effective_weight_percent(), 0);
    assert!(s.consecutive_fail >= 2);
    assert!(s.last_result.unwrap().detail.contains("refused"));

    // Listen again on the same port: up after `rise` successes.
    let _l = TcpListener::bind(addr).unwrap();
    let t = m.transitions().recv_timeout(WAIT).expect("up transition");
    assert_eq!((t.id, t.up), (1, true));
    assert!(
        t.reason.starts_with("2 consecutive successful tcp checks"),
        "{}",
        t.reason
    );
    assert_eq!(status(&m, 1).state, State::Up);
}

#[test]
fn hanging_check_does_not_block_others() {
    let l = TcpListener::bind(local(0)).unwrap();
    let healthy = addr_of(&l);
    let mut http = CheckSpec::new(CheckKind::Http);
    http.interval_ms = 400;
    http.timeout_ms = 300;
    http.fall = 1;
    let mut m = Monitor::new(4).unwrap();
    m.set_targets(vec![
        target(1, hanging_server(), http.clone()),
        target(2, hanging_server(), http),
        target(3, healthy, tcp(30, 20, 1, 1)),
    ])
    .unwrap();
    // Both hanging targets time out and go down...
    for _ in 0..2 {
        let t = m.transitions().recv_timeout(WAIT).expect("down transition");
        assert!(!t.up && t.id != 3, "{t:?}");
        assert!(t.reason.contains("timeout after 300 ms"), "{}", t.reason);
    }
    // ...while the healthy one keeps being checked.
    let before = status(&m, 3).checks;
    assert!(
        wait_until(WAIT, || status(&m, 3).checks >= before + 10),
        "healthy target checked {} times",
        status(&m, 3).checks - before
    );
    let s = status(&m, 3);
    assert_eq!(s.state, State::Up);
    assert_eq!(s.consecutive_fail, 0);
    assert!(m.stop());
}

#[test]
fn check_none_is_up_without_checks() {
    let m = Monitor::new(1).unwrap();
    m.set_targets(vec![target(5, closed_port(), CheckSpec::default())])
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let s = status(&m, 5);
    assert_eq!((s.state, s.checks, s.kind), (State::Up, 0, CheckKind::None));
    assert!(s.is_available());
}

fn with_agent(id: u64, agent_port: u16) -> Target {
    let mut t = target(id, local(1), CheckSpec::default());
    t.agent = Some(AgentSpec {
        port: agent_port,
        interval_ms: 50,
        timeout_ms: 40,
        send: None,
    });
    t
}

#[test]
fn agent_weight_drain_garbage_maint() {
    let (agent, reply) = agent_server("75%\n");
    let m = Monitor::new(2).unwrap();
    m.set_targets(vec![with_agent(7, agent.port())]).unwrap();
    let agent_of = |m: &Monitor| status(m, 7).agent.unwrap();

    assert!(wait_until(WAIT, || agent_of(&m).weight_percent == Some(75)));
    let s = status(&m, 7);
    assert_eq!(s.effective_weight_percent(), 75);
    let a = s.agent.unwrap();
    assert_eq!((a.last_reply.as_str(), a.admin), ("75%", AgentAdmin::None));
    assert!(a.polls >= 1 && a.last_error.is_none() && a.last_poll.is_some());

    *reply.lock().unwrap() = "drain\n".into();
    assert!(wait_until(WAIT, || agent_of(&m).admin == AgentAdmin::Drain));
    let s = status(&m, 7);
    assert!(s.is_available() && s.is_draining());
    assert_eq!(s.effective_weight_percent(), 0);
    assert_eq!(s.agent.unwrap().weight_percent, Some(75));

    // Garbage: recorded, previous values kept.
    *reply.lock().unwrap() = "all systems nominal\n".into();
    assert!(wait_until(WAIT, || agent_of(&m).last_error.is_some()));
    let a = agent_of(&m);
    assert!(a.last_error.unwrap().contains("unknown word \"all\""));
    assert_eq!((a.weight_percent, a.admin), (Some(75), AgentAdmin::Drain));
    assert_eq!(a.last_reply, "drain");

    // maint takes the target out; ready brings it back.
    assert!(m.transitions().try_recv().is_err());
    *reply.lock().unwrap() = "maint # upgrading\n".into();
    let t = m
        .transitions()
        .recv_timeout(WAIT)
        .expect("maint transition");
    assert_eq!((t.id, t.up), (7, false));
    assert!(t.reason.starts_with("agent: maint"), "{}", t.reason);
    assert!(!status(&m, 7).is_available());
    *reply.lock().unwrap() = "up, ready, 50%".into();
    let t = m
        .transitions()
        .recv_timeout(WAIT)
        .expect("ready transition");
    assert_eq!((t.id, t.up), (7, true));
    assert_eq!(status(&m, 7).effective_weight_percent(), 50);
}

#[test]
fn agent_unreachable_is_recorded_only() {
    let m = Monitor::new(1).unwrap();
    m.set_targets(vec![with_agent(8, closed_port().port())])
        .unwrap();
    assert!(wait_until(WAIT, || status(&m, 8)
        .agent
        .unwrap()
        .last_error
        .is_some_and(|e| e.contains("refused"))));
    let s = status(&m, 8);
    assert!(s.is_available());
    assert_eq!(s.effective_weight_percent(), 100);
}

#[test]
fn agent_send_string_is_written() {
    // An agent answering only after reading "status\n".
    let l = TcpListener::bind(local(0)).unwrap();
    let port = addr_of(&l).port();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for s in l.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(&s);
            let _ = r.read_line(&mut line);
            let reply = if line == "status\n" {
                "33%\n"
            } else {
                "bogus\n"
            };
            let _ = (&s).write_all(reply.as_bytes());
        }
    });
    let mut t = with_agent(9, port);
    t.agent.as_mut().unwrap().send = Some("status\n".into());
    let m = Monitor::new(1).unwrap();
    m.set_targets(vec![t]).unwrap();
    assert!(wait_until(WAIT, || status(&m, 9)
        .agent
        .unwrap()
        .weight_percent
        == Some(33)));
}

#[test]
fn set_targets_keeps_updates_and_validates() {
    let dead = closed_port();
    let m = Monitor::new(2).unwrap();
    let down_check = tcp(40, 30, 1, 1);
    m.set_targets(vec![target(1, dead, down_check.clone())])
        .unwrap();
    let t = m.transitions().recv_timeout(WAIT).expect("down");
    assert_eq!((t.id, t.up), (1, false));

    // Same target again, plus a new one: state kept, no event.
    let mut moved_vip = target(1, dead, down_check.clone());
    moved_vip.vip = "192.0.2.11:443".parse().unwrap();
    m.set_targets(vec![
        moved_vip.clone(),
        target(2, dead, CheckSpec::default()),
    ])
    .unwrap();
    assert_eq!(status(&m, 1).state, State::Down);
    assert_eq!(status(&m, 2).state, State::Up);
    let checks = status(&m, 1).checks;
    assert!(wait_until(WAIT, || status(&m, 1).checks > checks));

    // A changed check keeps the state, restarts the counts.
    let mut changed = moved_vip.clone();
    changed.check.rise = 3;
    m.set_targets(vec![changed.clone()]).unwrap();
    let s = status(&m, 1);
    assert_eq!((s.state, s.last_result.is_none()), (State::Down, true));
    assert!(m.status(2).is_none());

    // A check set to none brings the target up, with a transition.
    let mut none = changed.clone();
    none.check = CheckSpec::default();
    m.set_targets(vec![none]).unwrap();
    let t = m.transitions().try_recv().expect("up by configuration");
    assert_eq!(
        (t.id, t.up, t.reason.as_str()),
        (1, true, "configuration changed")
    );

    // Another address under the same id is a new target.
    let mut other = changed.clone();
    other.addr = closed_port();
    m.set_targets(vec![other]).unwrap();
    assert_eq!(status(&m, 1).state, State::Unknown);

    // Invalid sets are rejected whole.
    let snapshot = m.snapshot();
    let err = m
        .set_targets(vec![
            target(3, dead, down_check.clone()),
            target(3, dead, down_check.clone()),
        ])
        .unwrap_err();
    assert_eq!(err.to_string(), "duplicate target id 3");
    let mut bad = down_check;
    bad.fall = 0;
    let err = m.set_targets(vec![target(4, dead, bad)]).unwrap_err();
    assert!(err.to_string().starts_with("target 4 (127.0.0.1:"), "{err}");
    assert!(err.to_string().contains("fall must be between 1"), "{err}");
    let mut bad_agent = target(5, dead, CheckSpec::default());
    bad_agent.agent = Some(AgentSpec::new(0));
    assert!(m.set_targets(vec![bad_agent]).is_err());
    assert_eq!(m.snapshot().len(), snapshot.len());
    assert_eq!(m.snapshot()[0].id, snapshot[0].id);
}

#[test]
fn stop_kills_running_exec_and_joins() {
    let pidfile = scratch("monitor-stop.pid");
    let mut check = CheckSpec::new(CheckKind::Exec);
    check.command = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("echo $$ > {}; exec sleep 10", pidfile.display()),
    ]);
    check.interval_ms = 20_000;
    check.timeout_ms = 15_000;
    let mut m = Monitor::new(2).unwrap();
    m.set_targets(vec![target(1, local(80), check)]).unwrap();
    let pid = read_pid(&pidfile);
    let start = Instant::now();
    assert!(m.stop(), "threads not joined");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(process_gone(pid), "pid {pid} still running");
    // Stopping again is harmless; so is dropping.
    assert!(m.stop());
    drop(m);
    let _ = std::fs::remove_file(pidfile);
}

#[test]
fn snapshot_is_sorted_and_complete() {
    let m = Monitor::new(1).unwrap();
    let targets: Vec<Target> = [9, 3, 5]
        .into_iter()
        .map(|id| target(id, local(1), CheckSpec::default()))
        .collect();
    m.set_targets(targets).unwrap();
    let ids: Vec<u64> = m.snapshot().iter().map(|s| s.id).collect();
    assert_eq!(ids, [3, 5, 9]);
    assert_eq!(m.pool_size(), 1);
    assert_eq!(Monitor::new(0).unwrap().pool_size(), 1);
    assert_eq!(m.dropped_transitions(), 0);
}
