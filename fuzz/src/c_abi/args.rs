//! The arguments of the calls: how each is passed (exact, NULL, misaligned, too long),
//! and the values drawn from.

use std::ptr;

use arbitrary::Arbitrary;
use ratecore::policy::OverrideQuota;
use ratecore::{Algorithm, Decision, LimitSpec, Quota};
use ratecore_ffi::ratecore_quota;

use crate::gen::Num;
use crate::render::DecisionSpec;

use super::S;

/// A quota as C passes it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawQuota {
    /// `limit`.
    pub limit: Num,
    /// `period_ns`.
    pub period: Num,
    /// `burst` (0: the default).
    pub burst: Option<Num>,
    /// `algorithm` (valid codes are 1 to 4).
    pub algorithm: u8,
    /// `sub_windows`.
    pub sub_windows: u16,
}

impl RawQuota {
    pub(super) fn c(&self) -> ratecore_quota {
        ratecore_quota {
            limit: self.limit.get(),
            period_ns: self.period.get(),
            burst: self.burst.map_or(0, Num::get),
            algorithm: u32::from(self.algorithm % 6),
            sub_windows: u32::from(self.sub_windows),
        }
    }
}

/// The documented reading of a C quota: `Ok(spec)` or the status.
pub(super) fn spec_of(q: &ratecore_quota) -> Result<LimitSpec, S> {
    let algorithm = Algorithm::from_code(q.algorithm, q.sub_windows).ok_or(S::UnknownAlgorithm)?;
    let mut quota = Quota::new(q.limit, q.period_ns)?;
    if q.burst != 0 {
        quota = quota.with_burst(q.burst)?;
    }
    let gcra = algorithm == Algorithm::Gcra;
    let strict = matches!(algorithm, Algorithm::SlidingWindowStrict { .. });
    if (!gcra && q.burst != 0 && q.burst != q.limit) || (!strict && q.sub_windows != 0) {
        return Err(S::InvalidArgument);
    }
    Ok(LimitSpec { algorithm, quota })
}

/// How a slice argument is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceArg {
    /// Valid pointer, exact length.
    Exact,
    /// NULL and length 0 (the empty slice).
    NullEmpty,
    /// NULL with a length.
    NullWithLen,
    /// Valid pointer, length above `PTRDIFF_MAX / size`.
    Huge,
    /// Misaligned pointer (element types aligned above 1 only), exact length.
    Misaligned,
}

/// How an output pointer is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutArg {
    /// Valid.
    Valid,
    /// NULL.
    Null,
    /// Misaligned (inside a valid buffer).
    Misaligned,
}

/// Which handle is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleArg {
    /// A live handle (index modulo their number; NULL if there are none).
    Live(u8),
    /// NULL.
    Null,
    /// A live handle's address plus one.
    Misaligned(u8),
}

/// A decision passed by pointer.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionArg {
    /// The decision's fields.
    pub spec: DecisionSpec,
    /// Pass it misaligned.
    pub misaligned: bool,
}

impl DecisionArg {
    pub(super) fn decision(&self) -> Decision {
        self.spec.get()
    }
}

/// How a string is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrHow {
    /// Valid pointer and length.
    Valid,
    /// `(NULL, 0)`: the empty string.
    NullEmpty,
    /// NULL with a length.
    NullWithLen,
    /// A length above `PTRDIFF_MAX`.
    Huge,
    /// The text followed by a byte that is not UTF-8.
    InvalidUtf8,
}

/// A string argument.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct StrArg {
    /// The text.
    pub text: String,
    /// How it is passed.
    pub how: StrHow,
}

/// A string as passed: storage, pointer, length, the fault it calls for, the text seen.
pub(super) struct CStrArg {
    pub(super) storage: Vec<u8>,
    pub(super) null: bool,
    pub(super) len: usize,
    pub(super) fault: Option<S>,
    pub(super) text: String,
}

impl CStrArg {
    pub(super) fn new(text: &str, how: StrHow) -> Self {
        let mut storage = text.as_bytes().to_vec();
        let (null, len, fault, seen) = match how {
            StrHow::Valid => (false, storage.len(), None, text.to_string()),
            StrHow::NullEmpty => (true, 0, None, String::new()),
            StrHow::NullWithLen => (
                true,
                storage.len().max(1),
                Some(S::NullPointer),
                String::new(),
            ),
            StrHow::Huge => (
                false,
                isize::MAX as usize + 1,
                Some(S::InvalidArgument),
                String::new(),
            ),
            StrHow::InvalidUtf8 => {
                storage.push(0xff);
                (false, storage.len(), Some(S::InvalidUtf8), String::new())
            }
        };
        storage.push(0);
        Self {
            storage,
            null,
            len,
            fault,
            text: seen,
        }
    }

