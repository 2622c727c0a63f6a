//! Route matchers: an HTTP method and a path template such as
//! `POST /cards/:card/transactions/:id/commit`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One segment of a path template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    /// Must equal this text.
    Literal(String),
    /// Matches any one non-empty segment (`:name`).
    Param,
    /// Matches the rest of the path, including nothing (`*`, last segment only).
    Rest,
}

/// Why a route template was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteError(String);

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RouteError {}

/// A method (or any method) and a path template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Upper-case method, or `None` for any method (`ALL` / `*`).
    method: Option<String>,
    segments: Vec<Segment>,
    /// Whether the last segment is `*`; if not, a path matches only with exactly
    /// `segments.len()` segments, which rejects most routes with one comparison.
    rest: bool,
    template: String,
}

impl Route {
    /// Parses `"METHOD /path/:param/*"` (method `ALL` or `*` matches any method; the
    /// method may be omitted to match any).
    ///
    /// # Errors
    /// A [`RouteError`] naming what is wrong: an empty template, a path not starting with
    /// `/`, an empty segment (`//`), a `:` without a name, a duplicate parameter name, a
    /// `*` that is not the last segment, or a bad method.
    pub fn parse(template: &str) -> Result<Self, RouteError> {
        let template = template.trim();
        let (method, path) = match template.split_once(' ') {
            Some((method, path)) => (Some(method), path.trim()),
            None => (None, template),
        };
        let method = match method {
            None | Some("ALL" | "*") => None,
            Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(m.to_string())
            }
            Some(m) => {
                return Err(RouteError(alloc::format!(
                    "bad method {m:?} in route {template:?}: use an upper-case HTTP method, or ALL"
                )))
            }
        };
        if !path.starts_with('/') {
            return Err(RouteError(alloc::format!(
                "route path {path:?} must start with '/'"
            )));
        }
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let parts: Vec<&str> = path[1..].split('/').collect();
        let last = parts.len() - 1;
        for (index, part) in parts.iter().enumerate() {
            if part.is_empty() {
                if index == last && index == 0 {
                    break; // the root path "/"
                }
                return Err(RouteError(alloc::format!(
                    "route path {path:?} has an empty segment"
                )));
            }
            if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(RouteError(alloc::format!(
                        "route path {path:?}: parameter {part:?} needs a name of letters, digits or '_'"
                    )));
                }
                if names.contains(&name) {
                    return Err(RouteError(alloc::format!(
                        "route path {path:?}: parameter :{name} appears twice"
                    )));
                }
                names.push(name);
                segments.push(Segment::Param);
            } else if *part == "*" {
                if index != last {
                    return Err(RouteError(alloc::format!(
                        "route path {path:?}: '*' may only be the last segment"
                    )));
                }
                segments.push(Segment::Rest);
            } else if part.contains([':', '*', '?', '#', ' ']) {
                return Err(RouteError(alloc::format!(
                    "route path {path:?}: segment {part:?} has a reserved character"
                )));
            } else {
                segments.push(Segment::Literal((*part).to_string()));
            }
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(RouteError(alloc::format!(
                "route path {path:?} has more than {MAX_SEGMENTS} segments"
            )));
        }
        Ok(Self {
            method,
            rest: segments.last() == Some(&Segment::Rest),
            segments,
            template: template.to_string(),
        })
    }

    /// The template as written.
    #[must_use]
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Whether a request with `method` and `path` (query string ignored) matches.
    /// Allocation-free.
    #[must_use]
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.matches_split(method, &SplitPath::new(path))
    }

    /// [`matches`](Self::matches) on a path split once beforehand: a policy matches one
    /// request against every rule's route, and splitting the path per route cost more
    /// than the limit checks themselves (callgrind, `profile_driver rc_policy_uphold`).
    #[must_use]
    pub fn matches_split(&self, method: &str, path: &SplitPath<'_>) -> bool {
        if !path.rooted || (!self.rest && (path.truncated || path.kept != self.segments.len())) {
            return false;
        }
        if let Some(expected) = &self.method {
            // Clients send methods in upper case, as templates store them: the exact
            // comparison settles nearly every request, without a per-byte case fold.
            if expected.as_bytes() != method.as_bytes() && !expected.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        for (index, segment) in self.segments.iter().enumerate() {
            // A route has at most MAX_SEGMENTS segments (parse), so every index below
            // is within what SplitPath kept, whenever the path is that long.
            let part = path.part(index);
            match segment {
                Segment::Rest => return true,
                Segment::Param => match part {
                    Some(part) if !part.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(text) => match part {
                    Some(part) if part == text => {}
                    _ => return false,
                },
            }
        }
        !path.truncated && path.kept == self.segments.len()
    }
}

impl Route {
    /// Whether some request could match both `self` and `other` (conservative: `true`
    /// unless a method or a literal segment tells them apart, or their lengths differ
    /// with no `*`). Policies use it to bound how many limits one request can meet.
    #[must_use]
    pub fn may_overlap(&self, other: &Self) -> bool {
        if let (Some(a), Some(b)) = (&self.method, &other.method) {
            if !a.eq_ignore_ascii_case(b) {
                return false;
            }
        }
        let (a, b) = (&self.segments, &other.segments);
        for index in 0..a.len().max(b.len()) {
            match (a.get(index), b.get(index)) {
                (Some(Segment::Rest), _) | (_, Some(Segment::Rest)) => return true,
                (Some(Segment::Literal(x)), Some(Segment::Literal(y))) if x != y => return false,
                (Some(_), Some(_)) => {}
                // One ends where the other goes on, and neither has a `*`: a path has
                // one length.
                _ => return false,
            }
        }
        true
    }
}

/// The most segments a route template may have; a request path may have any number.
pub const MAX_SEGMENTS: usize = 32;

/// A request path split into segments once, to be matched against many routes
/// ([`Route::matches_split`]). Query string and fragment are ignored, as is one trailing
/// `/`. Allocation-free: up to [`MAX_SEGMENTS`] segments are kept; a longer path is
/// flagged, which is enough to decide every route exactly (no route has more segments).
#[derive(Clone, Copy, Debug)]
pub struct SplitPath<'a> {
    /// The path without its query string, fragment, leading `/` and one trailing `/`.
    path: &'a str,
    /// Where each kept segment ends in `path`; segment `i` starts one byte after segment
    /// `i - 1` ends (at 0 for the first). Offsets rather than `&str`s: the array is set
    /// up on every check, and half the size sets up in half the stores.
    ends: [usize; MAX_SEGMENTS],
    kept: usize,
    truncated: bool,
    /// Whether the path starts with `/` (no route matches one that does not).
    rooted: bool,
}

