//! The engine's side of the commit pipeline (spec `15`): which hooks the Python pipeline has,
//! the `changes` handed to them, and the ordered hand-over of landed commits.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFrozenSet, PyString, PyTuple};
use theus_core::{Change, Path, Transaction};

use crate::convert::wrap;
use crate::engine::Engine;
use crate::{api, Leaf};

/// What the pipeline needs from this engine's commits, as last told by its `watch` callback.
#[derive(Default)]
pub(crate) struct Hooks {
    /// The `before_commit` hooks, in order (none: `None`). Cloned out before any call.
    hooks: Mutex<Option<Py<PyTuple>>>,
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

    /// The `before_commit` hooks to call, if any.
    pub(crate) fn before(&self, py: Python<'_>) -> Option<Py<PyTuple>> {
        if !self.has_before() {
            return None;
        }
        self.hooks.lock().as_ref().map(|t| t.clone_ref(py))
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
    /// `before`: the tuple of `before_commit` hooks; `wants`: the set of `Stage.wants` of the
    /// `after_commit` stages.
    fn __call__(
        &self,
        before: &Bound<'_, PyTuple>,
        wants: &Bound<'_, PyFrozenSet>,
    ) -> PyResult<()> {
        let has = |name: &str| wants.contains(name);
        let has_before = !before.is_empty();
        let fresh = has_before.then(|| before.clone().unbind());
        let replaced = std::mem::replace(&mut *self.hooks.hooks.lock(), fresh);
        drop(replaced); // outside the mutex
        self.hooks.always.store(has("always")?, Ordering::Release);
        self.hooks.signals.store(has("signals")?, Ordering::Release);
        self.hooks.outbox.store(has("outbox")?, Ordering::Release);
        self.hooks.before.store(has_before, Ordering::Release);
        Ok(())
    }
}

/// `Changes.base`, made into the snapshot object only if a stage asks for it.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct BaseRef {
    pub(crate) engine: Py<Engine>,
    pub(crate) snap: Arc<theus_core::Snapshot<Leaf>>,
}

#[pymethods]
impl BaseRef {
    fn __call__(&self, py: Python<'_>) -> PyResult<Py<crate::snapshot::Snapshot>> {
        self.engine
            .get()
            .snapshot_object(py, Arc::clone(&self.snap))
    }
}

/// The path as a tuple of interned strings (their hashes are computed once, so a stage's dict
/// lookups by path stay cheap).
fn path_tuple<'py>(py: Python<'py>, path: &Path) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, path.segments().iter().map(|s| PyString::intern(py, s)))
}

/// `theus.pipeline.Changes` for `txn`: its tree changes sorted by path, then its signals.
pub(crate) fn build_changes<'py>(
    py: Python<'py>,
    txn: &Transaction<Leaf>,
    process: Option<&Py<PyAny>>,
    base: BaseRef,
    outbox: Option<&Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let a = api(py);
    let cls = a.change.bind(py);
    let new = a.tuple_new.bind(py);
    // `tuple.__new__(Change, (kind, path, value))`: the namedtuple without its Python `__new__`
    let change = |kind: &Bound<'py, PyString>,
                  path: Bound<'py, PyTuple>,
                  value: Py<PyAny>|
     -> PyResult<Bound<'py, PyAny>> { new.call1((cls, (kind, path, value))) };
    let mut items: Vec<Bound<'py, PyAny>> = Vec::new();
    for entry in txn.changes() {
        let item = match entry {
            Change::Set(path, value) => {
                let v = wrap(py, &value, path.clone())?;
                change(intern!(py, "set"), path_tuple(py, &path)?, v)?
            }
            Change::Delete(path) => {
                change(intern!(py, "delete"), path_tuple(py, &path)?, py.None())?
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
                let values = PyTuple::new(py, values)?.into_any().unbind();
                change(intern!(py, "append"), path_tuple(py, &path)?, values)?
            }
        };
        items.push(item);
    }
    for (path, value) in txn.signals() {
        items.push(change(
            intern!(py, "set"),
            path_tuple(py, path)?,
            value.get(py),
        )?);
    }
    let process = process.map_or_else(|| py.None(), |p| p.clone_ref(py));
    let outbox = outbox.map_or_else(
        || PyTuple::empty(py).into_any().unbind(),
        |o| o.clone_ref(py),
    );
    // `Changes` without its Python `__init__`: `object.__new__` and its four slots
    let out = a.object_new.bind(py).call1((a.changes.bind(py),))?;
    out.setattr(intern!(py, "_items"), PyTuple::new(py, items)?)?;
    out.setattr(intern!(py, "process"), process)?;
    out.setattr(intern!(py, "_base"), py.None())?;
    out.setattr(intern!(py, "_base_fn"), Py::new(py, base)?)?;
    out.setattr(intern!(py, "outbox"), outbox)?;
    Ok(out.unbind())
}

thread_local! {
    /// Pipeline tickets this thread reserved and has not handed over yet.
    static RESERVED: Cell<usize> = const { Cell::new(0) };
}

/// Note a ticket reserved under the commit lock by this thread (see [`hand_over`]).
pub(crate) fn reserve() {
    RESERVED.with(|r| r.set(r.get() + 1));
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
    RESERVED.with(|r| r.set(r.get() - 1));
    if RESERVED.with(Cell::get) > 0 {
        // This thread is inside code that runs between its own earlier commit and that
        // commit's hand-over (a signal handler or destructor): waiting here for the earlier
        // ticket would wait for ourselves. That commit's drain dispatches this one too.
        return interrupt.map_or(Ok(()), Err);
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
