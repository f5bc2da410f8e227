//! CPU lists (`0-3,8`, as `/sys/devices/system/cpu/online` writes them)
//! and DPDK's `--lcores` map (`0@1,(1,2)@(2-3),4`), parsed to check that
//! every lcore lands on a CPU the machine has.

use std::collections::{BTreeMap, BTreeSet};

/// Parses a CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.trim().parse().ok()?;
                (n, n)
            }
        };
        if b < a || b - a > 4096 {
            return None;
        }
        set.extend(a..=b);
    }
    Some(set)
}

/// A set in the lcore map: a number, a range, or a parenthesised list.
fn parse_set(s: &str) -> Option<BTreeSet<u32>> {
    let inner = s
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(s);
    let set = parse_cpu_list(inner)?;
    (!set.is_empty()).then_some(set)
}

/// Splits at commas outside parentheses.
fn top_level_items(s: &str) -> Option<Vec<&str>> {
    let (mut depth, mut start, mut items) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    (depth == 0).then(|| {
        items.push(&s[start..]);
        items
    })
}

/// Parses DPDK's `--lcores` map into each lcore's CPUs (an lcore without
/// `@` runs on the CPU of its own number).
pub fn parse_lcore_map(s: &str) -> Option<BTreeMap<u32, BTreeSet<u32>>> {
    let mut map = BTreeMap::new();
    for item in top_level_items(s.trim())? {
        let (lcores, cpus) = match item.split_once('@') {
            Some((l, c)) => (parse_set(l)?, Some(parse_set(c)?)),
            None => (parse_set(item)?, None),
        };
        for l in lcores {
            let on = cpus.clone().unwrap_or_else(|| BTreeSet::from([l]));
            map.insert(l, on);
        }
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8\n"), Some(set(&[0, 1, 2, 3, 8])));
        assert_eq!(parse_cpu_list("0"), Some(set(&[0])));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn lcore_maps() {
        let m = parse_lcore_map("0@1,1@0").unwrap();
        assert_eq!((m[&0].clone(), m[&1].clone()), (set(&[1]), set(&[0])));
        let m = parse_lcore_map("(0,1)@1,2,(3-4)@(2-3)").unwrap();
        assert_eq!(m[&0], set(&[1]));
        assert_eq!(m[&1], set(&[1]));
        assert_eq!(m[&2], set(&[2]));
        assert_eq!(m[&4], set(&[2, 3]));
        assert_eq!(parse_lcore_map("(0,1@1"), None);
        assert_eq!(parse_lcore_map("0@"), None);
    }
}
