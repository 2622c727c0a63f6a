//! Redis Cluster: the connection a check runs on (one server, or a cluster connection
//! that routes each command by its first key's hash slot and follows `MOVED` and `ASK`),
//! the hash tag that puts every limit of one request key in one slot, and the commands
//! that must reach the primary of a given slot (`SCRIPT LOAD` after `NOSCRIPT`, `WAIT`).

use redis::cluster::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

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
            Self::Cluster(connection) => {
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(super::script::SCRIPT);
                connection.route_command(&load, primary_of(key)).map(drop)
            }
        }
    }

    /// `WAIT replicas timeout_ms` on the server holding `key`: how many replicas
    /// acknowledged every write this connection made there.
    pub(super) fn wait(
        &mut self,
        replicas: u32,
        timeout_ms: u64,
        key: &[u8],
    ) -> redis::RedisResult<u64> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout_ms);
        let reply = match self {
            Self::Single(connection) => wait.query(connection)?,
            Self::Cluster(connection) => connection.route_command(&wait, primary_of(key))?,
        };
        redis::from_redis_value(&reply)
    }
}

/// The route to the primary serving `key`'s slot.
pub(super) fn primary_of(key: &[u8]) -> RoutingInfo {
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
