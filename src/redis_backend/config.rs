//! [`RedisConfig`]: how to reach Redis, and what a check answers when it cannot
//! ([`FailureMode`]).

use std::time::Duration;

/// What a check answers when Redis cannot decide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailureMode {
    /// Deny (the default): a Redis outage must not lift the limits.
    #[default]
    Closed,
    /// Admit: availability over enforcement.
    Open,
}

/// What runs a check on the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RedisEngine {
    /// The ratecore module when the server has it, else the Lua script (the default):
    /// detected on first use and again after the server went away.
    #[default]
    Detect,
    /// Always the module (`RATECORE.CHECK`); a server without it answers every check
    /// with an error ([`Fault::Server`](super::Fault::Server)).
    Module,
    /// Always the Lua script (managed services that forbid modules).
    Script,
}

/// The most [`RedisConfig::wait_connections`] a backend takes.
pub const MAX_WAIT_CONNECTIONS: usize = 1024;

/// How to reach Redis and what to do when it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// A `redis://` URL (`redis://[user:password@]host[:port][/db]`).
    pub url: String,
    /// Prepended to every key (default `"ratecore:"`).
    pub prefix: String,
    /// Connect timeout, and the timeout of every socket read and write (default 100 ms).
    /// Must be above zero.
    pub timeout: Duration,
    /// What a check answers when Redis cannot decide (default [`FailureMode::Closed`]).
    pub failure_mode: FailureMode,
    /// The `retry_after` (closed) and `reset_after` of failure decisions (default 1 s).
    pub failure_retry_after: Duration,
    /// After a failed connect, how long checks fail at once before connecting again
    /// (default 100 ms).
    pub reconnect_backoff: Duration,
    /// The shortest TTL a write sets (default 1 ms; rounded up to whole ms). Raise it when
    /// callers' `now` may run slower than wall time.
    pub min_ttl: Duration,
    /// Idle connections kept for reuse (default 32).
    pub max_idle_connections: usize,
    /// The module or the script (default [`RedisEngine::Detect`]).
    pub engine: RedisEngine,
    /// Blocking checks share the async transport's one multiplexed connection, driven by
    /// a runtime thread the backend owns, instead of each taking a pooled connection:
    /// concurrent threads' checks are then pipelined on one socket (feature
    /// `redis-tokio`; default `false`, and ignored without the feature). A blocking check
    /// made from inside a tokio runtime uses the pool.
    pub pipelined: bool,
    /// Redis Cluster seed nodes (`redis://host:port/` URLs); empty (the default) talks to
    /// the one server at `url`. Non-empty: checks are routed by hash slot, keys carry a
    /// hash tag, and `url` is not used. See [`RedisConfig::cluster`].
    pub cluster_nodes: Vec<String>,
    /// After a check that wrote, wait until this many replicas acknowledged the write
    /// (`WAIT n wait_timeout`) before deciding (default 0: do not wait). A write fewer
    /// replicas acknowledged in time is a [`Fault::Replication`](super::Fault::Replication)
    /// (the failure decision), since a failover could lose it.
    ///
    /// The server holds a connection's later commands until its `WAIT` returns, so a
    /// connection carries one check with `WAIT` at a time: the blocking pool's connections
    /// each carry one check anyway, and the async transport and
    /// [`pipelined`](Self::pipelined) checks send theirs on
    /// [`wait_connections`](Self::wait_connections) lines.
    pub wait_replicas: u32,
    /// How long `WAIT` waits for [`wait_replicas`](Self::wait_replicas) (default 50 ms;
    /// keep it below [`timeout`](Self::timeout)).
    pub wait_timeout: Duration,
    /// How many checks with `WAIT` the async transport and [`pipelined`](Self::pipelined)
    /// checks have in flight at once (default 16): each on a connection of its own (on a
    /// cluster, a connection per node), opened when first needed; a check waits for a
    /// free one within its [`timeout`](Self::timeout). 0 sends them on the connection
    /// every other check shares, where they run one after another.
    pub wait_connections: usize,
}

impl RedisConfig {
    /// The defaults, for the Redis at `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: String::from("ratecore:"),
            timeout: Duration::from_millis(100),
            failure_mode: FailureMode::Closed,
            failure_retry_after: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(100),
            min_ttl: Duration::from_millis(1),
            max_idle_connections: 32,
            engine: RedisEngine::Detect,
            pipelined: false,
            cluster_nodes: Vec::new(),
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(50),
            wait_connections: 16,
        }
    }

    /// The defaults, for the Redis Cluster reachable through `nodes` (any of its nodes;
    /// the rest are discovered).
    #[must_use]
    pub fn cluster<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Self {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        Self {
            cluster_nodes: nodes.clone(),
            ..Self::new(nodes.first().cloned().unwrap_or_default())
        }
    }

    /// Whether this configuration talks to a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }
}
