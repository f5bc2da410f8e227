//! Announcing the VIPs over BGP through the BIRD daemon that runs beside
//! Sluice: Sluice decides, BIRD speaks BGP (over the port's kernel
//! interface, the exception path).
//!
//! A VIP is announced while every worker polls and a service on it has a
//! usable real, unless the operator withdrew it (`sluicectl vip
//! withdraw`); on a graceful stop every VIP is withdrawn first, and the
//! daemon waits `drain_ms` for the routers to move before it stops
//! forwarding. [`decide`] is that rule, [`bird`] writes it as a BIRD
//! configuration file, [`speaker`] hands the file to BIRD (`configure` on
//! its control socket, [`birdc`]) off the control thread.
//!
//! When the whole appliance dies, its kernel interface goes with the
//! process, the BGP sessions over it fall silent and the routers drop its
//! routes after the hold time (or at once with BFD).

pub mod bird;
pub mod birdc;
pub mod decide;
pub mod speaker;
