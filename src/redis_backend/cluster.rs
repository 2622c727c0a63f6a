//! Redis Cluster: the connection a check runs on (one server, or a cluster connection
//! that routes each command by its first key's hash slot and follows `MOVED` and `ASK`),
//! blocking ([`Conn`]) and async ([`AsyncConn`], feature `redis-tokio`), and the hash tag
//! that puts every limit of one request key in one slot. Every command a check sends
//! (the check, `SCRIPT LOAD` after `NOSCRIPT`, `WAIT`, an undo) goes to the primary of
//! its key's slot.

use redis::cluster::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::ConnectionLike;

/// Redis Cluster's slot count.
const SLOTS: u16 = 16384;

/// A connection to one server or to a cluster.
pub(super) enum Conn {
    Single(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    /// Sends `command` (on a cluster: to the primary of `key`'s slot, following `MOVED`
    /// and `ASK`). The route is explicit because the `redis` crate guesses a command's
    /// key from its position, and `RATECORE.CHECK`'s first argument is the key count.
    pub(super) fn query(
        &mut self,
        command: &redis::Cmd,
        key: &[u8],
    ) -> redis::RedisResult<redis::Value> {
        match self {
            Self::Single(connection) => command.query(connection),
            Self::Cluster(connection) => connection.route_command(command, primary_of(key)),
        }
    }

    /// [`query`](Self::query); with `then` (a `WAIT`), both commands on the same
    /// connection in one round trip, and both replies as an array, as
    /// [`AsyncConn::send`] (`WAIT` counts the writes of the connection it arrives on).
    pub(super) fn send(
        &mut self,
        command: &redis::Cmd,
        then: Option<&redis::Cmd>,
        key: &[u8],
    ) -> redis::RedisResult<redis::Value> {
        let Some(then) = then else {
            return self.query(command, key);
        };
        let replies = match self {
            Self::Single(connection) => {
                let mut both = redis::pipe();
                both.add_command(command.clone()).add_command(then.clone());
                both.query::<Vec<redis::Value>>(connection)?
            }
            Self::Cluster(connection) => {
                let (packed, offset, count) = routed_transaction(command, then, key);
                let mut replies = connection.req_packed_commands(&packed, offset, count)?;
                // `[EXEC's [slot count, check's reply], WAIT's reply]` becomes the pair
                // `[check's reply, WAIT's reply]`; another shape is left for the caller to
                // reject as an inconsistent reply.
                if let Some(first) = replies.first_mut() {
                    let checked = match first {
                        redis::Value::Array(executed) if executed.len() == 2 => executed.pop(),
                        _ => None,
                    };
                    if let Some(checked) = checked {
                        *first = checked;
                    }
                }
                replies
            }
        };
        redis::Value::Array(replies).extract_error()
    }

    /// `PING` (on a cluster: every node, as the `redis` crate routes it).
    pub(super) fn ping(&mut self) -> redis::RedisResult<()> {
        let ping = redis::cmd("PING");
        match self {
            Self::Single(connection) => ping.exec(connection),
            Self::Cluster(connection) => ping.exec(&mut **connection),
        }
    }

    /// Loads the check script where `key` lives (on a cluster: only that slot's primary,
    /// so a node that is down elsewhere does not fail the load).
    pub(super) fn load_script(
        &mut self,
        script: &redis::Script,
        key: &[u8],
    ) -> redis::RedisResult<()> {
        match self {
            Self::Single(connection) => script.load(connection).map(drop),
            Self::Cluster(connection) => connection
                .route_command(&script_load(), primary_of(key))
                .map(drop),
        }
    }
}

/// The async connection a check runs on: one server's multiplexed connection, or a
/// cluster connection (one multiplexed connection per node). Both are handles to a
/// connection driven by a task of their own, cheap to clone, each clone sending on the
/// same sockets.
#[cfg(feature = "redis-tokio")]
#[derive(Clone)]
pub(super) enum AsyncConn {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

#[cfg(feature = "redis-tokio")]
impl AsyncConn {
    /// [`Conn::query`] on the async connection; with no key, where the `redis` crate
    /// routes the command (`PING`: every primary). With `then` (a `WAIT`), both commands
    /// are sent together on one connection and both replies returned as an array: `WAIT`
    /// counts the writes of the connection it arrives on, and a connection replaced
    /// between the two (a reconnect) would have made none.
    pub(super) async fn send(
        &mut self,
        command: &redis::Cmd,
        then: Option<&redis::Cmd>,
        key: Option<&[u8]>,
    ) -> redis::RedisResult<redis::Value> {
        let Some(then) = then else {
            return match (self, key) {
                (Self::Single(connection), _) => command.query_async(connection).await,
                (Self::Cluster(connection), Some(key)) => {
                    connection.route_command(command, primary_of(key)).await
                }
                (Self::Cluster(connection), None) => command.query_async(connection).await,
            };
        };
        let mut both = redis::pipe();
        both.add_command(command.clone()).add_command(then.clone());
        let replies = match self {
            Self::Single(connection) => both.query_async(connection).await?,
            Self::Cluster(connection) => {
                let primary = Route::new(slot(key.unwrap_or_default()), SlotAddr::Master);
                connection
                    .route_pipeline(&both, 0, 2, SingleNodeRoutingInfo::SpecificNode(primary))
                    .await?
            }
        };
        redis::Value::Array(replies).extract_error()
    }

