//! `region_attach`: attaching to regions of arbitrary content.
//!
//! Three kinds of input:
//! - **Raw**: arbitrary bytes (optionally forged: marked ready, with a recomputed
//!   checksum and hash probe, so arbitrary header *fields* reach the deep validation) at
//!   an arbitrary offset of a 64-byte-aligned buffer;
//! - **Mutated**: a region initialised for an arbitrary small table and used for a while,
//!   then arbitrary bytes overwritten (header, counters or slots), optionally re-forged;
//! - **Planted**: a region initialised and used, then every occupied key slot given an
//!   arbitrary state word (single-word algorithms) or its ring arbitrary cells (strict),
//!   with the header untouched: "every 128-bit slot value is a state the algorithms
//!   handle".
//!
//! `attach` must return exactly the typed error an independent reading of the layout
//! (`region.rs`, version 2) predicts, or a table with the header's configuration; any
//! table that attaches is then used (checks, peeks, `check_each`), and must not panic
//! and must give sane decisions.

use std::fmt;

use arbitrary::Arbitrary;
use ratecore::table::region::{region_size, RegionTable, LAYOUT_VERSION, MAGIC, REGION_ALIGN};
use ratecore::{Algorithm, FullPolicy, LimitSpec, Quota, TableConfig, TableError};

use crate::model::{AnyModel, CompositeModel, Model};
use crate::table::{drive, resolve_calls, Driver, TableCase, TableOp};

const STATE_OFFSET: usize = 208;
const SLOTS_OFFSET: usize = 896;
const READY: u64 = 2;
const PROBE: &[u8] = b"ratecore layout probe";

/// A 64-byte-aligned, zeroed byte buffer.
pub struct AlignedBuf {
    lines: Vec<[u128; 4]>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes, starting on a 64-byte boundary.
    #[must_use]
    pub fn new(len: usize) -> Self {
        let lines = vec![[0u128; 4]; len.div_ceil(64) + 1];
        Self { lines, len }
    }

    /// The first byte, on a 64-byte boundary (no reference to the bytes is created).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        let base = self.lines.as_mut_ptr().cast::<u8>();
        base.wrapping_add(base.align_offset(REGION_ALIGN))
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, from the first 64-byte boundary.
    pub fn bytes(&mut self) -> &mut [u8] {
        let base = self.lines.as_mut_ptr().cast::<u8>();
        let skip = base.align_offset(REGION_ALIGN);
        assert!(skip + self.len <= self.lines.len() * 64);
        // SAFETY: `lines` owns `lines.len() * 64` initialised bytes (u128s have no
        // padding), `skip + len` of them are in bounds (asserted), and the returned
        // slice borrows `self` mutably.
        unsafe { std::slice::from_raw_parts_mut(base.add(skip), self.len) }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The header checksum (FNV-1a over every field but the checksum, each as a `u64`).
fn checksum(h: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut mix = |value: u64| {
        for byte in value.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    mix(u64_at(h, 0));
    mix(u32_at(h, 8).into());
    mix(u32_at(h, 12).into());
    mix(u64_at(h, 16));
    mix(u32_at(h, 24).into());
    mix(u32_at(h, 28).into());
    for i in 0..4 {
        mix(u64_at(h, 32 + 8 * i));
    }
    for i in 0..4 {
        let at = 64 + 32 * i;
        mix(u32_at(h, at).into());
        mix(u32_at(h, at + 4).into());
        mix(u64_at(h, at + 8));
        mix(u64_at(h, at + 16));
        mix(u64_at(h, at + 24));
    }
    mix(u64_at(h, 192));
    hash
}

fn probe(h: &[u8]) -> u64 {
    let seed = |i: usize| u64_at(h, 32 + 8 * i);
    ahash::RandomState::with_seeds(seed(0), seed(1), seed(2), seed(3)).hash_one(PROBE)
}

/// What to make valid in a header after writing arbitrary bytes into it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forge {
    /// Store "ready" in the state word.
    pub ready: bool,
    /// Recompute the hash probe from the seed.
    pub probe: bool,
    /// Recompute the checksum (after the probe).
    pub checksum: bool,
}

impl Forge {
    fn apply(self, region: &mut [u8]) {
        if region.len() < STATE_OFFSET + 8 {
            return;
        }
        if self.ready {
            put_u64(region, STATE_OFFSET, READY);
        }
        if self.probe {
            let p = probe(region);
            put_u64(region, 192, p);
        }
        if self.checksum {
            let c = checksum(region);
            put_u64(region, 200, c);
        }
    }
}

/// One byte overwritten.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mutation {
    /// Aim at the header (first 216 bytes) rather than anywhere.
    pub header: bool,
    /// Where (modulo the range aimed at).
    pub offset: u16,
    /// The new byte.
    pub value: u8,
}

/// One planted ring cell.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    /// Newest admission time.
    pub newest: u64,
    /// Count.
    pub count: u32,
    /// Use the key's generation (so the cell counts) rather than `generation`.
    pub own_generation: bool,
    /// Generation otherwise.
    pub generation: u32,
}

