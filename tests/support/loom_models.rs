//! `loom_models!`, for the loom test binaries (included by path with `#[macro_use]`): one
//! `#[test]` per entry, running the entry's expression in every interleaving
//! `loom::model` explores.

/// `name => expression;` entries, each with its own doc comment saying what it races.
macro_rules! loom_models {
    ($($(#[$attr:meta])* $name:ident => $model:expr;)*) => {$(
        $(#[$attr])*
        #[test]
        fn $name() {
            loom::model(|| $model);
        }
    )*};
}
