//! The engine's side of the commit pipeline (spec `15`): which hooks the Python pipeline has,
//! the `changes` handed to them, and the ordered hand-over of landed commits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFrozenSet, PyList, PyString, PyTuple};
use theus_core::{Change, Path, Transaction};

use crate::convert::wrap;
use crate::{api, Leaf};

/// What the pipeline needs from this engine's commits, as last told by its `watch` callback.
#[derive(Default)]
pub(crate) struct Hooks {
    before: AtomicBool,
    always: AtomicBool,
    signals: AtomicBool,
    outbox: AtomicBool,
}

impl Hooks {
    /// Whether `before_commit` hooks must be called.
    #[inline]
    pub(crate) fn has_before(&self) -> bool {
        self.before.load(Ordering::Acquire)
    }

    /// Whether a commit carrying `signals` / `outbox` messages must be handed over.
    #[inline]
    pub(crate) fn wants(&self, signals: bool, outbox: bool) -> bool {
        self.always.load(Ordering::Acquire)
            || (signals && self.signals.load(Ordering::Acquire))
            || (outbox && self.outbox.load(Ordering::Acquire))
    }
}

/// The callback `CommitPipeline.watch` calls with `(has_before, after_wants)`.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct Watcher {
    pub(crate) hooks: Arc<Hooks>,
}

#[pymethods]
impl Watcher {
    fn __call__(&self, has_before: bool, wants: &Bound<'_, PyFrozenSet>) -> PyResult<()> {
        let has = |name: &str| wants.contains(name);
        self.hooks.always.store(has("always")?, Ordering::Release);
        self.hooks.signals.store(has("signals")?, Ordering::Release);
        self.hooks.outbox.store(has("outbox")?, Ordering::Release);
        self.hooks.before.store(has_before, Ordering::Release);
        Ok(())
    }
}

fn path_tuple<'py>(py: Python<'py>, path: &Path) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, path.segments().iter().map(|s| PyString::new(py, s)))
}

/// `theus.pipeline.Changes` for `txn`: its tree changes sorted by path, then its signals.
pub(crate) fn build_changes(
    py: Python<'_>,
    txn: &Transaction<Leaf>,
    process: Option<&Py<PyAny>>,
    base: Py<PyAny>,
    outbox: Option<&Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let a = api(py);
    let change = a.change.bind(py);
    let items = PyList::empty(py);
    for entry in txn.changes() {
        let item = match entry {
            Change::Set(path, value) => {
                let v = wrap(py, &value, path.clone())?;
                change.call1((intern!(py, "set"), path_tuple(py, &path)?, v))?
            }
            Change::Delete(path) => {
                change.call1((intern!(py, "delete"), path_tuple(py, &path)?, py.None()))?
            }
            Change::Append(path, added) => {
                let start = txn
                    .peek(&path)
                    .and_then(|v| v.as_list())
                    .map_or(0, |l| l.len() - added.len());
                let mut values = Vec::with_capacity(added.len());
                for (i, value) in added.iter().enumerate() {
                    let at = path
                        .child((start + i).to_string())
                        .unwrap_or_else(|_| path.clone());
                    values.push(wrap(py, value, at)?);
                }
                change.call1((
                    intern!(py, "append"),
                    path_tuple(py, &path)?,
                    PyTuple::new(py, values)?,
                ))?
            }
        };
        items.append(item)?;
    }
    for (path, value) in txn.signals() {
        items.append(change.call1((intern!(py, "set"), path_tuple(py, path)?, value.bind(py)))?)?;
    }
    let process = process.map_or_else(|| py.None(), |p| p.clone_ref(py));
    let outbox = outbox.map_or_else(|| PyTuple::empty(py).into_any().unbind(), |o| o.clone_ref(py));
    Ok(a.changes.bind(py).call1((items, process, base, outbox))?.unbind())
}

/// Hand a landed commit (ticket reserved under the commit lock) to the pipeline, then run
/// the `after_commit` hooks in commit order. The ticket is always handed over (an interrupt
/// while handing it over is retried, then re-raised), so later commits never wait for it.
/// Exceptions other than interrupts are logged: the commit landed.
pub(crate) fn hand_over(
    py: Python<'_>,
    pipeline: &Bound<'_, PyAny>,
    ticket: u64,
    snapshot: PyResult<Py<PyAny>>,
    changes: Py<PyAny>,
) -> PyResult<()> {
    let mut interrupt: Option<PyErr> = None;
    let mut snapshot = snapshot.unwrap_or_else(|_| py.None());
    for _ in 0..16 {
        match pipeline.call_method1(intern!(py, "enqueue"), (&snapshot, &changes, ticket)) {
            Ok(_) => break,
            Err(e) if e.is_instance_of::<PyException>(py) => {
                crate::tx::log_after_commit(
                    py,
                    format!("a commit's after_commit hooks could not be queued: {e}"),
                    &e,
                );
                snapshot = py.None(); // skip it, but hand the ticket over
            }
            Err(e) => {
                interrupt.get_or_insert(e);
            }
        }
    }
    if let Err(e) = pipeline.call_method1(intern!(py, "drain"), (ticket,)) {
        if e.is_instance_of::<PyException>(py) {
            crate::tx::log_after_commit(py, format!("after_commit hooks failed: {e}"), &e);
        } else {
            interrupt.get_or_insert(e);
        }
    }
    match interrupt {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
