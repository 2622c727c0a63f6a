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
        Ok(Self {
            method,
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
        if let Some(expected) = &self.method {
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
        for segment in &self.segments {
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
