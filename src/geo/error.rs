//! The one error type of the geo room.
//!
//! GeoIP databases are untrusted input: every failure names the file it came from, so an
//! operator reading `meridian check` output knows which database to replace.

use std::path::{Path, PathBuf};

/// A database could not be opened, decoded or built; `path` names the file (or the source of
/// the data, such as a CSV), `reason` says what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct GeoError {
    /// The file (or other named source) the error is about.
    pub path: PathBuf,
    /// What was wrong, in words.
    pub reason: String,
}

impl GeoError {
    /// An error about `path`.
    pub fn new(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }
}