    pub(super) fn ptr(&self) -> *const u8 {
        if self.null {
            ptr::null()
        } else {
            self.storage.as_ptr()
        }
    }
}

/// One quota report.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ReportArg {
    /// Its name.
    pub name: StrArg,
    /// Its period.
    pub period: Num,
    /// Its state.
    pub decision: DecisionArg,
}

/// An output byte buffer.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufArg {
    /// Its size.
    pub len: u16,
    /// How it is passed.
    pub arg: SliceArg,
    /// How the `written_out` pointer is passed.
    pub written: OutArg,
}

/// A policy's TOML text.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum PolicyText {
    /// One of a few valid policies.
    Builtin(u8),
    /// Anything.
    Raw(String),
}

/// Three policies keyed on the fixed identities (`key = "client_ip"`, ...), then two on
/// named attributes: conditions, unlimited rules, `on_missing` deny / shared / skip,
/// shadow limits.
pub(super) const POLICIES: [&str; 5] = [
    "[response]\nheaders = \"ietf\"\n[table]\ncapacity = 16\nwhen_full = \"deny\"\n\n[[rule]]\nname = \"writes\"\nroute = \"POST /api/*\"\n\n[[rule.limit]]\nname = \"per-ip\"\nkey = \"client_ip\"\nalgorithm = \"sliding_window_strict\"\nlimit = 3\nperiod = \"1s\"\nsub_windows = 4\n\n[[rule.limit]]\nkey = \"user\"\nalgorithm = \"gcra\"\nlimit = 2\nperiod = \"1s\"\nburst = 3\n\n[[rule]]\nname = \"health\"\nroute = \"GET /health\"\nunlimited = true\n\n[[rule]]\nname = \"all\"\n\n[[rule.limit]]\nkey = \"global\"\nalgorithm = \"fixed_window\"\nlimit = 50\nperiod = \"1m\"\n",
    "[response]\nheaders = \"switch\"\nbody = \"text\"\nstatus = 503\n[table]\ncapacity = 8\n\n[[rule]]\nname = \"save\"\nroute = \"POST /api/readings\"\ndescription = \"Save readings\"\n\n[[rule.limit]]\nkey = \"client\"\nalgorithm = \"fixed_window\"\nlimit = 5\nperiod = \"1s\"\n\n[[rule.limit]]\nkey = \"client\"\nalgorithm = \"sliding_window\"\nlimit = 20\nperiod = \"1m\"\n",
    "[response]\nheaders = \"uphold\"\nproblem_type = \"https://example.com/429\"\nproblem_title = \"Slow down\"\n[table]\ncapacity = 8\nwhen_full = \"evict\"\n\n[[rule]]\nname = \"app\"\n\n[[rule.limit]]\nkey = \"app_user\"\nlimit = 4\nperiod = \"10s\"\n\n[[rule]]\nname = \"ev\"\nroute = \"ALL /cards/:card/*\"\n\n[[rule.limit]]\nkey = \"client_ip\"\nalgorithm = \"sliding_window\"\nlimit = 2\nperiod = \"2s\"\n",
    "[response]\nheaders = \"evenergy\"\nbody = \"problem+json\"\nproblem_type = \"https://example.com/429\"\nproblem_title = \"Slow down\"\n[table]\ncapacity = 8\nwhen_full = \"deny\"\n\n[[rule]]\nname = \"internal\"\nwhen = { tier = \"internal\" }\nunlimited = true\n\n[[rule]]\nname = \"authorization-code\"\nwhen = { auth = \"authorization_code\" }\n\n[[rule.limit]]\nname = \"per-app-user\"\nkey = [\"app\", \"user\"]\non_missing = \"deny\"\nalgorithm = \"sliding_window_strict\"\nlimit = 3\nperiod = \"1s\"\nsub_windows = 4\n\n[[rule]]\nname = \"client-credentials\"\nwhen = { auth = \"client_credentials\" }\n\n[[rule.limit]]\nname = \"per-app\"\nkey = [\"app\"]\non_missing = \"shared\"\nalgorithm = \"gcra\"\nlimit = 2\nperiod = \"1s\"\nburst = 3\n\n[[rule.limit]]\nname = \"per-app-audit\"\nkey = [\"app\"]\non_missing = \"shared\"\nalgorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1s\"\nshadow = true\n",
    "[response]\nheaders = \"ietf\"\nstatus = 503\n[table]\ncapacity = 8\nwhen_full = \"evict\"\n\n[[rule]]\nname = \"writes\"\nroute = \"POST /v1/*\"\nwhen = { tier = { not_in = [\"internal\"] } }\nshadow = false\n\n[[rule.limit]]\nname = \"per-tenant\"\nkey = [\"tenant\"]\non_missing = \"skip\"\nalgorithm = \"fixed_window\"\nlimit = 4\nperiod = \"2s\"\n\n[[rule.limit]]\nname = \"per-tenant-audit\"\nkey = [\"tenant\"]\non_missing = \"skip\"\nalgorithm = \"sliding_window\"\nlimit = 2\nperiod = \"1s\"\nshadow = true\n\n[[rule]]\nname = \"clients\"\nwhen = { client = { present = true }, auth = [\"client_credentials\", \"personal_token\"] }\n\n[[rule.limit]]\nname = \"per-client\"\nkey = [\"client\"]\nalgorithm = \"gcra\"\nlimit = 5\nperiod = \"1s\"\n\n[[rule.limit]]\nname = \"all\"\nkey = []\nalgorithm = \"fixed_window\"\nlimit = 50\nperiod = \"1m\"\n",
];

