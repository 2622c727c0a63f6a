//! Several processes share one keyed table in a `MAP_SHARED` region, and its decisions
//! stay exact across them.
//!
//! Each scenario maps an anonymous shared region of [`region::region_size`] bytes,
//! initialises a table in it ([`region::init`]) and forks [`CHILDREN`] children. Every
//! child attaches ([`region::attach`]) and runs [`THREADS`] threads; the parent runs as
//! many. All of them hammer the same [`KEYS`] keys, phase after phase: within a phase the
//! clock is frozen (every thread passes the same `now`), and a barrier in a second shared
//! mapping separates the phases. Each thread tries more often than any quota allows, so
//! each key ends each phase exhausted. Afterwards the parent adds up the admissions every
//! process wrote into the shared mapping, and asserts, per key, that they equal exactly
//! what a sequential reference model (`tests/model/`) admits for the same phases — no
//! more (over-admission) and no less (a lost update or a spurious denial; the one
//! documented exception, a `contended` denial after 2^16 lost races, is counted in the
//! stats and only then tolerated as a shortfall). It also checks
//! each key's final state against the model and the table's stats (one slot per key and
//! limit: no duplicate was ever created).
//!
//! Covered: GCRA (with a burst above the limit), fixed window, approximate sliding
//! window, strict sliding window and a 2-limit composite (GCRA 5/s AND fixed 20/min).
//! Why frozen phases make exact totals a valid expectation: with one `now` per phase every
//! admission of a key in a phase charges the same state (for the strict window, the same
//! ring cell), so the CAS protocols serialise them exactly and no give-back happens; the
//! composite lists its binding limit first, so its second limit never denies after the
//! first admitted, and no reservation is ever cancelled.
//!
//! Failures in a child are made visible: a child's panic message is written straight to
//! file descriptor 2 and the child `_exit`s with status 1 (it never returns into the test
//! harness it was forked from); the parent asserts every child exited with status 0.
//! Barrier waits and the parent's `waitpid` are bounded (wall-clock timeouts used only to
//! fail instead of hanging; nothing is timed or asserted about time).
#![cfg(target_os = "linux")]

mod model;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use model::CompositeModel;
use ratecore::table::region::{self, RegionTable};
use ratecore::{Algorithm, LimitSpec, Quota, TableConfig};

/// Forked children per scenario.
const CHILDREN: usize = 3;
/// Hammering threads per process (children and parent).
const THREADS: usize = 2;
/// Processes per scenario: the parent and its children.
const PROCESSES: usize = CHILDREN + 1;
/// Keys every thread hammers.
const KEYS: usize = 4;
/// Requests per thread, key and phase: more than any scenario's quota, so every thread
/// alone would exhaust every key.
const ATTEMPTS: u64 = 120;
/// How long a barrier or the parent's wait for a child may take before the scenario
/// fails (a safety net against hangs, never an assertion about speed).
const TIMEOUT: Duration = Duration::from_secs(120);

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
const MINUTE: u64 = 60 * SECOND;
/// The first phase: aligned to a minute, so windows start there.
const T0: u64 = 10 * MINUTE;

/// One scenario at a time: forking while another test of this file runs threads is
/// avoided altogether.
static FORKS: Mutex<()> = Mutex::new(());

