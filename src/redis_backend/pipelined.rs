//! Blocking checks pipelined on the async transport ([`RedisConfig::pipelined`]).
//!
//! A pooled connection carries one check at a time, so a thread's check waits a whole
//! round trip on its own socket. In pipelined mode a blocking check instead runs the async
//! transport's check (`aio.rs`: the same command, verification, faults and counters) on
//! the calling thread, sending on the one multiplexed connection that every thread shares
//! and whose reader task runs on a single runtime thread the backend owns. Many threads'
//! commands are then in flight on one socket at once.
//!
//! The runtime is started on the first pipelined check; if it cannot be (no thread could
//! be spawned), checks use the pool. A check made from inside a tokio runtime cannot block
//! that runtime on another one, so it uses the pool too.
//!
//! [`RedisConfig::pipelined`]: super::RedisConfig::pipelined

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

use super::{Check, Inner, RedisCheckError};
use crate::decision::Decision;

/// The runtime the pipelined checks' connection is driven by (started on first use).
#[derive(Debug, Default)]
pub(super) struct Driver {
    runtime: OnceLock<Option<Runtime>>,
}

impl Driver {
    fn runtime(&self) -> Option<&Runtime> {
        self.runtime
            .get_or_init(|| {
                Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("ratecore-redis")
                    .enable_all()
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

impl Inner {
    /// The check on the shared multiplexed connection, when pipelined mode is on and can
    /// run here; `None` sends the caller to the pool.
    pub(super) fn run_pipelined(
        &self,
        check: Check<'_>,
        states: &mut [Decision],
    ) -> Option<Result<Decision, RedisCheckError>> {
        if !self.config.pipelined || Handle::try_current().is_ok() {
            return None;
        }
        let runtime = self.driver.runtime()?;
        Some(runtime.block_on(self.run_async(check, states)))
    }
}