/// The file a reload reads.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileArg {
    /// One of [`RELOAD_FILES`] (modulo their number).
    Path(u8),
    /// A NULL path.
    Null,
    /// A path that is not UTF-8.
    InvalidUtf8,
}

/// Which limit an override call names.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum LimitName {
    /// One of the policy's limits (modulo their number), by its rule's name and its own.
    Known(u8),
    /// Any rule and limit names.
    Raw(StrArg, StrArg),
}

/// Which override a call names, and how its strings are passed.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct OverrideArg {
    /// The limit.
    pub limit: LimitName,
    /// The attribute (modulo [`OVERRIDE_ATTRIBUTES`]).
    pub attribute: u8,
    /// How the attribute is passed.
    pub attribute_how: StrHow,
    /// The value (modulo [`ATTR_VALUES`]).
    pub value: u8,
    /// How the value is passed.
    pub value_arg: SliceArg,
}

/// Attributes an override may select by: the builtin policies' key attributes, two
/// more, and two names the API refuses.
pub(super) const OVERRIDE_ATTRIBUTES: [&str; 8] = [
    "app",
    "tenant",
    "client",
    "user",
    "client_ip",
    "tier",
    "a b",
    "",
];

/// An override quota as C passes it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaArg {
    /// The `unlimited` byte: mostly 0 or 1, now and then another byte (refused).
    pub unlimited: u8,
    /// `limit`.
    pub limit: Num,
    /// `burst` (`None`: 0).
    pub burst: Option<Num>,
    /// The `size`.
    pub size: SizeArg,
    /// The pointer (an "output" only in how it is passed: valid, NULL, misaligned).
    pub ptr: OutArg,
}

impl QuotaArg {
    pub(super) fn unlimited_byte(self) -> u8 {
        match self.unlimited % 5 {
            0 | 1 => 0,
            2 | 3 => 1,
            _ => 2 + self.unlimited / 5,
        }
    }

    /// The quota the library reads, or `None` when its fields are refused.
    pub(super) fn quota(self) -> Option<OverrideQuota> {
        let (limit, burst) = (self.limit.get(), self.burst.map_or(0, Num::get));
        match (self.unlimited_byte(), limit, burst) {
            (0, limit, 0) => Some(OverrideQuota::Limit { limit, burst: None }),
            (0, limit, burst) => Some(OverrideQuota::Limit {
                limit,
                burst: Some(burst),
            }),
            (1, 0, 0) => Some(OverrideQuota::Unlimited),
            _ => None,
        }
    }
}

/// Files a reload may read, relative to the repository: the example policies, a TOML
/// file that is not a policy, and one that does not exist.
pub(super) const RELOAD_FILES: [&str; 5] = [
    "examples/policies/evenergy.toml",
    "examples/policies/switch.toml",
    "examples/policies/uphold.toml",
    "ffi/cbindgen.toml",
    "examples/policies/missing.toml",
];