/// An anonymous `MAP_SHARED` mapping, unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Self {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap of {len} bytes failed");
        Self {
            ptr: ptr.cast(),
            len,
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and every table and
        // reference into the mapping is gone by now (they borrow the `Mapping`).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// What the processes share besides the table: a phase barrier and the results.
#[repr(C)]
struct Shared {
    /// Threads arrived at the current barrier.
    arrived: AtomicU64,
    /// Barrier generation: bumped by the last thread to arrive.
    generation: AtomicU64,
    /// Set by any failing thread so every other one stops waiting.
    abort: AtomicU64,
    /// `admitted[process][key]`.
    admitted: [[AtomicU64; KEYS]; PROCESSES],
}

impl Shared {
    /// The `Shared` living at the start of `mapping` (zeroed by the kernel: a valid
    /// `Shared` with every counter 0).
    fn at(mapping: &Mapping) -> &Shared {
        assert!(mapping.len >= std::mem::size_of::<Shared>());
        assert_eq!(mapping.ptr as usize % std::mem::align_of::<Shared>(), 0);
        // SAFETY: the mapping is page-aligned, large enough, zero-initialised (all-zero
        // atomics are valid), lives as long as the borrow, and is only ever accessed
        // through these atomics, by every process.
        unsafe { &*mapping.ptr.cast::<Shared>() }
    }

    /// Waits until all `parties` threads (over all processes) arrived. `Err` if the
    /// scenario was aborted or the barrier timed out (which aborts it).
    fn wait(&self, parties: u64) -> Result<(), String> {
        let generation = self.generation.load(Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == parties {
            self.arrived.store(0, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let start = Instant::now();
        while self.generation.load(Ordering::SeqCst) == generation {
            if self.abort.load(Ordering::SeqCst) != 0 {
                return Err("aborted by another process".into());
            }
            if start.elapsed() > TIMEOUT {
                self.abort.store(1, Ordering::SeqCst);
                return Err("barrier timed out".into());
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

/// A scenario: the table's limits and the frozen `now` of each phase.
struct Scenario {
    name: &'static str,
    limits: Vec<LimitSpec>,
    phases: Vec<u64>,
}

fn spec(algorithm: Algorithm, quota: Quota) -> LimitSpec {
    LimitSpec { algorithm, quota }
}

fn key(k: usize) -> Vec<u8> {
    format!("hot-key-{k}").into_bytes()
}

/// Per key: what a sequential model admits over the scenario's phases, if every phase
/// gets `ATTEMPTS × THREADS × PROCESSES` requests of cost 1; and the model afterwards.
fn expected(scenario: &Scenario) -> (u64, CompositeModel) {
    let mut model = CompositeModel::of_specs(&scenario.limits);
    let mut admitted = 0;
    for &now in &scenario.phases {
        for _ in 0..ATTEMPTS * (THREADS * PROCESSES) as u64 {
            if model.run(now, 1, true).unwrap().decision.allowed {
                admitted += 1;
            }
        }
    }
    (admitted, model)
}

/// One process's share of the work: `THREADS` threads hammering every key, phase by
/// phase; the admissions land in `shared.admitted[process]`.
fn hammer(
    table: &RegionTable<'_>,
    shared: &Shared,
    process: usize,
    phases: &[u64],
) -> Result<(), String> {
    let parties = (THREADS * PROCESSES) as u64;
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let keys = &keys;
                scope.spawn(move || -> Result<(), String> {
                    let mut admitted = [0u64; KEYS];
                    for &now in phases {
                        shared.wait(parties)?;
                        for round in 0..ATTEMPTS {
                            // Threads visit the keys in different orders.
                            for offset in 0..KEYS {
                                let k = (offset + thread + process + round as usize) % KEYS;
                                let decision = table
                                    .check(&keys[k], now, 1)
                                    .map_err(|e| format!("check failed: {e:?}"))?;
                                admitted[k] += u64::from(decision.allowed);
                            }
                        }
                    }
                    for (k, n) in admitted.iter().enumerate() {
                        shared.admitted[process][k].fetch_add(*n, Ordering::SeqCst);
                    }
                    Ok(())
                })
            })
            .collect();
        let mut result = Ok(());
        for worker in workers {
            let outcome = worker
                .join()
                .unwrap_or_else(|_| Err("a hammering thread panicked".into()));
            if let Err(e) = outcome {
                shared.abort.store(1, Ordering::SeqCst);
                result = Err(e);
            }
        }
        result
    })
}

/// Writes `message` to file descriptor 2, bypassing the test harness's output capture
/// (which a forked child cannot hand back).
fn write_stderr(message: &str) {
    let bytes = message.as_bytes();
    // SAFETY: writing an initialised buffer of `len` bytes to fd 2.
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
    }
}

/// The body of a forked child: attach, hammer, report. Never returns.
fn child(
    process: usize,
    region_map: &Mapping,
    shared: &Shared,
    scenario: &Scenario,
    config: &TableConfig,
) -> ! {
    // Panics in this process must reach the parent's terminal: the default hook would
    // print into the harness's capture buffer, which this process never hands back.
    let name = scenario.name;
    std::panic::set_hook(Box::new(move |info| {
        write_stderr(&format!("[{name} child {process}] {info}\n"));
    }));
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        // SAFETY: the region was initialised by the parent before the fork, stays mapped
        // until this process exits, and is only accessed through ratecore tables.
        let table = unsafe { region::attach(region_map.ptr, region_map.len) }
            .map_err(|e| format!("attach failed: {e:?}"))?;
        if table.config() != config {
            return Err("attached table's config differs from the parent's".into());
        }
        hammer(&table, shared, process, &scenario.phases)
    }));
    let code = match result {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            write_stderr(&format!("[{} child {process}] {message}\n", scenario.name));
            1
        }
        Err(_) => 2,
    };
    if code != 0 {
        shared.abort.store(1, Ordering::SeqCst);
    }
    // SAFETY: ends this forked process at once, without running the harness's or any
    // other destructors or atexit handlers that belong to the parent's state.
    unsafe { libc::_exit(code) }
}

