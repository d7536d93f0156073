//! The error type of the core, one variant per failure class of `spec/12-errors.md`.
//!
//! The PyO3 layer maps each variant onto its Python exception class; the messages already name
//! the offending path, pattern or process.

use crate::path::Path;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `'text'`, cut in the middle when longer than 120 characters (with the length), as messages
/// show a path that could not be parsed (spec `12`).
fn shown(text: &str) -> String {
    let quoted = format!("'{text}'");
    let count = quoted.chars().count();
    if count <= 120 {
        return quoted;
    }
    let head: String = quoted.chars().take(60).collect();
    let tail: String = quoted.chars().skip(count - 60).collect();
    format!("{head}...{tail} ({} characters)", text.chars().count())
}

/// Every failure the core can report.
///
/// Mapping onto `spec/12-errors.md` (done by the Python crate):
/// `InvalidPath` → `InvalidPathError`, `InvalidContract` → `InvalidContractError`,
/// `ContractViolation` → `ContractViolationError`, `Context` → `ContextError`,
/// `KeyMissing` → `KeyError`/`AttributeError`, `IndexOutOfRange` → `IndexError`,
/// `NotAContainer` → `TypeError` (view operations) or `ContextError` (writes by path),
/// `Conflict` → `ConflictError`, `Type` → `TypeError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A malformed dotted path (`02`).
    #[error("invalid path {}: {detail}", shown(path))]
    InvalidPath {
        /// The text as given.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A malformed pattern or a contract forbidden by its semantic (`02`, `04`).
    #[error("invalid contract pattern {pattern:?}: {detail}")]
    InvalidContract {
        /// The pattern as given.
        pattern: String,
        /// What is wrong, naming the process and the argument when known.
        detail: String,
    },
    /// A read or write outside the contract, or a broken zone or semantic rule (`03`, `04`).
    #[error("contract violation at '{path}': {detail}")]
    ContractViolation {
        /// The path that was accessed.
        path: Path,
        /// Why it was refused and what to do instead.
        detail: String,
    },
    /// A misuse of the context tree: an invalid key, a write below a heavy value, … (`01`, `03`).
    #[error("context error at '{path}': {detail}")]
    Context {
        /// The path concerned.
        path: Path,
        /// What went wrong.
        detail: String,
    },
    /// A key (or a whole intermediate container) that does not exist.
    #[error("key missing: '{path}'")]
    KeyMissing {
        /// The first missing path.
        path: Path,
    },
    /// A list index at or beyond the list's length.
    #[error("index out of range: '{path}' (the list has {len} items)")]
    IndexOutOfRange {
        /// The path of the element.
        path: Path,
        /// The list's length.
        len: usize,
    },
    /// A key lookup or write below a value that is not a container (or a non-index on a list).
    #[error("not a container: '{path}': {detail}")]
    NotAContainer {
        /// The path that could not be reached.
        path: Path,
        /// What was found instead.
        detail: String,
    },
    /// An optimistic commit lost (`05`).
    #[error("{detail}")]
    Conflict {
        /// The intervening write that collided, when there is one.
        path: Option<Path>,
        /// Versions involved and why.
        detail: String,
    },
    /// A value of the wrong kind (a namespace that is not a map, …).
    #[error("{detail}")]
    Type {
        /// What was expected.
        detail: String,
    },
    /// A re-entrant commit: the calling thread already holds the engine's commit lock (a
    /// signal handler or destructor inside a commit, or an open exclusive transaction) (`05`).
    #[error("{detail}")]
    Nested {
        /// What was re-entered.
        detail: String,
    },
    /// The store was closed; nothing was committed.
    #[error("this TheusEngine is closed; nothing was committed")]
    Closed,
}
