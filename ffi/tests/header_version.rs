//! The committed header's version macros match this crate's Cargo.toml version, and so
//! does `ratecore_version()` (after rustls-ffi's `rustls_version` test). If this fails,
//! update `after_includes` in ffi/cbindgen.toml and run ffi/gen-header.sh.

use std::ffi::CStr;
use std::path::Path;

fn header() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/ratecore.h");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The value of `#define NAME value` in the header.
fn define(header: &str, name: &str) -> String {
    let values: Vec<&str> = header
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("#define") && words.next() == Some(name))
                .then(|| words.next())
                .flatten()
        })
        .collect();
    assert_eq!(values.len(), 1, "expected exactly one #define {name}");
    values[0].to_owned()
}

#[test]
fn header_version_macros_match_cargo_toml() {
    let header = header();
    assert_eq!(
        define(&header, "RATECORE_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        define(&header, "RATECORE_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        define(&header, "RATECORE_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(
        define(&header, "RATECORE_VERSION"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn cargo_toml_version_is_the_package_version() {
    // The crate version the macros are compared with is the one in ffi/Cargo.toml.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("read ffi/Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .expect("a version line");
    assert_eq!(
        line.trim(),
        format!("version = \"{}\"", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn library_version_matches_header() {
    // SAFETY: ratecore_version returns a static NUL-terminated string, never NULL.
    let version = unsafe { CStr::from_ptr(ratecore_ffi::ratecore_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}