/// A fuzz input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum RegionCase {
    /// Arbitrary bytes.
    Raw {
        /// Offset from the aligned start (`skew % 64`; 0 when `skew % 4 == 0`).
        skew: u8,
        /// What to forge afterwards.
        forge: Forge,
        /// The region's content (and length).
        bytes: Vec<u8>,
        /// What to do with a table that attaches.
        ops: Vec<TableOp>,
    },
    /// A real region, then bytes overwritten.
    Mutated {
        /// The table (its ops run before and after).
        table: TableCase,
        /// The bytes overwritten.
        mutations: Vec<Mutation>,
        /// What to forge afterwards.
        forge: Forge,
        /// Bytes cut off the end before attaching.
        cut: u16,
    },
    /// A real region, then arbitrary slot states planted.
    Planted {
        /// The table (its ops run before and after).
        table: TableCase,
        /// State words for single-word algorithms' key slots (cycled).
        words: Vec<u64>,
        /// Cells for strict rings (cycled).
        cells: Vec<Cell>,
    },
}

/// What `attach` must return for `region` (at a 64-aligned address or not).
pub fn expected_attach(region: &[u8], aligned: bool) -> Result<TableConfig, TableError> {
    if !aligned {
        return Err(TableError::RegionMisaligned);
    }
    if region.len() < SLOTS_OFFSET {
        return Err(TableError::RegionTooSmall {
            needed: SLOTS_OFFSET,
            actual: region.len(),
        });
    }
    let h = region;
    match u64_at(h, STATE_OFFSET) {
        READY => {}
        0 if h[..8] != MAGIC => return Err(TableError::BadMagic),
        _ => return Err(TableError::NotReady),
    }
    if h[..8] != MAGIC {
        return Err(TableError::BadMagic);
    }
    if u32_at(h, 8) != LAYOUT_VERSION {
        return Err(TableError::UnsupportedVersion {
            found: u32_at(h, 8),
        });
    }
    let corrupt = Err(TableError::CorruptHeader);
    if u64_at(h, 200) != checksum(h) || u32_at(h, 12) as usize != SLOTS_OFFSET {
        return corrupt;
    }
    let count = u32_at(h, 24) as usize;
    let capacity = u64_at(h, 16);
    if !(1..=4).contains(&count)
        || !capacity.is_power_of_two()
        || !(8..=1u64 << 32).contains(&capacity)
    {
        return corrupt;
    }
    let Some(policy) = FullPolicy::from_code(u32_at(h, 28)) else {
        return corrupt;
    };
    let mut specs = Vec::new();
    for i in 0..count {
        let at = 64 + 32 * i;
        let (code, sub, limit, period, burst) = (
            u32_at(h, at),
            u32_at(h, at + 4),
            u64_at(h, at + 8),
            u64_at(h, at + 16),
            u64_at(h, at + 24),
        );
        let algorithm = match code {
            1 => Algorithm::Gcra,
            2 => Algorithm::FixedWindow,
            3 => Algorithm::SlidingWindowApprox,
            4 => Algorithm::SlidingWindowStrict { sub_windows: sub },
            _ => return corrupt,
        };
        let Ok(params) = crate::model::expected_quota(limit, period, Some(burst)) else {
            return corrupt;
        };
        if AnyModel::new(algorithm, params).is_err() {
            return corrupt;
        }
        let quota = Quota::new(limit, period)
            .and_then(|q| q.with_burst(burst))
            .expect("the model said valid");
        specs.push(LimitSpec { algorithm, quota });
    }
    let seed = [u64_at(h, 32), u64_at(h, 40), u64_at(h, 48), u64_at(h, 56)];
    let Ok(config) = TableConfig::new(capacity, &specs) else {
        return corrupt;
    };
    if u64_at(h, 192) != probe(h) {
        return Err(TableError::HashMismatch);
    }
    let config = config.with_policy(policy).with_seed(seed);
    let slots: u128 = specs
        .iter()
        .map(|s| {
            let ring = match s.algorithm {
                Algorithm::SlidingWindowStrict { sub_windows } => u128::from(sub_windows) + 1,
                _ => 0,
            };
            u128::from(capacity) * (1 + ring)
        })
        .sum();
    let needed = slots * 16 + SLOTS_OFFSET as u128;
    let needed = usize::try_from(needed).map_err(|_| TableError::BadCapacity)?;
    if region.len() < needed {
        return Err(TableError::RegionTooSmall {
            needed,
            actual: region.len(),
        });
    }
    Ok(config)
}

fn models_of(config: &TableConfig) -> Vec<AnyModel> {
    let specs: Vec<LimitSpec> = config.limits().copied().collect();
    CompositeModel::of_specs(&specs).limits
}