impl<'a> SplitPath<'a> {
    /// Splits `path`.
    #[must_use]
    pub fn new(path: &'a str) -> Self {
        let mut split = Self {
            path: "",
            ends: [0; MAX_SEGMENTS],
            kept: 0,
            truncated: false,
            rooted: false,
        };
        // Byte scans rather than `split`: the char searcher's set-up cost more than the
        // scan itself on paths of a few dozen bytes. `?`, `#` and `/` are ASCII, so every
        // cut is a char boundary.
        let cut = path
            .bytes()
            .position(|b| b == b'?' || b == b'#')
            .unwrap_or(path.len());
        let path = path.get(..cut).unwrap_or("");
        let Some(path) = path.strip_prefix('/') else {
            return split;
        };
        split.rooted = true;
        let path = path.strip_suffix('/').unwrap_or(path);
        split.path = path;
        if path.is_empty() {
            return split;
        }
        for (index, byte) in path.bytes().enumerate() {
            if byte == b'/' && !split.push(index) {
                return split;
            }
        }
        split.push(path.len());
        split
    }

    /// Records a segment ending at `end`; `false` (and the path flagged as truncated)
    /// when [`MAX_SEGMENTS`] are already kept.
    fn push(&mut self, end: usize) -> bool {
        match self.ends.get_mut(self.kept) {
            Some(slot) => {
                *slot = end;
                self.kept += 1;
                true
            }
            None => {
                self.truncated = true;
                false
            }
        }
    }

