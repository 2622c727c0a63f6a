//! Helpers shared by the benchmarks: a tiny deterministic PRNG, criterion setup, and the
//! summary step that reads this run's medians back from criterion's output and prints the
//! ratecore/governor ratios.
//!
//! Every bench binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use criterion::Criterion;

/// SplitMix64: deterministic, fast, good enough to shuffle benchmark keys.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (Lemire's multiply-high; the bias is negligible here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Makes a check's result observable without copying it: the optimiser must build all of
/// it in memory (no field's arithmetic can be dropped), but nothing reads it back. Every
/// measured call of either library goes through this.
///
/// Why not `black_box(result)`: that moves the result, and the copy reads with 8-byte
/// loads the word where `Decision::allowed` and the `Result`'s tag (in the `bool`'s
/// niche) were just written by 1-byte stores. Such a load cannot be store-forwarded and
/// waits for the stores to commit: perf annotate put 20 % of a keyed check at 1 k keys
/// and 79 % of a single-key deny on that one copy. A caller that reads the decision's
/// fields, which is what callers do, never pays it; the harness's copy did.
#[inline(always)]
pub fn observe<R>(result: R) {
    std::hint::black_box(&result);
}

/// Whether the binary runs as a benchmark (`cargo bench`), rather than as a smoke test
/// (`cargo test --benches`, or the binary run by hand without `--bench`).
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Criterion configured from the command line (`-- --warm-up-time 1 --measurement-time 3`
/// and a filter work as usual).
pub fn criterion() -> Criterion {
    Criterion::default().configure_from_args()
}

/// Runs `bench` with criterion configured from the command line, then criterion's final
/// summary; returns what this run measured, for the ratios each bench prints at its end.
pub fn run(bench: impl FnOnce(&mut Criterion, &mut Summary)) -> Summary {
    let mut summary = Summary::start();
    let mut c = criterion();
    bench(&mut c, &mut summary);
    c.final_summary();
    summary
}

/// Medians of this run's benchmarks, read back from criterion's `new/` output.
pub struct Summary {
    started: SystemTime,
    root: PathBuf,
    rows: Vec<String>,
}

impl Summary {
    /// Call before running any benchmark: only results written after this count.
    pub fn start() -> Self {
        Self {
            started: SystemTime::now(),
            root: criterion_home(),
            rows: Vec::new(),
        }
    }

    /// The median time (ns per iteration) of the benchmark whose criterion id is `id`
    /// (`group/function` or `group/function/parameter`), if it ran in this process.
    pub fn median_ns(&self, id: &str) -> Option<f64> {
        let group = id.split('/').next()?;
        let mut found = None;
        visit(&self.root.join(sanitize(group)), &mut |dir| {
            let bench = dir.join("new/benchmark.json");
            let estimates = dir.join("new/estimates.json");
            let fresh = fs::metadata(&estimates)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= self.started);
            if !fresh {
                return;
            }
            let Some(full_id) = read_json(&bench)
                .and_then(|v| v.get("full_id").and_then(|s| s.as_str()).map(str::to_owned))
            else {
                return;
            };
            if full_id == id {
                found = read_json(&estimates).and_then(|v| {
                    v.get("median")
                        .and_then(|m| m.get("point_estimate"))
                        .and_then(serde_json::Value::as_f64)
                });
            }
        });
        found
    }

    /// Records a line for the final summary.
    pub fn line(&mut self, text: impl Into<String>) {
        self.rows.push(text.into());
    }

    /// Records `ours / theirs` (time ratio; lower is better for `ours`) with a target.
    /// Returns the ratio when both ran.
    pub fn ratio(&mut self, label: &str, ours: &str, theirs: &str, target: Target) -> Option<f64> {
        match (self.median_ns(ours), self.median_ns(theirs)) {
            (Some(a), Some(b)) => {
                let r = a / b;
                let verdict = target.verdict(r);
                self.line(format!(
                    "{label}: {a:.2} ns vs {b:.2} ns, ratio {r:.3}{verdict}"
                ));
                Some(r)
            }
            _ => {
                self.line(format!("{label}: n/a (not run in this process)"));
                None
            }
        }
    }

    /// Prints the summary (also appended to `<criterion home>/ratecore-summary.txt`).
    pub fn print(&self, title: &str) {
        let mut text = format!("\n=== {title}: medians from this run ===\n");
        for row in &self.rows {
            text.push_str(row);
            text.push('\n');
        }
        print!("{text}");
        if fs::create_dir_all(&self.root).is_ok() {
            use std::io::Write;
            if let Ok(mut f) = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.root.join("ratecore-summary.txt"))
            {
                let _ = f.write_all(text.as_bytes());
            }
        }
    }
}