/// Attaches to `region`, compares with the prediction, and uses what attaches.
fn attach_and_use(
    region: &mut [u8],
    aligned: bool,
    case: Option<&TableCase>,
    ops: &[TableOp],
    counters_known: bool,
) {
    let expected = expected_attach(region, aligned);
    let attached = RegionTable::attach_in(region);
    let table = match (expected, attached) {
        (Err(e), Err(a)) => {
            assert_eq!(e, a, "attach error differs");
            return;
        }
        (Ok(config), Ok(table)) => {
            let got = table.config();
            assert_eq!(got.capacity(), config.capacity());
            assert_eq!(got.policy(), config.policy());
            assert!(got.limits().eq(config.limits()), "attached limits differ");
            table
        }
        (e, a) => panic!("attach: expected {:?}, got {:?}", e.err(), a.err()),
    };
    let config = *table.config();
    let models = models_of(&config);
    let mut driver = Driver::invariants_only(&config, models.clone(), table.stats());
    driver.counters_known = counters_known;
    // Replay the case's own calls, or resolve `ops` against the attached limits.
    let calls = match case {
        Some(case) => case.calls(),
        None => {
            let moduli: Vec<u64> = config
                .limits()
                .flat_map(|s| {
                    let granule = match s.algorithm {
                        Algorithm::SlidingWindowStrict { sub_windows } => {
                            s.quota.period().div_ceil(u64::from(sub_windows.max(1)))
                        }
                        _ => s.quota.period(),
                    };
                    [s.quota.period(), granule]
                })
                .collect();
            let capacity = models.iter().map(Model::capacity).min().unwrap_or(1);
            resolve_calls(ops, 0, &moduli, capacity, 24)
        }
    };
    for call in &calls {
        driver.step(&table, call);
    }
}

/// Initialises a region for `case`, runs its calls (exactly checked), then hands the
/// region and its config to `then`. A case without a valid config does nothing.
fn with_used_region(case: &TableCase, then: impl FnOnce(&mut [u8], &TableConfig)) {
    let Some((config, models)) = case.config() else {
        return;
    };
    let size = region_size(&config).expect("small tables fit");
    let mut buf = AlignedBuf::new(size);
    {
        let table = RegionTable::init_in(buf.bytes(), &config).expect("init");
        drive(case, &table, models);
    }
    let region = buf.bytes();
    assert_eq!(region.len(), size);
    then(region, &config);
}

/// Runs one input.
pub fn run(case: &RegionCase) {
    match case {
        RegionCase::Raw {
            skew,
            forge,
            bytes,
            ops,
        } => {
            let start = if skew % 4 == 0 {
                0
            } else {
                usize::from(skew % 64)
            };
            let mut buf = AlignedBuf::new(start + bytes.len());
            let region = &mut buf.bytes()[start..];
            region.copy_from_slice(bytes);
            forge.apply(region);
            attach_and_use(region, start == 0, None, ops, false);
        }
        RegionCase::Mutated {
            table,
            mutations,
            forge,
            cut,
        } => {
            with_used_region(table, |region, _| {
                let size = region.len();
                for m in mutations {
                    let range = if m.header { STATE_OFFSET + 8 } else { size };
                    region[usize::from(m.offset) % range] = m.value;
                }
                forge.apply(region);
                let len = size - usize::from(*cut) % (size + 1);
                attach_and_use(&mut region[..len], true, Some(table), &[], false);
            });
        }
        RegionCase::Planted {
            table,
            words,
            cells,
        } => {
            with_used_region(table, |region, config| {
                plant(region, config, words, cells);
                attach_and_use(region, true, Some(table), &[], true);
            });
        }
    }
}

fn slot(region: &[u8], index: usize) -> u128 {
    let at = SLOTS_OFFSET + 16 * index;
    u128::from_le_bytes(region[at..at + 16].try_into().expect("16 bytes"))
}

fn put_slot(region: &mut [u8], index: usize, value: u128) {
    let at = SLOTS_OFFSET + 16 * index;
    region[at..at + 16].copy_from_slice(&value.to_le_bytes());
}

/// Gives every occupied key slot an arbitrary state (or ring).
fn plant(region: &mut [u8], config: &TableConfig, words: &[u64], cells: &[Cell]) {
    let capacity = usize::try_from(config.capacity()).expect("small");
    let mut base = 0;
    let mut w = 0;
    let mut c = 0;
    for spec in config.limits() {
        let ring = match spec.algorithm {
            Algorithm::SlidingWindowStrict { sub_windows } => sub_windows as usize + 1,
            _ => 0,
        };
        for key in 0..capacity {
            let value = slot(region, base + key);
            if value >> 64 == 0 {
                continue;
            }
            if ring == 0 {
                if let Some(word) = words.get(w % words.len().max(1)) {
                    put_slot(region, base + key, (value >> 64 << 64) | u128::from(*word));
                }
                w += 1;
                continue;
            }
            let generation = value as u32;
            for r in 0..ring {
                let Some(cell) = cells.get(c % cells.len().max(1)) else {
                    break;
                };
                c += 1;
                let g = if cell.own_generation {
                    generation
                } else {
                    cell.generation
                };
                let bits = (u128::from(cell.newest) << 64)
                    | (u128::from(g) << 32)
                    | u128::from(cell.count);
                put_slot(region, base + capacity + key * ring + r, bits);
            }
        }
        base += capacity * (1 + ring);
    }
}

/// For `Debug` of raw byte inputs.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