/// Waits for `pid` (our own child) for at most [`TIMEOUT`], killing it after that.
/// Returns a description of how it ended unless it exited with status 0.
fn reap(pid: libc::pid_t) -> Option<String> {
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if r < 0 {
            return Some(format!("waitpid({pid}) failed"));
        }
        if start.elapsed() > TIMEOUT {
            // SAFETY: `pid` is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Some(format!("child {pid} hung and was killed"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        None
    } else if libc::WIFEXITED(status) {
        Some(format!(
            "child {pid} exited with status {}",
            libc::WEXITSTATUS(status)
        ))
    } else {
        Some(format!(
            "child {pid} ended by signal {}",
            libc::WTERMSIG(status)
        ))
    }
}

/// Each scenario runs this often (fresh region each time): races differ run to run.
const REPEAT: usize = if cfg!(debug_assertions) { 3 } else { 20 };

fn run(scenario: &Scenario) {
    for _ in 0..REPEAT {
        run_once(scenario);
    }
}

fn run_once(scenario: &Scenario) {
    let _serial = FORKS.lock().unwrap_or_else(|e| e.into_inner());
    let config = TableConfig::new(64, &scenario.limits).unwrap();
    let region_map = Mapping::new(region::region_size(&config).unwrap());
    let shared_map = Mapping::new(std::mem::size_of::<Shared>());
    let shared = Shared::at(&shared_map);
    // SAFETY: the mapping is fresh, page-aligned and large enough; no other process
    // exists yet; afterwards it is only accessed through ratecore tables, and it outlives
    // every table (all are dropped, or their processes gone, before `region_map`).
    let table = unsafe { region::init(region_map.ptr, region_map.len, &config) }.unwrap();

    let mut pids = Vec::new();
    for process in 1..PROCESSES {
        // SAFETY: fork; the child only runs `child`, which never returns and ends with
        // `_exit`. Other tests of this file are kept out by `FORKS`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            child(process, &region_map, shared, scenario, &config);
        }
        pids.push(pid);
    }
    let parent = catch_unwind(AssertUnwindSafe(|| {
        hammer(&table, shared, 0, &scenario.phases)
    }));
    if !matches!(parent, Ok(Ok(()))) {
        shared.abort.store(1, Ordering::SeqCst);
    }
    let mut failures: Vec<String> = pids.iter().filter_map(|&pid| reap(pid)).collect();
    match parent {
        Ok(Ok(())) => {}
        Ok(Err(message)) => failures.push(format!("parent: {message}")),
        Err(panic) if failures.is_empty() => std::panic::resume_unwind(panic),
        Err(_) => failures.push("parent panicked".into()),
    }
    assert!(failures.is_empty(), "{}: {failures:?}", scenario.name);

    let (want, mut model) = expected(scenario);
    let last = *scenario.phases.last().unwrap();
    let stats = table.stats();
    // A check that keeps losing races for 2^16 attempts gives up with a `contended`
    // denial (documented, counted): a spurious denial, never an over-admission. Only then
    // may a key fall short of its quota.
    let exact = stats.contended == 0;
    for k in 0..KEYS {
        let per_process: Vec<u64> = (0..PROCESSES)
            .map(|p| shared.admitted[p][k].load(Ordering::SeqCst))
            .collect();
        let total: u64 = per_process.iter().sum();
        assert!(
            total <= want,
            "{}: key {k} admitted {total} times over all processes ({per_process:?}), the quotas allow only {want}",
            scenario.name
        );
        if exact {
            assert_eq!(
                total, want,
                "{}: key {k} admitted {total} times over all processes ({per_process:?}), the quotas allow exactly {want}",
                scenario.name
            );
            // The state left behind is exactly the model's.
            let peek = table.peek(&key(k), last, 1).unwrap();
            assert_eq!(
                peek,
                model.run(last, 1, false).unwrap().decision,
                "{}: key {k}",
                scenario.name
            );
        }
    }
    if !exact {
        eprintln!("{}: contended denials (allowed): {stats:?}", scenario.name);
    }
    let slots = (KEYS * scenario.limits.len()) as u64;
    assert_eq!(stats.occupied, slots, "{}: {stats:?}", scenario.name);
    assert_eq!(
        stats.new_keys, slots,
        "{}: a key was claimed twice: {stats:?}",
        scenario.name
    );
    assert_eq!(
        (
            stats.evictions,
            stats.reclaims,
            stats.full_neighbourhoods,
            stats.stale_claims
        ),
        (0, 0, 0, 0),
        "{}: {stats:?}",
        scenario.name
    );
}

