//! What can go wrong: [`Fault`], why Redis could not decide, and the error types of checks
//! ([`RedisCheckError`]) and of setting up ([`RedisSetupError`]).

use std::fmt;

pub use crate::error::Fault;
use crate::error::{CheckError, QuotaError};

/// A [`Fault`] with what the client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    /// What went wrong.
    pub fault: Fault,
    /// Details (the Redis client's error message).
    pub message: String,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.fault, self.message)
    }
}

impl std::error::Error for BackendError {}

/// Why a Redis-backed check returned no decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisCheckError {
    /// The cost can never fit a limit (the same caller bug the in-process limiters
    /// report).
    Cost(CheckError),
    /// The limits of one check are unusable together: none, more than
    /// [`MAX_LIMITS`](super::MAX_LIMITS), or two of them on one Redis key.
    Limits(&'static str),
    /// Redis could not decide (only from the `try_*` methods; the others answer with the
    /// failure decision instead).
    Backend(BackendError),
}

impl fmt::Display for RedisCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cost(e) => e.fmt(f),
            Self::Limits(why) => f.write_str(why),
            Self::Backend(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RedisCheckError {}

impl From<CheckError> for RedisCheckError {
    fn from(e: CheckError) -> Self {
        Self::Cost(e)
    }
}

/// Why a backend or a limit could not be set up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisSetupError {
    /// The URL does not parse.
    Url(String),
    /// A zero timeout.
    ZeroTimeout,
    /// An empty limit name.
    Name(String),
    /// The quota is invalid for the algorithm (the in-process constructors' error).
    Quota(QuotaError),
    /// Two limits of one composite have the same name (they would share keys).
    DuplicateName(String),
    /// More [`wait_connections`](super::RedisConfig::wait_connections) than
    /// [`MAX_WAIT_CONNECTIONS`](super::MAX_WAIT_CONNECTIONS).
    TooManyWaitConnections(usize),
}

impl fmt::Display for RedisSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(e) => write!(f, "invalid Redis URL: {e}"),
            Self::ZeroTimeout => f.write_str("the Redis timeout must be above zero"),
            Self::Name(name) => write!(f, "invalid limit name {name:?} (empty)"),
            Self::Quota(e) => e.fmt(f),
            Self::DuplicateName(name) => write!(f, "limit name {name:?} is used twice"),
            Self::TooManyWaitConnections(n) => write!(
                f,
                "{n} wait connections: at most {} (each one is a connection per server)",
                super::MAX_WAIT_CONNECTIONS
            ),
        }
    }
}

impl std::error::Error for RedisSetupError {}

impl From<QuotaError> for RedisSetupError {
    fn from(e: QuotaError) -> Self {
        Self::Quota(e)
    }
}
