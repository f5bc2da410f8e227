//! Construction-time configuration of a connection table.

use crate::entry::Conn;
use crate::error::TableConfigError;
use crate::index::Index;
use crate::persist::Template;
use crate::timeouts::Timeouts;

/// Largest capacity: entry indices must leave the top bit of a `u32` free
/// (the timing wheel uses it to mark list heads).
pub const MAX_CAPACITY: u32 = 0x7FFF_FFFF;

/// Largest number of timing-wheel slots.
pub const MAX_WHEEL_SLOTS: u32 = 1 << 24;

/// Sizes, clock granularity, hash seed and timeouts of a
/// [`ConnTable`](crate::ConnTable). All memory is allocated from these at
/// construction; nothing grows later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Maximum number of connections (default 2^22 = 4,194,304).
    pub capacity: u32,
    /// Maximum number of persistence templates (default 2^18).
    pub template_capacity: u32,
    /// Timing-wheel tick in milliseconds (default 100): expiry happens at
    /// most one tick after an entry's expiry time.
    pub tick_ms: u32,
    /// Timing-wheel slots, a power of two (default 16384: with 100 ms ticks
    /// the wheel spans 27 min, more than the 15 min ESTABLISHED timeout, so
    /// most entries are slotted once).
    pub wheel_slots: u32,
    /// Seed of the hash (see [`FlowHasher`](crate::FlowHasher)). Set a
    /// random value per process; the default is a fixed constant.
    pub hash_seed: u64,
    /// Per-state timeouts.
    pub timeouts: Timeouts,
    /// Back the entries, indexes and wheels with transparent huge pages
    /// where the kernel offers them (default `true`): a lookup in a table
    /// of millions then misses the TLB far less often. `false` keeps 4 KiB
    /// pages (to measure the difference).
    pub huge_pages: bool,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            capacity: 1 << 22,
            template_capacity: 1 << 18,
            tick_ms: 100,
            wheel_slots: 1 << 14,
            hash_seed: 0x5EED_F00D_0123_4567,
            timeouts: Timeouts::default(),
            huge_pages: true,
        }
    }
}

impl TableConfig {
    /// A default configuration with the given connection capacity.
    pub fn with_capacity(capacity: u32) -> TableConfig {
        TableConfig {
            capacity,
            ..TableConfig::default()
        }
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), TableConfigError> {
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(TableConfigError(format!(
                "capacity {} not in 1..={MAX_CAPACITY}",
                self.capacity
            )));
        }
        if self.template_capacity > MAX_CAPACITY {
            return Err(TableConfigError(format!(
                "template_capacity {} above {MAX_CAPACITY}",
                self.template_capacity
            )));
        }
        if self.tick_ms == 0 {
            return Err(TableConfigError("tick_ms must be at least 1".into()));
        }
        if !self.wheel_slots.is_power_of_two()
            || self.wheel_slots < 2
            || self.wheel_slots > MAX_WHEEL_SLOTS
        {
            return Err(TableConfigError(format!(
                "wheel_slots {} must be a power of two in 2..={MAX_WHEEL_SLOTS}",
                self.wheel_slots
            )));
        }
        Ok(())
    }

    /// Bytes a table built from this configuration allocates: connection
    /// slab, two indices, template slab and index, and two wheels.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes_of::<std::net::Ipv4Addr>()
    }

    /// Bytes a table of address family `A` built from this configuration
    /// allocates (an IPv6 entry is 104 bytes, an IPv4 one 56; the indexes
    /// and wheel are the same).
    pub fn memory_bytes_of<A: sluice_model::IpAddress>(&self) -> usize {
        let conns = self.capacity as usize * std::mem::size_of::<Conn<A>>()
            + 2 * Index::new_size_bytes(self.capacity);
        let templates = self.template_capacity as usize * std::mem::size_of::<Template<A>>()
            + Index::new_size_bytes(self.template_capacity);
        conns + templates + 2 * self.wheel_slots as usize * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_sized_for_millions() {
        let c = TableConfig::default();
        c.validate().unwrap();
        assert_eq!(c.capacity, 4_194_304);
        // 56 B entry + 2 x 8 B of index per entry = 72 B per connection.
        let per_conn = (c.memory_bytes()
            - c.template_capacity as usize * (40 + 8)
            - 2 * 4 * c.wheel_slots as usize)
            / c.capacity as usize;
        assert_eq!(per_conn, 72);
    }

    #[test]
    fn rejects_bad_sizes() {
        for c in [
            TableConfig::with_capacity(0),
            TableConfig::with_capacity(MAX_CAPACITY + 1),
            TableConfig {
                tick_ms: 0,
                ..TableConfig::default()
            },
            TableConfig {
                wheel_slots: 1000,
                ..TableConfig::default()
            },
            TableConfig {
                wheel_slots: 1,
                ..TableConfig::default()
            },
        ] {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