/// A target on a ratio.
#[derive(Clone, Copy)]
pub enum Target {
    /// No target: informational.
    None,
    /// Time ratio at most this.
    AtMost(f64),
    /// Throughput ratio (given as `ours / theirs` of throughput) at least this.
    AtLeast(f64),
}

impl Target {
    /// `" (target <= x: met)"` and the like.
    pub fn verdict(self, r: f64) -> String {
        match self {
            Self::None => String::new(),
            Self::AtMost(t) => format!(
                " (target <= {t}: {})",
                if r <= t { "met" } else { "NOT met" }
            ),
            Self::AtLeast(t) => format!(
                " (target >= {t}: {})",
                if r >= t { "met" } else { "NOT met" }
            ),
        }
    }
}

/// Where criterion writes: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
/// `criterion` folder of the target directory this binary was built in.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // The binary is <target>/<profile>/deps/<name>-<hash>.
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Criterion's directory-name sanitising of an id component.
fn sanitize(part: &str) -> String {
    part.chars()
        .map(|c| match c {
            '?' | '"' | '/' | '\\' | '*' | '<' | '>' | ':' | '|' | '^' => '_',
            c => c,
        })
        .collect()
}

/// Calls `f` on every directory under `dir` (recursively) that has a `new/` child.
fn visit(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            f(dir);
        } else {
            visit(&path, f);
        }
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// Resident set size of this process, in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> Option<u64> {
    let statm = fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * page_size())
}