    /// [`Conn::load_script`] on the async connection.
    pub(super) async fn load_script(
        &mut self,
        script: &redis::Script,
        key: &[u8],
    ) -> redis::RedisResult<()> {
        match self {
            Self::Single(connection) => script.load_async(connection).await.map(drop),
            Self::Cluster(connection) => connection
                .route_command(&script_load(), primary_of(key))
                .await
                .map(drop),
        }
    }
}

/// `SCRIPT LOAD` of the check script: on a cluster, sent to one slot's primary only, so
/// that a node down elsewhere does not fail the load.
fn script_load() -> redis::Cmd {
    let mut load = redis::cmd("SCRIPT");
    load.arg("LOAD").arg(super::script::SCRIPT);
    load
}

/// `command` and `then` for the blocking cluster connection, packed as one pipeline to
/// the primary of `key`'s slot: `MULTI`, `CLUSTER COUNTKEYSINSLOT slot`, `command`,
/// `EXEC`, `then`; with the offset and count of the replies that matter (`EXEC`'s and
/// `then`'s).
///
/// The connection routes a pipeline by the first command after a leading `MULTI`, as
/// the `redis` crate reads it: it would take `RATECORE.CHECK`'s key count for its key,
/// but it routes `CLUSTER COUNTKEYSINSLOT` to the slot's primary, and that costs the
/// server a constant-time read of the slot's key count. The transaction is what keeps
/// `ASK` working: the connection retries a redirected pipeline after an `ASKING`, which
/// a server applies to the next command only, except inside `MULTI`, where it holds
/// until `EXEC`. A redirection (`MOVED`, `ASK`) of the check as it is queued aborts the
/// transaction, so nothing ran, and the connection resends the whole pipeline where the
/// redirection points.
fn routed_transaction(
    command: &redis::Cmd,
    then: &redis::Cmd,
    key: &[u8],
) -> (Vec<u8>, usize, usize) {
    let mut route = redis::cmd("CLUSTER");
    route.arg("COUNTKEYSINSLOT").arg(slot(key));
    let mut packed = Vec::new();
    for part in [
        &redis::cmd("MULTI"),
        &route,
        command,
        &redis::cmd("EXEC"),
        then,
    ] {
        part.write_packed_command(&mut packed);
    }
    // Replies: MULTI's `OK`, two `QUEUED`, then EXEC's and `then`'s.
    (packed, 3, 2)
}

/// The route to the primary serving `key`'s slot.
fn primary_of(key: &[u8]) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot(key),
        SlotAddr::Master,
    )))
}

/// The hash slot Redis Cluster assigns `key`: CRC16 (XMODEM) of its hash tag — the bytes
/// between the first `{` and the first `}` after it, when not empty — or of the whole key.
#[must_use]
pub(super) fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS
}

/// Appends `key` as a hash tag: `{`, the key with `%`, `{` and `}` escaped (`%25`,
/// `%7B`, `%7D`), `}`. So the tag is exactly the key, whatever its bytes, and every
/// limit of one key hashes to one slot. The empty key's tag is `{%}` (a lone `%` is no
/// escaped key's spelling), since an empty tag `{}` would hash the whole key instead.
pub(super) fn push_tag(out: &mut Vec<u8>, key: &[u8]) {
    out.push(b'{');
    if key.is_empty() {
        out.push(b'%');
    }
    for &b in key {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'{' => out.extend_from_slice(b"%7B"),
            b'}' => out.extend_from_slice(b"%7D"),
            b => out.push(b),
        }
    }
    out.push(b'}');
}

/// Appends `text` with `{` and `}` escaped, so a name or prefix never opens a hash tag.
pub(super) fn push_untagged(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        match b {
            b'{' => out.extend_from_slice(b"%7B"),
            b'}' => out.extend_from_slice(b"%7D"),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_redis_hash_tags() {
        // Values from the Redis Cluster specification's examples and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 0x31c3 % SLOTS);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}".as_slice()));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn tags_are_the_escaped_key_and_never_empty() {
        let tag = |key: &[u8]| {
            let mut out = Vec::new();
            push_tag(&mut out, key);
            out
        };
        assert_eq!(tag(b"ip"), b"{ip}");
        assert_eq!(tag(b""), b"{%}");
        assert_eq!(tag(b"a{b}%"), b"{a%7Bb%7D%25}");
        assert_ne!(tag(b"%"), tag(b""));
        // The slot is the key's own tag, whatever precedes it.
        let mut a = b"ratecore:x:0000:".to_vec();
        push_tag(&mut a, b"k}{");
        let mut b = b"ratecore:y:ffff:".to_vec();
        push_tag(&mut b, b"k}{");
        assert_eq!(slot(&a), slot(&b));
    }
}
