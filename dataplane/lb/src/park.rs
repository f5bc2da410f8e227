//! Packets parked until something they wait for happens. Client packets
//! of a proxied connection wait for its handshake with the real: the
//! request a client sends right after its ACK usually comes before the
//! real's SYN-ACK, and dropping it would cost the client a retransmission
//! timeout. Later fragments wait for their datagram's first fragment
//! ([`crate::fragments`]). Parked packets are tried again whenever the
//! awaited count moves (handshakes completed, first fragments
//! remembered), and dropped after the queue's time ([`PARK_MS`] for
//! handshakes); the queue is bounded, and what does not fit is dropped
//! (the sender sends it again).

/// Most packets parked per worker.
pub const MAX_PARKED: usize = 64;
/// How long a packet stays parked.
pub const PARK_MS: u64 = 1000;

/// A parked frame and the port it came in on.
struct Parked<F> {
    frame: F,
    rx_port: usize,
    since: u64,
}

/// The parked packets of a worker (`F`: the frame's owner, an mbuf in the
/// daemon).
pub struct ParkQueue<F> {
    parked: Vec<Parked<F>>,
    seen_completions: u64,
    max: usize,
    park_ms: u64,
}

impl<F> Default for ParkQueue<F> {
    /// The queue of proxied handshakes: [`MAX_PARKED`] for [`PARK_MS`].
    fn default() -> Self {
        ParkQueue::new(MAX_PARKED, PARK_MS)
    }
}

impl<F> ParkQueue<F> {
    /// A queue of at most `max` packets, each kept `park_ms` at most.
    pub fn new(max: usize, park_ms: u64) -> ParkQueue<F> {
        ParkQueue {
            parked: Vec::with_capacity(max),
            seen_completions: 0,
            max,
            park_ms,
        }
    }

    /// Parks `frame` (first parked at `since`); gives it back when full.
    pub fn park(&mut self, frame: F, rx_port: usize, since: u64) -> Result<(), F> {
        if self.parked.len() >= self.max {
            return Err(frame);
        }
        self.parked.push(Parked {
            frame,
            rx_port,
            since,
        });
        Ok(())
    }

    /// Packets parked.
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// Whether none is parked.
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// When what the packets wait for happened since the last call
    /// (`completions` moved), moves every parked packet into `retry`
    /// (frame, port, first parked at) for the caller to process again (it
    /// parks it anew if it still waits); packets parked longer than the
    /// queue's time go to `expired`. Allocates nothing when `retry` has
    /// room for the queue's capacity.
    pub fn take_due(
        &mut self,
        completions: u64,
        now: u64,
        retry: &mut Vec<(F, usize, u64)>,
        mut expired: impl FnMut(F),
    ) {
        let moved = completions != self.seen_completions;
        self.seen_completions = completions;
        let mut i = 0;
        while i < self.parked.len() {
            let old = now.saturating_sub(self.parked[i].since) > self.park_ms;
            if !old && !moved {
                i += 1;
                continue;
            }
            let p = self.parked.swap_remove(i);
            if old {
                expired(p.frame);
            } else {
                retry.push((p.frame, p.rx_port, p.since));
            }
        }
    }

    /// Every parked packet, to free at shutdown.
    pub fn drain(&mut self) -> impl Iterator<Item = F> + '_ {
        self.parked.drain(..).map(|p| p.frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_packets_are_retried_when_a_handshake_completes_and_expire_after_a_second() {
        let mut q = ParkQueue::default();
        q.park(1u32, 0, 0).unwrap();
        q.park(2u32, 1, 500).unwrap();
        let (mut retried, mut gone) = (Vec::with_capacity(MAX_PARKED), vec![]);
        q.take_due(0, 900, &mut retried, |f| gone.push(f));
        assert!(retried.is_empty() && gone.is_empty() && q.len() == 2);
        q.take_due(1, 1200, &mut retried, |f| gone.push(f));
        assert_eq!((retried, gone), (vec![(2, 1, 500)], vec![1]));
        assert!(q.is_empty());
        for i in 0..MAX_PARKED {
            q.park(i as u32, 0, 0).unwrap();
        }
        assert_eq!(q.park(99, 0, 0), Err(99));
        assert_eq!(q.drain().count(), MAX_PARKED);
    }
}