impl PolicyText {
    pub(super) fn text(&self) -> String {
        match self {
            Self::Builtin(i) => POLICIES[usize::from(*i) % POLICIES.len()].to_string(),
            Self::Raw(t) => t.clone(),
        }
    }
}

/// An identity in a request.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdArg {
    /// `(NULL, 0)`: absent.
    Absent,
    /// NULL with a length: absent too (identities are optional).
    AbsentWithLen,
    /// One of 8 identities.
    Id(u8),
    /// A length above `PTRDIFF_MAX`.
    Huge,
}

/// A request.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct RequestArg {
    /// Method choice.
    pub method: u8,
    /// How the method is passed.
    pub method_how: StrHow,
    /// The path.
    pub path: StrArg,
    /// Client IP.
    pub client_ip: IdArg,
    /// User.
    pub user: IdArg,
    /// Whether the OAuth app is present (one app only, so app × user has at most 8 keys).
    pub app: IdArg,
    /// OAuth client.
    pub client: IdArg,
}

pub(super) const IDS: [&[u8]; 9] = [
    b"",
    b"1",
    b"22",
    b"10.0.0.1",
    b"u@x",
    b"\0",
    b"\xff\xfe",
    b"k7",
    b"app",
];
pub(super) const METHODS: [&str; 5] = ["GET", "POST", "post", "DELETE", ""];

/// How a struct that may grow gives its `size`.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeArg {
    /// `sizeof` the struct.
    Exact,
    /// Smaller by 1 plus this (modulo the size): rejected.
    Short(u8),
    /// Larger by this (modulo 33), as from a newer header: accepted.
    Longer(u8),
}

impl SizeArg {
    /// The size passed for a `T`, and whether it is rejected.
    pub(super) fn of<T>(self) -> (usize, bool) {
        let size = std::mem::size_of::<T>();
        match self {
            Self::Exact => (size, false),
            Self::Short(n) => (size - 1 - usize::from(n) % size, true),
            Self::Longer(n) => (size + usize::from(n) % 33, false),
        }
    }
}

/// One attribute of a request.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrArg {
    /// The name (modulo [`ATTR_NAMES`]).
    pub name: u8,
    /// The value (modulo [`ATTR_VALUES`]).
    pub value: u8,
}

/// One way a request with named attributes is passed other than plainly (one at a time,
/// so that plain requests, which reach the policy, stay common).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVariation {
    /// This attribute's (modulo their number) value is `(NULL, 0)`: the empty value.
    NullEmptyValue(u8),
    /// The request's `size` is larger by this (modulo 33), as from a newer header.
    LongerSize(u8),
    /// The method is passed so.
    Method(StrHow),
    /// The path is passed so.
    Path(StrHow),
    /// This attribute's name is NULL (with its length).
    NullName(u8),
    /// This attribute's name is followed by a byte that is not UTF-8.
    InvalidUtf8Name(u8),
    /// This attribute's name length is above `PTRDIFF_MAX`.
    HugeName(u8),
    /// This attribute's value is NULL with a length.
    NullValueWithLen(u8),
    /// This attribute's value length is above `PTRDIFF_MAX`.
    HugeValue(u8),
    /// The attribute array is passed so.
    Attributes(SliceArg),
    /// The request's `size` is smaller by 1 plus this (modulo the size).
    ShortSize(u8),
    /// The request pointer is misaligned.
    Misaligned,
}

/// A request with named attributes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct HttpRequestArg {
    /// Method choice.
    pub method: u8,
    /// The path.
    pub path: String,
    /// The attributes (the first 16).
    pub attributes: Vec<AttrArg>,
    /// This many more (modulo 72) named `x-fill`, which no policy uses: past
    /// `RATECORE_MAX_REQUEST_ATTRIBUTES` in all, the request is rejected.
    pub filler: u8,
    /// How it is passed, if not plainly.
    pub variation: Option<HttpVariation>,
}

/// Attribute names: the builtin policies' (the fixed-identity request's among them), one
/// no policy uses, and the empty name.
pub(super) const ATTR_NAMES: [&str; 9] = [
    "auth",
    "app",
    "user",
    "tier",
    "tenant",
    "client",
    "client_ip",
    "x-other",
    "",
];

/// Attribute values (any name takes any): the builtin policies' condition values and a
/// few keys.
pub(super) const ATTR_VALUES: [&[u8]; 8] = [
    b"authorization_code",
    b"client_credentials",
    b"personal_token",
    b"internal",
    b"a",
    b"",
    b"\xff\0",
    b"b",
];
