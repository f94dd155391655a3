//! The concrete passes, one file each. `registry()` is the one list of them;
//! the CLI and the tests build pipelines from it by name.

pub mod canonicalize;

use crate::pass::Registry;

/// Every pass potc knows, in the order `potc passes` lists them.
pub fn registry() -> Registry {
    Registry::new(vec![Box::new(canonicalize::Canonicalize)])
}
