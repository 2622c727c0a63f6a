//! Where a key's slots are and what a slot holds: the two neighbourhoods and the lookup
//! order a fingerprint gives, and a key slot's packing of tag (fingerprint, claim bit) and
//! state (algorithm word, ring generation or claim time). Pure arithmetic, no atomics
//! (see the table docs, "Layout").

/// Key slots in one neighbourhood: two 64-byte cache lines of 16-byte slots. Each key
/// has two neighbourhoods (one in a table of 8 slots).
pub const NEIGHBOURHOOD: usize = 8;

/// Slots per 64-byte line; neighbourhoods start on a line boundary.
pub(super) const LINE: usize = 4;

// `find` scans a neighbourhood as two lines.
const _: () = assert!(NEIGHBOURHOOD == 2 * LINE);

/// Claim-state generation marking a *move* in progress (single-word limits only, whose
/// new-key claims use generation 0): both the reserved target and the frozen source of a
/// relocation carry it.
pub(super) const MOVING: u32 = 1;

/// The first slots of the two neighbourhoods of `fingerprint` in a table of `mask + 1`
/// slots (equal in a table of 8 slots, which has room for one).
///
/// Both come from the fingerprint alone, so a relocator knows them for any key it finds.
/// The first starts at line `fingerprint >> 17` (mod lines); the second 2 to `lines − 2`
/// lines further on (chosen by a multiplicative mix of the fingerprint), so the two never
/// overlap. In a 16-slot table they are the two halves.
pub(super) fn neighbourhoods(fingerprint: u64, mask: usize) -> [usize; 2] {
    let lines = (mask / LINE).wrapping_add(1);
    let line_mask = lines.wrapping_sub(1);
    let first = first_neighbourhood(fingerprint, mask) / LINE;
    if lines < 4 {
        return [first * LINE; 2];
    }
    let mixed = fingerprint.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let choices = (lines - 3) as u128;
    // Multiply-shift: uniform in 0..choices without a division.
    let step = 2 + ((u128::from(mixed) * choices) >> 64) as usize;
    [first * LINE, ((first + step) & line_mask) * LINE]
}

/// The first slot of `fingerprint`'s first neighbourhood (see [`neighbourhoods`]): all the
/// single-limit fast path needs, without the second's multiplications.
#[inline(always)]
pub(super) const fn first_neighbourhood(fingerprint: u64, mask: usize) -> usize {
    // lines − 1, for lines = (mask + 1) / LINE.
    let line_mask = mask / LINE;
    ((fingerprint >> 17) as usize & line_mask) * LINE
}

/// Where in each of its neighbourhoods a key's lookups start, and a new key is placed if
/// that slot is free: offset `fingerprint mod 8`. A key then mostly sits in the first slot
/// its lookups read, so a lookup usually ends at its first load, and the branch that ends
/// it is predictable. Were every key read from offset 0, a key would sit at a random
/// offset and the scan's exit branch would mispredict on nearly every check (perf,
/// `profile_driver rc_keyed_1k`). Any order within a neighbourhood keeps the table's
/// invariants, which rest only on the first neighbourhood being read before the second.
#[inline(always)]
pub(super) const fn home_offset(fingerprint: u64) -> usize {
    fingerprint as usize % NEIGHBOURHOOD
}

/// The slots of the neighbourhood starting at `start` (in a table of `mask + 1` slots), in
/// the order the lookups of `fingerprint` read them: from its [`home_offset`] on, wrapping
/// within the neighbourhood.
#[inline(always)] // see `Table::run`
pub(super) fn neighbourhood_order(
    start: usize,
    mask: usize,
    fingerprint: u64,
) -> impl Iterator<Item = usize> {
    let home = home_offset(fingerprint);
    (0..NEIGHBOURHOOD).map(move |step| (start + (home + step) % NEIGHBOURHOOD) & mask)
}

/// The fingerprint of a key's hash: 63 bits, never 0 (0 marks an empty slot).
pub(super) const fn fingerprint_of(hash: u64) -> u64 {
    let fingerprint = hash & !CLAIMING;
    if fingerprint == 0 {
        1
    } else {
        fingerprint
    }
}

/// A claim older than this (in the callers' `now`) is considered abandoned.
pub const STALE_CLAIM_NANOS: u64 = 1 << 31;

/// Claim times are stored in units of 2^30 ns (about 1.07 s) to fit 32 bits.
pub(super) const CLAIM_TIME_SHIFT: u32 = 30;

/// Tag bit set while a claim is in progress.
pub(super) const CLAIMING: u64 = 1 << 63;

pub(super) const fn pack(tag: u64, state: u64) -> u128 {
    ((tag as u128) << 64) | state as u128
}

pub(super) const fn tag_of(slot: u128) -> u64 {
    (slot >> 64) as u64
}

pub(super) const fn state_of(slot: u128) -> u64 {
    slot as u64
}

/// The generation half of a strict key slot's state (live, claiming or empty).
pub(super) const fn generation_of(slot: u128) -> u32 {
    slot as u32
}

pub(super) fn claim_state(now: u64, generation: u32) -> u64 {
    let coarse = u32::try_from(now >> CLAIM_TIME_SHIFT).unwrap_or(u32::MAX);
    (u64::from(coarse) << 32) | u64::from(generation)
}

pub(super) fn claim_is_stale(slot: u128, now: u64) -> bool {
    let claimed = (state_of(slot) >> 32) << CLAIM_TIME_SHIFT;
    now.saturating_sub(claimed) >= STALE_CLAIM_NANOS
}
