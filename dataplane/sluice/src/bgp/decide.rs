//! Which VIPs the appliance announces, and why each other one is
//! withdrawn: a pure function of what the control thread knows.

use std::net::IpAddr;

/// Why a VIP is not announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawn {
    /// The daemon is stopping (withdraw, wait, stop).
    Draining,
    /// A worker stopped polling: the appliance cannot forward.
    Stuck,
    /// Every real of every service on the VIP is down or quiesced.
    NoUsableReal,
    /// `sluicectl vip withdraw` (maintenance).
    ByOperator,
}

impl Withdrawn {
    /// The reason as `sluicectl status` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Withdrawn::Draining => "draining: the daemon is stopping",
            Withdrawn::Stuck => "a worker stopped polling",
            Withdrawn::NoUsableReal => "no usable real",
            Withdrawn::ByOperator => "withdrawn by the operator",
        }
    }
}

/// One VIP's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipState {
    /// The VIP.
    pub vip: IpAddr,
    /// None: announced.
    pub withdrawn: Option<Withdrawn>,
}

/// What the decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Every VIP with whether a service on it has a usable real.
    pub vips: &'a [(IpAddr, bool)],
    /// Every worker polls.
    pub alive: bool,
    /// The daemon is stopping.
    pub draining: bool,
    /// VIPs the operator withdrew.
    pub held: &'a [IpAddr],
}

/// Every VIP's state, sorted by address. The first reason that applies
/// wins: draining, then a stuck worker, then the operator, then the reals.
pub fn decide(i: Inputs<'_>) -> Vec<VipState> {
    let mut out: Vec<VipState> = i
        .vips
        .iter()
        .map(|(vip, usable)| {
            let withdrawn = if i.draining {
                Some(Withdrawn::Draining)
            } else if !i.alive {
                Some(Withdrawn::Stuck)
            } else if i.held.contains(vip) {
                Some(Withdrawn::ByOperator)
            } else if !usable {
                Some(Withdrawn::NoUsableReal)
            } else {
                None
            };
            VipState {
                vip: *vip,
                withdrawn,
            }
        })
        .collect();
    out.sort_by_key(|v| v.vip);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_reason_withdraws_and_the_first_wins() {
        let vips = [
            (ip("192.0.2.20"), true),
            (ip("192.0.2.10"), true),
            (ip("192.0.2.30"), false),
        ];
        let held = [ip("192.0.2.20")];
        let mut i = Inputs {
            vips: &vips,
            alive: true,
            draining: false,
            held: &held,
        };
        let got: Vec<_> = decide(i).iter().map(|v| v.withdrawn).collect();
        assert_eq!(
            got,
            [
                None,
                Some(Withdrawn::ByOperator),
                Some(Withdrawn::NoUsableReal)
            ]
        );
        i.alive = false;
        assert!(decide(i)
            .iter()
            .all(|v| v.withdrawn == Some(Withdrawn::Stuck)));
        i.draining = true;
        assert!(decide(i)
            .iter()
            .all(|v| v.withdrawn == Some(Withdrawn::Draining)));
    }
}
