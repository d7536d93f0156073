//! The engine's side of the commit pipeline (spec `15`): which hooks the Python pipeline has,
//! the `changes` handed to them, and the ordered hand-over of landed commits.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use pyo3::exceptions::PyException;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFrozenSet, PyString, PyTuple, PyType};
use theus_core::{Change, Path, Transaction};

use crate::convert::wrap;
use crate::engine::Engine;
use crate::{api, Leaf};

/// The `before_commit` hooks (none: `None`) and the native plan of the only one, if any.
type Before = (Option<Py<PyTuple>>, Option<Arc<Plan>>);

/// What the pipeline needs from this engine's commits, as last told by its `watch` callback.
#[derive(Default)]
pub(crate) struct Hooks {
    /// The `before_commit` hooks, in order (none: `None`), and the native plan of the only
    /// one when it has one; replaced together. Cloned out before any call.
    hooks: Mutex<Before>,
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
        self.hooks.lock().0.as_ref().map(|t| t.clone_ref(py))
    }

    /// The native plan of the only `before_commit` hook, if it has one (spec `15`, `16`).
    pub(crate) fn plan(&self) -> Option<Arc<Plan>> {
        if !self.has_before() {
            return None;
        }
        self.hooks.lock().1.clone()
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
        let plan = match before.len() {
            1 => Plan::of(&before.get_item(0)?)?.map(Arc::new),
            _ => None,
        };
        let fresh = (has_before.then(|| before.clone().unbind()), plan);
        let replaced = std::mem::replace(&mut *self.hooks.hooks.lock(), fresh);
        drop(replaced); // outside the mutex
        self.hooks.always.store(has("always")?, Ordering::Release);
        self.hooks.signals.store(has("signals")?, Ordering::Release);
        self.hooks.outbox.store(has("outbox")?, Ordering::Release);
        self.hooks.before.store(has_before, Ordering::Release);
        Ok(())
    }
}

/// The resolved validators a [`Plan`] keeps at most (then it starts afresh), as the schema
/// stage's own cache (spec `16`).
const PLAN_LIMIT: usize = 4096;

/// A `before_commit` stage's native plan (spec `15`; the schema stage's, spec `16`, Native
/// plan): its live table `{path tuple: validator}`, the validators already found in it by
/// path, and the class of the failures that send a commit to the full `before_commit`.
pub(crate) struct Plan {
    table: Py<PyDict>,
    invalid: Py<PyType>,
    /// `("strict",)`: the keyword names of every validator call (`validator(value, strict=True)`).
    strict: Py<PyTuple>,
    /// Found in `table`. A path maps to one validator for the life of the stage, so this
    /// stays right when the stage clears its table; bounded by [`PLAN_LIMIT`].
    found: Mutex<HashMap<Path, Py<PyAny>, foldhash::fast::RandomState>>,
}

/// What [`Plan::check`] found.
pub(crate) enum Verdict {
    /// Every change validated: the commit goes on without `before_commit`.
    Passed,
    /// A change the plan cannot check, or a validator failed: call `before_commit`.
    Full,
}

impl Plan {
    /// The plan of `hook` (a bound `before_commit`) when its stage offers one.
    fn of(hook: &Bound<'_, PyAny>) -> PyResult<Option<Plan>> {
        let py = hook.py();
        if !hook.hasattr(intern!(py, "__self__"))? {
            return Ok(None);
        }
        let stage = hook.getattr(intern!(py, "__self__"))?;
        if !stage.hasattr(intern!(py, "native_plan"))? {
            return Ok(None);
        }
        let offered = stage.call_method0(intern!(py, "native_plan"))?;
        if offered.is_none() {
            return Ok(None);
        }
        let (table, invalid): (Bound<'_, PyDict>, Bound<'_, PyType>) = offered.extract()?;
        Ok(Some(Plan {
            table: table.unbind(),
            invalid: invalid.unbind(),
            strict: PyTuple::new(py, [intern!(py, "strict")])?.unbind(),
            found: Mutex::new(HashMap::default()),
        }))
    }

    /// The validator of `path`, if the plan has one now.
    fn validator(&self, py: Python<'_>, path: &Path) -> PyResult<Option<Py<PyAny>>> {
        if let Some(found) = self.found.lock().get(path) {
            return Ok(Some(found.clone_ref(py)));
        }
        // (a dict lookup by a tuple of `str`: no user code runs)
        let Some(found) = self.table.bind(py).get_item(path_tuple(py, path)?)? else {
            return Ok(None);
        };
        let evicted = {
            let mut map = self.found.lock();
            let evicted = if map.len() >= PLAN_LIMIT {
                std::mem::take(&mut *map)
            } else {
                HashMap::default()
            };
            map.insert(path.clone(), found.clone().unbind());
            evicted
        };
        drop(evicted); // outside the mutex
        Ok(Some(found.unbind()))
    }

    /// Check `sets` (path, value as `changes` would carry it), in order, with the plan's
    /// validators (user code: no lock of ours may be held). `Err` is an exception that rejects
    /// the commit as `before_commit` would have raised it.
    pub(crate) fn check(&self, py: Python<'_>, sets: &[(Path, Py<PyAny>)]) -> PyResult<Verdict> {
        let mut validators = Vec::with_capacity(sets.len());
        for (path, _) in sets {
            match self.validator(py, path)? {
                Some(v) => validators.push(v),
                None => return Ok(Verdict::Full),
            }
        }
        for ((_, value), validator) in sets.iter().zip(validators) {
            if let Err(err) = self.call(py, &validator, value) {
                if err.is_instance(py, self.invalid.bind(py)) {
                    return Ok(Verdict::Full);
                }
                return Err(err);
            }
        }
        Ok(Verdict::Passed)
    }

    /// `validator(value, strict=True)`, by vectorcall (no kwargs dict per call).
    fn call(&self, py: Python<'_>, validator: &Py<PyAny>, value: &Py<PyAny>) -> PyResult<()> {
        let yes = PyBool::new(py, true);
        let args = [value.as_ptr(), yes.as_ptr()];
        // SAFETY: `validator`, the two arguments and the keyword-names tuple (one name for the
        // one argument after the positional one) are valid objects kept alive for the call;
        // the result is a new reference, or NULL with an exception set.
        let result = unsafe {
            let ptr = ffi::PyObject_Vectorcall(
                validator.as_ptr(),
                args.as_ptr(),
                1,
                self.strict.as_ptr(),
            );
            Bound::from_owned_ptr_or_err(py, ptr)
        };
        result.map(drop)
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
