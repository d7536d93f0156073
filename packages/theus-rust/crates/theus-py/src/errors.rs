//! Core errors as the Python exceptions of `spec/12-errors.md` (the classes of `theus.errors`).

use pyo3::exceptions::{PyAttributeError, PyIndexError, PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyType;
use theus_core::{Error, Path};

use crate::api;

fn raise(py: Python<'_>, ty: &Py<PyType>, msg: String) -> PyErr {
    PyErr::from_type(ty.bind(py).clone(), (msg,))
}

/// `ContextError(msg)`.
pub(crate) fn context_error(py: Python<'_>, msg: String) -> PyErr {
    raise(py, &api(py).context_error, msg)
}

/// `DepthLimitError(msg)` (spec `01`: too deep, or a value containing itself).
pub(crate) fn depth_limit(py: Python<'_>, msg: String) -> PyErr {
    raise(py, &api(py).depth_limit_error, msg)
}

/// `ConflictError(msg)`.
pub(crate) fn conflict_error(py: Python<'_>, msg: String) -> PyErr {
    raise(py, &api(py).conflict_error, msg)
}

/// `InvalidContractError(msg)`.
pub(crate) fn invalid_contract(py: Python<'_>, msg: String) -> PyErr {
    raise(py, &api(py).invalid_contract_error, msg)
}

/// `InvalidPathError(msg)`.
pub(crate) fn invalid_path(py: Python<'_>, msg: String) -> PyErr {
    raise(py, &api(py).invalid_path_error, msg)
}

/// The error for using a view or context after its transaction ended (spec `04`).
pub(crate) fn ended(py: Python<'_>) -> PyErr {
    context_error(
        py,
        "this context belongs to a transaction that has ended; views cannot be used after \
         their process returns"
            .into(),
    )
}

/// The error for mutating a snapshot or one of its views (spec `01`).
pub(crate) fn read_only(py: Python<'_>, path: &str, what: &str) -> PyErr {
    context_error(
        py,
        format!(
            "cannot {what} '{path}': snapshots are immutable. Write it from a @process with \
             '{path}' in outputs=[...], or with engine.transaction()"
        ),
    )
}

/// How a [`Error::NotAContainer`] surfaces: a `TypeError` for operations on a view, a
/// `ContextError` for writes by dotted path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    TypeError,
    ContextError,
}

/// Map a core error onto its Python exception.
pub(crate) fn to_py(py: Python<'_>, err: Error, shape: Shape) -> PyErr {
    let a = api(py);
    match err {
        Error::InvalidPath { .. } => raise(py, &a.invalid_path_error, err.to_string()),
        Error::InvalidContract { .. } => raise(py, &a.invalid_contract_error, err.to_string()),
        Error::ContractViolation { detail, .. } => raise(py, &a.contract_violation_error, detail),
        Error::Context { detail, .. } => raise(py, &a.context_error, detail),
        Error::KeyMissing { path } => PyKeyError::new_err(format!("no value at '{path}'")),
        Error::IndexOutOfRange { path, len } => PyIndexError::new_err(format!(
            "list index out of range: '{path}' (the list has {len} items)"
        )),
        Error::NotAContainer { path, detail } => match shape {
            Shape::TypeError => PyTypeError::new_err(format!("'{path}': {detail}")),
            Shape::ContextError => raise(
                py,
                &a.context_error,
                format!("cannot write below '{path}': {detail}"),
            ),
        },
        Error::Conflict { .. } => raise(py, &a.conflict_error, err.to_string()),
        Error::Type { detail } => PyTypeError::new_err(detail),
        Error::Nested { detail } => raise(py, &a.nested_execution_error, detail),
        Error::Closed => raise(py, &a.context_error, err.to_string()),
        other => raise(py, &a.theus_error, other.to_string()),
    }
}

/// The error for a missing key read through a view: `AttributeError` for `view.key`,
/// `KeyError(key)` for `view["key"]`.
pub(crate) fn missing_key(parent: &Path, key: &str, attr: bool) -> PyErr {
    if attr {
        PyAttributeError::new_err(format!("no key '{key}' at '{parent}'"))
    } else {
        PyKeyError::new_err(key.to_owned())
    }
}
