//! One request as a policy sees it: method and path for routes, and named attributes
//! (name → bytes) for conditions and keys, borrowed from the caller so a check never
//! allocates.

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
/// value of the policy's attribute `i`, if the request carries it.
pub(crate) type Resolved<'a> = [Option<&'a [u8]>; MAX_ATTRIBUTES];

/// Looks each of the request's attributes up among `names` (first occurrence wins) into
/// `resolved` (all `None` on entry; filled in place: returned by value, the 512-byte
/// table was copied on every check). A policy uses few names, so a linear scan with a
/// length check first beats hashing.
pub(crate) fn resolve<'a>(
    names: &[alloc::string::String],
    request: &Request<'a>,
    resolved: &mut Resolved<'a>,
) {
    for attribute in request.attributes {
        let wanted = attribute.name.as_bytes();
        for (slot, name) in resolved.iter_mut().zip(names) {
            if slot.is_none() && name.len() == wanted.len() && name.as_bytes() == wanted {
                *slot = Some(attribute.value);
                break;
            }
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
