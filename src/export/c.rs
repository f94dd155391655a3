//! C99 source for an integer program: fixed-width integer types and shifts
//! only (no float, no division), and a `main` that runs a data file.

use std::path::{Path, PathBuf};

use super::Samples;
use crate::program::IntProgram;

/// Writes the C files into `dir` and returns their paths.
pub fn write(
    _p: &IntProgram,
    _dir: &Path,
    _data: Option<&Samples>,
) -> Result<Vec<PathBuf>, String> {
    Err("the C export is not written yet".into())
}