#[test]
fn gcra_across_processes() {
    let quota = Quota::new(40, SECOND).unwrap().with_burst(60).unwrap();
    run(&Scenario {
        name: "gcra",
        limits: vec![spec(Algorithm::Gcra, quota)],
        // 60 (burst); 4 more after 100 ms (one per 25 ms); none again; full burst later.
        phases: vec![T0, T0 + 100 * MS, T0 + 100 * MS, T0 + 10 * SECOND],
    });
}

#[test]
fn fixed_window_across_processes() {
    run(&Scenario {
        name: "fixed window",
        limits: vec![spec(
            Algorithm::FixedWindow,
            Quota::new(50, SECOND).unwrap(),
        )],
        // 50; none later in the same window; 50 in the next one; none 1 ns later.
        phases: vec![T0, T0 + 500 * MS, T0 + SECOND, T0 + SECOND + 1],
    });
}

#[test]
fn approximate_window_across_processes() {
    run(&Scenario {
        name: "approximate sliding window",
        limits: vec![spec(
            Algorithm::SlidingWindowApprox,
            Quota::new(50, SECOND).unwrap(),
        )],
        // 50; 25 when half the previous window still weighs; a few more later.
        phases: vec![T0, T0 + 1500 * MS, T0 + 1750 * MS, T0 + 1750 * MS],
    });
}

#[test]
fn strict_window_across_processes() {
    let strict = Algorithm::SlidingWindowStrict { sub_windows: 5 };
    run(&Scenario {
        name: "strict sliding window",
        limits: vec![spec(strict, Quota::new(50, SECOND).unwrap())],
        // 50; none within the period; the 50 come back exactly one period later.
        phases: vec![
            T0,
            T0 + 300 * MS,
            T0 + SECOND - 1,
            T0 + SECOND,
            T0 + 1300 * MS,
        ],
    });
}

#[test]
fn composite_across_processes() {
    let per_second = Quota::new(5, SECOND).unwrap();
    let per_minute = Quota::new(20, MINUTE).unwrap();
    run(&Scenario {
        name: "composite GCRA 5/s AND fixed 20/min",
        limits: vec![
            spec(Algorithm::Gcra, per_second),
            spec(Algorithm::FixedWindow, per_minute),
        ],
        // 5 per second until the minute's 20 are used up, then nothing until T0 + 1 min.
        phases: (0..6)
            .map(|s| T0 + s * SECOND)
            .chain([T0 + MINUTE])
            .collect(),
    });
}

#[test]
fn expectations_are_what_the_comments_say() {
    let gcra = Quota::new(40, SECOND).unwrap().with_burst(60).unwrap();
    let cases: [(Vec<LimitSpec>, Vec<u64>, u64); 2] = [
        (
            vec![spec(Algorithm::Gcra, gcra)],
            vec![T0, T0 + 100 * MS, T0 + 100 * MS, T0 + 10 * SECOND],
            60 + 4 + 60,
        ),
        (
            vec![
                spec(Algorithm::Gcra, Quota::new(5, SECOND).unwrap()),
                spec(Algorithm::FixedWindow, Quota::new(20, MINUTE).unwrap()),
            ],
            (0..6)
                .map(|s| T0 + s * SECOND)
                .chain([T0 + MINUTE])
                .collect(),
            20 + 5,
        ),
    ];
    for (limits, phases, want) in cases {
        let (got, _) = expected(&Scenario {
            name: "check",
            limits,
            phases,
        });
        assert_eq!(got, want);
    }
}
