//! One request as a policy sees it: method and path for routes, and named attributes
//! (name → bytes) for conditions and keys, borrowed from the caller so a check never
//! allocates.

use arrayvec::ArrayVec;

/// A named request attribute: `client_ip`, `user`, `app`, `auth`, `api_key`, `tenant`, a
/// header's value… Values are raw bytes compared for equality only (an IP in binary or
/// text form, an account id, a token hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attribute<'a> {
    /// The attribute's name, as the policy spells it.
    pub name: &'a str,
    /// Its value.
    pub value: &'a [u8],
}

impl<'a> Attribute<'a> {
    /// An attribute.
    #[must_use]
    pub const fn new(name: &'a str, value: &'a [u8]) -> Self {
        Self { name, value }
    }
}

/// One incoming request. When an attribute name appears more than once, the first
/// occurrence counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// HTTP method (`POST`).
    pub method: &'a str,
    /// Request path, with or without query string.
    pub path: &'a str,
    /// The request's attributes.
    pub attributes: &'a [Attribute<'a>],
}

impl<'a> Request<'a> {
    /// A request with `method`, `path` and `attributes`.
    #[must_use]
    pub const fn new(method: &'a str, path: &'a str, attributes: &'a [Attribute<'a>]) -> Self {
        Self {
            method,
            path,
            attributes,
        }
    }

    /// The value of the first attribute named `name`, if any.
    #[must_use]
    pub fn attribute(&self, name: &str) -> Option<&'a [u8]> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value)
    }
}

/// The most distinct attribute names one policy may use (in conditions and keys); the
/// per-request lookup table lives on the stack.
pub const MAX_ATTRIBUTES: usize = 32;

/// The most attributes one limit's key may combine.
pub const MAX_KEY_ATTRIBUTES: usize = 8;

/// A request's attributes resolved against a policy's attribute names: slot `i` holds the
/// value of the policy's attribute `i`, if the request carries it. As long as the policy
/// has names, so a policy with three names sets up three slots per check, not
/// [`MAX_ATTRIBUTES`].
pub(crate) type Resolved<'a> = ArrayVec<Option<&'a [u8]>, MAX_ATTRIBUTES>;

/// A name's length, first and last bytes in one word: names with different keys differ,
/// so resolving compares whole names only where the keys agree (nearly always the name
/// itself), instead of every name of the same length.
pub(crate) fn name_key(name: &[u8]) -> u64 {
    let len = u64::try_from(name.len()).unwrap_or(u64::MAX);
    let first = name.first().copied().map_or(0, u64::from);
    let last = name.last().copied().map_or(0, u64::from);
    len.wrapping_shl(16) | first << 8 | last
}

/// Looks each of the request's attributes up among `names` (first occurrence wins) into
/// `resolved` (filled in place, as the caller's stack list); `keys` holds each name's
/// [`name_key`]. A policy uses few names, so a linear scan of the keys beats hashing.
pub(crate) fn resolve<'a>(
    names: &[alloc::string::String],
    keys: &[u64],
    request: &Request<'a>,
    resolved: &mut Resolved<'a>,
) {
    resolved.clear();
    // At most MAX_ATTRIBUTES names (the policy is refused otherwise): `take` only keeps
    // the push from ever failing.
    for _ in names.iter().take(MAX_ATTRIBUTES) {
        resolved.push(None);
    }
    for attribute in request.attributes {
        let wanted = attribute.name.as_bytes();
        let key = name_key(wanted);
        for ((slot, name), &name_key) in resolved.iter_mut().zip(names).zip(keys) {
            if name_key == key && slot.is_none() && name.as_bytes() == wanted {
                *slot = Some(attribute.value);
                break;
            }
        }
    }
}

/// A limit's key read in place from the resolved attributes: hashes exactly as the
/// [`KeyParts`] of the same values, without copying the parts out first.
pub(crate) struct KeyView<'k, 'r> {
    pub(crate) attributes: &'k [usize],
    pub(crate) resolved: &'k Resolved<'r>,
}

impl core::hash::Hash for KeyView<'_, '_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for &attribute in self.attributes {
            self.resolved.get(attribute).copied().flatten().hash(state);
        }
    }
}

/// A limit's key: the values of its attributes in order, `None` for an absent one (only
/// under [`OnMissing::Shared`](super::OnMissing::Shared)). Hashes each part in use with
/// its presence and length, so `("ab", "c")`, `("a", "bc")` and `("abc", absent)` differ.
#[derive(Clone, Copy)]
pub(crate) struct KeyParts<'a> {
    pub(crate) parts: [Option<&'a [u8]>; MAX_KEY_ATTRIBUTES],
    pub(crate) len: usize,
}

impl core::hash::Hash for KeyParts<'_> {
    // Only the parts in use: the unused slots cost a write each for nothing.
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for part in self.parts() {
            part.hash(state);
        }
    }
}

impl<'a> KeyParts<'a> {
    /// The parts in use.
    pub(crate) fn parts(&self) -> &[Option<&'a [u8]>] {
        self.parts.get(..self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::{KeyParts, KeyView, Resolved, MAX_KEY_ATTRIBUTES};

    /// A check hashes keys in place ([`KeyView`]); Redis keys, the offender report and
    /// every earlier table state were made from [`KeyParts`]: the two must agree.
    #[test]
    fn key_view_hashes_as_key_parts() {
        let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
        let values: [Option<&[u8]>; 4] = [Some(b"ab"), None, Some(b""), Some(b"c")];
        let mut resolved = Resolved::new();
        resolved.extend(values);
        for attributes in [&[0usize][..], &[0, 3], &[3, 0], &[1, 2], &[0, 1, 2, 3], &[]] {
            let mut parts = KeyParts {
                parts: [None; MAX_KEY_ATTRIBUTES],
                len: attributes.len(),
            };
            for (part, &attribute) in parts.parts.iter_mut().zip(attributes) {
                *part = values[attribute];
            }
            let view = KeyView {
                attributes,
                resolved: &resolved,
            };
            assert_eq!(
                hasher.hash_one(view),
                hasher.hash_one(parts),
                "{attributes:?}"
            );
        }
    }
}