/// The page size (4 KiB unless `getconf` says otherwise).
fn page_size() -> u64 {
    std::process::Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Formats nanoseconds per check as checks per second.
pub fn per_second(ns: f64) -> String {
    format!("{:.1} M/s", 1e3 / ns)
}

/// A client IP and an account name, as the request's `client_ip` and `user` attributes.
pub type IpAndAccount = [ratecore::policy::Attribute<'static>; 2];

/// The Uphold seed's policy and 1,000 (IP, account) pairs for its
/// `POST /password/forgot` rule (3 keyed limits): what `algorithms` and `profile_driver`
/// check.
pub fn uphold_policy_and_pairs() -> (ratecore::policy::Policy, Vec<IpAndAccount>) {
    use ratecore::policy::Attribute;
    use std::sync::OnceLock;
    // The attribute values, made once and kept for the process, so the pairs are
    // ready-made attribute lists that requests borrow without copying.
    static VALUES: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policies/uphold.toml");
    let policy = ratecore::policy::Policy::from_toml_file(path).expect("uphold policy");
    let values = VALUES.get_or_init(|| {
        (0..1_000u32)
            .map(|i| {
                let ip = format!("198.51.{}.{}", i / 250, i % 250).into_bytes();
                let user = format!("account-{i}@example.com").into_bytes();
                (ip, user)
            })
            .collect()
    });
    let pairs = values
        .iter()
        .map(|(ip, user)| {
            [
                Attribute::new("client_ip", ip),
                Attribute::new("user", user),
            ]
        })
        .collect();
    (policy, pairs)
}

/// The `POST /password/forgot` request of pair `i` (modulo the pairs).
pub fn uphold_request(pairs: &[IpAndAccount], i: usize) -> ratecore::policy::Request<'_> {
    ratecore::policy::Request::new("POST", "/password/forgot", &pairs[i % pairs.len()])
}

/// The time ratio `ours / theirs` measured in interleaved rounds: each round times one
/// batch of `ours` and one of `theirs` back to back (alternating which goes first), and
/// the result is the median and quartiles of the per-round ratios.
///
/// Why next to criterion's medians: criterion times one function for seconds, then the
/// other, and on a shared 2-vCPU VM the host's load drifts between the two (the same
/// governor benchmark measured 47 ns and 63 ns in two runs ten minutes apart). A drift
/// slower than a round (a few milliseconds) slows both halves of that round alike and
/// cancels out of its ratio.
pub struct Paired {
    /// Median of the per-round ratios.
    pub median: f64,
    /// First and third quartiles of the per-round ratios.
    pub quartiles: (f64, f64),
    /// Median time per call of each side, in ns (for sanity checks against criterion).
    pub per_call_ns: (f64, f64),
    /// Rounds measured.
    pub rounds: usize,
    /// Calls per batch.
    pub batch: usize,
}

/// Seconds taken by `batch` calls of `f`, starting at call index `*next`.
fn time_batch<R>(batch: usize, f: &mut impl FnMut(usize) -> R, next: &mut usize) -> f64 {
    let started = std::time::Instant::now();
    for _ in 0..batch {
        observe(f(*next));
        *next = next.wrapping_add(1);
    }
    started.elapsed().as_secs_f64()
}

impl Paired {
    /// Runs `rounds` rounds of `batch` calls each. Each closure gets a running call
    /// index (to walk its access sequence) and its result is black-boxed.
    pub fn measure<A, B, RA, RB>(rounds: usize, batch: usize, mut ours: A, mut theirs: B) -> Self
    where
        A: FnMut(usize) -> RA,
        B: FnMut(usize) -> RB,
    {
        let (mut i, mut j) = (0usize, 0usize);
        Self::interleave(
            rounds,
            batch,
            || time_batch(batch, &mut ours, &mut i),
            || time_batch(batch, &mut theirs, &mut j),
        )
    }

    /// The interleaving behind [`measure`](Self::measure), for benches that time a batch
    /// themselves (two threads at once): `time_ours` and `time_theirs` each run one batch
    /// of `batch` calls and return the seconds it took. One unrecorded round warms both
    /// up; then `rounds` rounds, alternating which side goes first.
    pub fn interleave(
        rounds: usize,
        batch: usize,
        mut time_ours: impl FnMut() -> f64,
        mut time_theirs: impl FnMut() -> f64,
    ) -> Self {
        let mut ours_times = Vec::with_capacity(rounds);
        let mut theirs_times = Vec::with_capacity(rounds);
        time_ours();
        time_theirs();
        for round in 0..rounds {
            let (a, b) = if round % 2 == 0 {
                let a = time_ours();
                (a, time_theirs())
            } else {
                let b = time_theirs();
                (time_ours(), b)
            };
            ours_times.push(a);
            theirs_times.push(b);
        }
        Self::from_times(batch, ours_times, theirs_times)
    }

    /// The summary of timed rounds: `ours[k]` and `theirs[k]` are the seconds each
    /// side's batch of `batch` calls took in round `k`.
    fn from_times(batch: usize, mut ours_times: Vec<f64>, mut theirs_times: Vec<f64>) -> Self {
        let mut ratios: Vec<f64> = ours_times
            .iter()
            .zip(&theirs_times)
            .filter(|(_, &b)| b > 0.0)
            .map(|(a, b)| a / b)
            .collect();
        let at = |values: &mut Vec<f64>, q: f64| {
            values.sort_by(f64::total_cmp);
            values
                .get(((values.len().saturating_sub(1)) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let per_call = |seconds: f64| seconds * 1e9 / batch as f64;
        Self {
            median: at(&mut ratios, 0.5),
            quartiles: (at(&mut ratios, 0.25), at(&mut ratios, 0.75)),
            per_call_ns: (
                per_call(at(&mut ours_times, 0.5)),
                per_call(at(&mut theirs_times, 0.5)),
            ),
            rounds: ratios.len(),
            batch,
        }
    }

    /// A summary line: `label: paired ratio 0.512 (quartiles 0.49–0.53; 201 rounds of
    /// 20000)` plus the target's verdict on the median — only under `cargo bench`: a
    /// smoke run (`cargo test --benches`, debug build, a few short rounds) says so
    /// instead of judging a debug build against a target.
    pub fn line(&self, label: &str, target: Target) -> String {
        let verdict = if bench_mode() {
            target.verdict(self.median)
        } else {
            " (smoke run: no verdict)".to_owned()
        };
        format!(
            "{label}: paired ratio {:.3} (quartiles {:.3}–{:.3}; {} rounds of {}; \
             median {:.2} ns vs {:.2} ns per call){}",
            self.median,
            self.quartiles.0,
            self.quartiles.1,
            self.rounds,
            self.batch,
            self.per_call_ns.0,
            self.per_call_ns.1,
            verdict
        )
    }
}
