//! Keys for the relocation scenarios of a 32-slot table, shared by `table_eviction` and
//! the loom models (`loom_table`), which build under different cfgs and so cannot share a
//! library: each includes this file as a module.

use ratecore::table::OwnedTable;

/// The keys a relocation scenario needs.
pub struct RelocationKeys {
    /// `same` keys with exactly `g`'s two neighbourhoods (named `{prefix}{n}`).
    pub same: Vec<Vec<u8>>,
    /// A key whose first neighbourhood is `g`'s first and whose second shares no
    /// 4-slot line with either of `g`'s.
    pub k: Vec<u8>,
}

/// Finds the keys (hashing only) in `table`, which must have 32 slots: 8 lines of 4, a
/// neighbourhood being two consecutive lines. Once `k` (charged first, so it sits in
/// `g`'s first neighbourhood) and 15 of `same` fill `g`'s neighbourhoods,
/// `g` fits only by moving `k` to its second neighbourhood, which is free.
pub fn relocation_keys(table: &OwnedTable, g: &[u8], prefix: &str, same: usize) -> RelocationKeys {
    assert_eq!(
        table.config().capacity(),
        32,
        "the scenario is laid out for 32 slots"
    );
    let lines = |start: usize| [start / 4, (start / 4 + 1) % 8];
    let [a, b] = table.neighbourhoods_of(g);
    assert_ne!(a, b, "g needs two distinct neighbourhoods");
    let taken: Vec<usize> = lines(a).into_iter().chain(lines(b)).collect();
    let mut found = Vec::new();
    let mut k = None;
    for n in 0u32.. {
        let name = format!("{prefix}{n}").into_bytes();
        let [first, second] = table.neighbourhoods_of(&name);
        if [first, second] == [a, b] {
            if found.len() < same {
                found.push(name);
            }
        } else if k.is_none() && first == a && lines(second).iter().all(|l| !taken.contains(l)) {
            k = Some(name);
        }
        if found.len() == same && k.is_some() {
            break;
        }
    }
    RelocationKeys {
        same: found,
        k: k.expect("the loop only ends once k is found"),
    }
}

/// Whether `slot` lies in the neighbourhood starting at `start` of a 32-slot table (the
/// neighbourhood wraps to slot 0 past the end).
pub fn within(slot: usize, start: usize) -> bool {
    slot.wrapping_sub(start) % 32 < 8
}