    /// Kept segment `index`, if the path has that many (within [`MAX_SEGMENTS`]).
    fn part(&self, index: usize) -> Option<&'a str> {
        if index >= self.kept {
            return None;
        }
        let start = match index.checked_sub(1) {
            Some(previous) => self.ends.get(previous)? + 1,
            None => 0,
        };
        self.path.get(start..*self.ends.get(index)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates() {
        let r = Route::parse("POST /cards/:card/transactions/:id/commit").unwrap();
        assert!(r.matches("POST", "/cards/abc/transactions/42/commit"));
        assert!(r.matches("post", "/cards/abc/transactions/42/commit?x=1"));
        assert!(!r.matches("GET", "/cards/abc/transactions/42/commit"));
        assert!(!r.matches("POST", "/cards/abc/transactions/42"));
        assert!(!r.matches("POST", "/cards//transactions/42/commit"));
        assert!(!r.matches("POST", "/cards/abc/transactions/42/commit/more"));
        let any = Route::parse("ALL /api/*").unwrap();
        assert!(any.matches("DELETE", "/api/x/y"));
        assert!(any.matches("GET", "/api"));
        let root = Route::parse("GET /").unwrap();
        assert!(root.matches("GET", "/"));
        assert!(!root.matches("GET", "/x"));
    }

    /// The matcher before `SplitPath`: re-splits the path per route. The reference the
    /// split matcher must agree with.
    fn reference_matches(route: &Route, method: &str, path: &str) -> bool {
        if let Some(expected) = &route.method {
            if !expected.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        let Some(path) = path.strip_prefix('/') else {
            return false;
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut parts = path.split('/').filter(|_| !path.is_empty());
        for segment in &route.segments {
            match segment {
                Segment::Rest => return true,
                Segment::Param => match parts.next() {
                    Some(part) if !part.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(text) => match parts.next() {
                    Some(part) if part == text => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }

    fn template_segment() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prop_oneof![
            proptest::strategy::Just("a".to_string()),
            proptest::strategy::Just("b".to_string()),
            proptest::strategy::Just(":p".to_string()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]
        /// Split matching answers exactly as per-route splitting did, for paths with
        /// empty segments, query strings, fragments and more segments than are kept.
        #[test]
        fn split_matching_equals_the_reference(
            segments in proptest::collection::vec(template_segment(), 0..36),
            rest: bool,
            method in proptest::sample::select(vec!["GET", "POST", "ALL"]),
            path in "(/(a|b|c|)){0,40}/?([?#][a/]*)?",
            request_method in proptest::sample::select(vec!["GET", "post", "POST"]),
        ) {
            // Parameter names must be unique: number them.
            let named: Vec<String> = segments
                .iter()
                .enumerate()
                .map(|(i, s)| if s == ":p" { std::format!(":p{i}") } else { s.clone() })
                .collect();
            let mut template = std::format!("{method} /{}", named.join("/"));
            if rest {
                template.push_str(if segments.is_empty() { "*" } else { "/*" });
            }
            if let Ok(route) = Route::parse(&template) {
                proptest::prop_assert_eq!(
                    route.matches(request_method, &path),
                    reference_matches(&route, request_method, &path),
                    "{} vs {} {}", template, request_method, path
                );
            } else {
                proptest::prop_assert!(segments.len() + usize::from(rest) > MAX_SEGMENTS);
            }
        }
    }

    #[test]
    fn long_paths_and_templates() {
        let long = (0..MAX_SEGMENTS).map(|_| "a").collect::<Vec<_>>().join("/");
        let route = Route::parse(&std::format!("GET /{long}")).unwrap();
        assert!(route.matches("GET", &std::format!("/{long}")));
        assert!(!route.matches("GET", &std::format!("/{long}/a")));
        let prefix =
            Route::parse(&std::format!("GET /{long}")[..8].replace("/a/a", "/a/*")).unwrap();
        assert!(prefix.matches("GET", &std::format!("/{long}/a/a/a")));
        assert!(Route::parse(&std::format!("GET /{long}/a")).is_err());
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in [
            "",
            "POST",
            "POST cards",
            "POST /a//b",
            "POST /a/:",
            "POST /a/:x/:x",
            "POST /*/a",
            "post /a",
            "POST /a?b",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad:?}");
        }
    }
}
