//! `Tx` (the `TxCore` protocol: one attempt of a process, or a host transaction) and `Ctx` (the
//! object a process receives).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use pyo3::exceptions::{PyAttributeError, PyException, PyIndexError, PyKeyError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use theus_core::{
    Change, CommitGuard, Error, Lookup, Path, Store, Transaction, Value, WriteOp, Zone,
};

use crate::convert::freeze;
use crate::engine::Engine;
use crate::errors::{context_error, ended, invalid_path, to_py, Shape};
use crate::pipeline::{build_changes, hand_over, BaseRef, Verdict};
use crate::snapshot::{parse_path, Snapshot};
use crate::views::{guarded_view, is_own_view, set_path};
use crate::{api, Leaf};

/// A rebase or conflict check over more entries than this (reads + writes) runs with the GIL
/// released; smaller ones are quicker than the hand-over of the GIL.
const DETACH_WORK: usize = 256;

/// One transaction (spec `05`): a draft on a base snapshot, its read and write sets, and for an
/// exclusive one (the last re-run of a sync process) the engine's commit lock.
///
/// Its views may be used from several threads (spec `04`, views and threads): every operation
/// runs under `state`'s lock, taken by [`Tx::lock`] without blocking while attached to the
/// interpreter; `owner` tells a re-entrant use on the holding thread (`ContextError`) from
/// another thread's (which waits).
#[pyclass(module = "theus_rust._native", frozen)]
pub struct Tx {
    state: Mutex<TxState>,
    /// [`thread_token`] of the thread holding `state`, 0 when free.
    owner: AtomicUsize,
    open: AtomicBool,
    version: u64,
}

/// The mutable part of a [`Tx`], behind its lock.
pub(crate) struct TxState {
    txn: Option<Transaction<Leaf>>,
    guard: Option<CommitGuard<Leaf>>,
    engine: Py<Engine>,
    ctx: Option<Py<Ctx>>,
    /// The process name (`None` for a host transaction), for `Changes.process`.
    process: Option<Py<PyAny>>,
    /// The attempt's `theus.outbox.OutboxBuffer`, made on first use (spec `15`).
    outbox: Option<Py<PyAny>>,
    wrote: bool,
    open: bool,
}

/// A held [`Tx`] lock; releasing it clears the owner first.
pub(crate) struct TxLock<'a> {
    tx: &'a Tx,
    held: MutexGuard<'a, TxState>,
}

impl Deref for TxLock<'_> {
    type Target = TxState;
    fn deref(&self) -> &TxState {
        &self.held
    }
}

impl DerefMut for TxLock<'_> {
    fn deref_mut(&mut self) -> &mut TxState {
        &mut self.held
    }
}

impl Drop for TxLock<'_> {
    fn drop(&mut self) {
        // Runs before the `held` field is dropped: the owner is cleared while still locked.
        self.tx.owner.store(0, Ordering::Release);
    }
}

/// A number unique to the calling thread among live threads (never 0).
fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| t as *const u8 as usize)
}

impl Tx {
    /// Take the transaction's lock. Another thread's hold is waited for with the interpreter
    /// detached; the calling thread's own hold (a destructor or signal handler running in the
    /// middle of one of its operations) is `ContextError` (spec `04`).
    pub(crate) fn lock(&self, py: Python<'_>) -> PyResult<TxLock<'_>> {
        let me = thread_token();
        loop {
            let guard = match self.state.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    if self.owner.load(Ordering::Acquire) == me {
                        return Err(context_error(
                            py,
                            "the transaction is busy: one of its operations is in progress on \
                             this thread (a view used re-entrantly, from a destructor or a signal \
                             handler)"
                                .into(),
                        ));
                    }
                    py.detach(|| drop(self.state.lock()));
                    continue;
                }
            };
            self.owner.store(me, Ordering::Release);
            return Ok(TxLock {
                tx: self,
                held: guard,
            });
        }
    }
}

/// Take the engine's commit lock without ever blocking while attached to the interpreter.
/// `NestedExecutionError` at once if this thread already holds it (a signal handler or a
/// destructor running inside this thread's commit or exclusive transaction).
pub(crate) fn lock_commits(py: Python<'_>, store: &Store<Leaf>) -> PyResult<CommitGuard<Leaf>> {
    let nested = |e| to_py(py, e, Shape::ContextError);
    match store.try_lock_commits().map_err(nested)? {
        Some(guard) => Ok(guard),
        None => py.detach(|| store.lock_commits()).map_err(nested),
    }
}

/// Report a failure that happened after a commit landed (it must not make the call raise):
/// a warning on the `theus` logger, with the exception.
pub(crate) fn log_after_commit(py: Python<'_>, what: String, err: &PyErr) {
    let logged = (|| -> PyResult<()> {
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "exc_info"), err.value(py))?;
        api(py)
            .logger
            .bind(py)
            .call_method(intern!(py, "warning"), ("%s", what), Some(&kwargs))?;
        Ok(())
    })();
    if let Err(e) = logged {
        e.write_unraisable(py, None);
    }
}

/// Run `f` on the live transaction of `tx` (`ContextError` once it has ended).
pub(crate) fn with_tx<R>(
    py: Python<'_>,
    tx: &Py<Tx>,
    f: impl FnOnce(&mut Transaction<Leaf>) -> PyResult<R>,
) -> PyResult<R> {
    let mut me = tx.get().lock(py)?;
    if !me.open {
        return Err(ended(py));
    }
    match me.txn.as_mut() {
        Some(txn) => f(txn),
        None => Err(ended(py)),
    }
}

impl Tx {
    /// A new transaction of `engine`; `exclusive` takes the commit lock first (spec `05`).
    pub(crate) fn begin(
        py: Python<'_>,
        engine: &Bound<'_, Engine>,
        process: Option<(Arc<theus_core::Contract>, Py<PyAny>)>,
        exclusive: bool,
    ) -> PyResult<Py<Tx>> {
        let e = engine.get();
        let guard = match exclusive {
            true => Some(lock_commits(py, &e.store)?),
            false => None,
        };
        let (txn, name) = match process {
            Some((c, name)) => (e.store.begin(c, e.strict_guards), Some(name)),
            None => (e.store.begin_host(), None),
        };
        let process = name.is_some();
        let version = txn.version();
        let tx = Py::new(
            py,
            Tx {
                state: Mutex::new(TxState {
                    txn: Some(txn),
                    guard,
                    engine: engine.clone().unbind(),
                    ctx: None,
                    process: name,
                    outbox: None,
                    wrote: false,
                    open: true,
                }),
                owner: AtomicUsize::new(0),
                open: AtomicBool::new(true),
                version,
            },
        )?;
        if process {
            let ctx = Py::new(
                py,
                Ctx {
                    tx: tx.clone_ref(py),
                    local: OnceLock::new(),
                    domain: OnceLock::new(),
                    global: OnceLock::new(),
                    version,
                },
            )?;
            tx.get().lock(py)?.ctx = Some(ctx);
        }
        Ok(tx)
    }

    /// The `ctx` of a process transaction.
    pub(crate) fn ctx_of(py: Python<'_>, tx: &Py<Tx>) -> Option<Py<Ctx>> {
        let me = tx.get().lock(py).ok()?;
        me.ctx.as_ref().map(|c| c.clone_ref(py))
    }

    /// Whether the transaction is still open (no lock taken).
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Commit (spec `05`) through the engine's pipeline (spec `15`): build `changes` if a
    /// hook needs them and run the `before_commit` hooks (no lock held; a hook that raises
    /// rejects the commit), or, when the only hook is the schema stage's and the commit is
    /// plain sets of paths in its native plan, call their validators instead (spec `16`); take the commit lock (unless held since an exclusive begin), check
    /// conflicts and rebase (detached from the interpreter when large), install, publish the
    /// signals on a native hub, reserve the commit's pipeline ticket. Then release the lock,
    /// free what the commit replaced, and hand the commit to the `after_commit` hooks.
    ///
    /// Once the commit landed nothing makes this raise (spec `08`, `15`): failures are logged
    /// on the `theus` logger. Only an interrupt (a `BaseException` that is not an `Exception`,
    /// e.g. `KeyboardInterrupt`) is re-raised, after the publication and the hooks ran.
    pub(crate) fn commit_inner(
        slf: &Bound<'_, Tx>,
        strict: bool,
    ) -> PyResult<Arc<theus_core::Snapshot<Leaf>>> {
        let py = slf.py();
        let mut me = slf.get().lock(py)?;
        Tx::committable(py, &me)?;
        let engine_py = me.engine.clone_ref(py);
        let engine = engine_py.get();
        let hooks = &engine.hooks;
        let (quiet, plan) = {
            let txn = me.txn.as_ref().expect("checked");
            let unwanted = me.outbox.is_none()
                && !(txn.has_changes() && hooks.wants(!txn.signals().is_empty(), false));
            match (unwanted, hooks.has_before()) {
                (true, false) => (true, None),
                (true, true) if txn.has_changes() => (false, hooks.plan()),
                _ => (false, None),
            }
        };
        // The only `before_commit` hook offers a native plan (the schema stage, spec `16`):
        // a commit made only of plain sets of planned paths is checked by calling their
        // validators, with no lock of ours held; `changes` and the hook are not needed.
        let checked = match plan {
            Some(plan) => {
                let sets = Tx::plain_sets(py, &me);
                drop(me);
                let verdict = match sets {
                    Some(sets) => plan.check(py, &sets)?, // may reject: nothing has landed
                    None => Verdict::Full,
                };
                drop(plan);
                me = slf.get().lock(py)?;
                Tx::committable(py, &me)?;
                matches!(verdict, Verdict::Passed)
            }
            None => false,
        };
        // Without an outbox buffer and a hook that needs this commit (the usual case), the
        // commit goes straight on under the same lock: no Python call, no `changes`.
        let (changes, wants, outbox) = if quiet || checked {
            (None, false, None)
        } else {
            drop(me);
            let prepared = Tx::prepare(slf, engine)?;
            me = slf.get().lock(py)?;
            Tx::committable(py, &me)?;
            prepared
        };
        let strict = strict || engine.strict_cas;
        let mut own = match me.guard {
            Some(_) => None,
            None => Some(lock_commits(py, &engine.store)?),
        };
        let Some(mut txn) = me.txn.take() else {
            unreachable!("checked above");
        };
        if outbox.is_some() {
            txn.carry();
        }
        me.wrote = txn.wrote();
        let guard: &mut CommitGuard<Leaf> = match (me.guard.as_mut(), own.as_mut()) {
            (Some(held), _) => held,
            (None, Some(own)) => own,
            (None, None) => unreachable!("locked above"),
        };
        let behind = guard.current().version() != txn.version();
        let large = txn.read_count() + txn.writes().len() > DETACH_WORK;
        let result = if behind && large {
            py.detach(|| txn.commit_locked(guard, strict))
        } else {
            txn.commit_locked(guard, strict)
        };
        let committed = result.map_err(|e| to_py(py, e, Shape::ContextError))?;
        let mut interrupt = None;
        // A native hub takes the signals without any Python code (see `Hub::publish_signals`;
        // a full `block` receiver makes it wait, GIL released; after an interrupt it publishes
        // the other signals, then returns the interrupt). Another hub is the pipeline's
        // signal stage's business.
        if let Some(hub) = engine.native_hub.as_ref() {
            if committed.is_new_version() && !committed.signals().is_empty() {
                let version = committed.snapshot().version();
                match hub.get().publish_signals(py, committed.signals(), version) {
                    Ok(_) => {}
                    Err(err) if err.is_instance_of::<PyException>(py) => log_after_commit(
                        py,
                        format!(
                            "version {version} was committed, but its signals could not all be \
                             published: {err}"
                        ),
                        &err,
                    ),
                    Err(err) => interrupt = Some(err),
                }
            }
        }
        // The pipeline ticket is reserved here, in commit order; handed over after the lock.
        let ticket = match (&changes, wants && committed.is_new_version()) {
            (Some(_), true) => {
                crate::pipeline::reserve();
                Some(engine.tickets.fetch_add(1, Ordering::AcqRel) + 1)
            }
            _ => None,
        };
        let snapshot = committed.into_snapshot();
        let held = me.guard.take(); // an exclusive transaction's hold ends with its commit
        drop(me);
        drop(own); // releases the lock, then frees what the commit replaced
        drop(held);
        engine.forget_older(snapshot.version());
        if let (Some(ticket), Some(changes)) = (ticket, changes) {
            let object = engine
                .snapshot_object(py, Arc::clone(&snapshot))
                .map(Py::into_any);
            if let Err(err) = hand_over(py, engine.pipeline.bind(py), ticket, object, changes) {
                interrupt.get_or_insert(err);
            }
        }
        match interrupt {
            Some(err) => Err(err),
            None => Ok(snapshot),
        }
    }

    /// The pipeline's part before the commit (spec `15`), with no lock of ours held: the
    /// outbox messages, `changes` if a hook needs them, the `before_commit` hooks (user code:
    /// validators). Returns the changes, whether `after_commit` hooks want the commit, and the
    /// outbox messages.
    #[allow(clippy::type_complexity)]
    fn prepare(
        slf: &Bound<'_, Tx>,
        engine: &Engine,
    ) -> PyResult<(Option<Py<PyAny>>, bool, Option<Py<PyAny>>)> {
        let py = slf.py();
        let buffer = slf.get().lock(py)?.outbox.as_ref().map(|o| o.clone_ref(py));
        let outbox = match buffer {
            Some(buffer) => {
                let messages = buffer.bind(py).getattr(intern!(py, "messages"))?;
                (messages.len()? > 0).then(|| messages.unbind())
            }
            None => None,
        };
        let before = engine.hooks.before(py);
        let (changes, wants) = {
            let me = slf.get().lock(py)?;
            Tx::committable(py, &me)?;
            let txn = me.txn.as_ref().expect("checked");
            let landing = txn.has_changes() || outbox.is_some();
            let wants = landing
                && engine
                    .hooks
                    .wants(!txn.signals().is_empty(), outbox.is_some());
            let changes = if landing && (before.is_some() || wants) {
                let base = BaseRef {
                    engine: me.engine.clone_ref(py),
                    snap: Arc::clone(txn.base()),
                };
                let process = me.process.as_ref();
                Some(build_changes(py, txn, process, base, outbox.as_ref())?)
            } else {
                None
            };
            (changes, wants)
        };
        if let (Some(hooks), Some(changes)) = (before, changes.as_ref()) {
            for hook in hooks.bind(py).iter() {
                hook.call1((changes,))?; // may reject: nothing has landed
            }
        }
        Ok((changes, wants, outbox))
    }

    /// The commit's changes as `(path, value)` when every one (tree changes, then signals) is
    /// a `set` of a leaf value (not a map or a list), else `None` (spec `16`, Native plan).
    fn plain_sets(py: Python<'_>, me: &TxLock<'_>) -> Option<Vec<(Path, Py<PyAny>)>> {
        let txn = me.txn.as_ref()?;
        let changes = txn.changes();
        let mut sets = Vec::with_capacity(changes.len() + txn.signals().len());
        for change in changes {
            match change {
                Change::Set(path, Value::Leaf(leaf)) => sets.push((path, leaf.get(py))),
                _ => return None,
            }
        }
        for (path, value) in txn.signals() {
            sets.push((path.clone(), value.get(py)));
        }
        Some(sets)
    }

    /// `ContextError` unless the transaction is open and not yet committed.
    fn committable(py: Python<'_>, me: &TxLock<'_>) -> PyResult<()> {
        if !me.open {
            return Err(ended(py));
        }
        if me.txn.is_none() {
            return Err(context_error(
                py,
                "this transaction has already been committed".into(),
            ));
        }
        Ok(())
    }

    /// Whether the attempt wrote in place (spec `06`, rule 2).
    pub(crate) fn wrote_in_place(py: Python<'_>, tx: &Py<Tx>) -> PyResult<bool> {
        let me = tx.get().lock(py)?;
        Ok(me.txn.as_ref().map_or(me.wrote, |t| t.wrote()))
    }

    /// The attempt's outbox buffer (made on first use).
    pub(crate) fn outbox_of(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        {
            let me = self.lock(py)?;
            if !me.open {
                return Err(ended(py));
            }
            if let Some(outbox) = me.outbox.as_ref() {
                return Ok(outbox.clone_ref(py));
            }
        }
        let fresh = api(py).outbox_buffer.bind(py).call0()?.unbind(); // no lock held
        let mut me = self.lock(py)?;
        Ok(me.outbox.get_or_insert(fresh).clone_ref(py))
    }

    /// End the transaction: drop the draft, release an exclusive lock, break the ctx cycle.
    /// The draft and the ctx are dropped after the transaction's lock is released (their
    /// destructors may be user code). From inside one of its own operations (a destructor) the
    /// transaction is only marked closed; the rest is freed with it.
    pub(crate) fn close_inner(&self, py: Python<'_>) {
        self.open.store(false, Ordering::Release);
        let Ok(mut me) = self.lock(py) else {
            return;
        };
        me.open = false;
        let guard = me.guard.take();
        let txn = me.txn.take();
        let ctx = me.ctx.take();
        let outbox = me.outbox.take();
        drop(me);
        drop(guard);
        drop(txn);
        drop(ctx);
        drop(outbox);
    }

    fn apply_set(
        py: Python<'_>,
        tx: &Py<Tx>,
        path: &Path,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        set_path(py, tx, path, value, false)
    }

    fn apply_delete(py: Python<'_>, tx: &Py<Tx>, path: &Path) -> PyResult<()> {
        with_tx(py, tx, |txn| match txn.delete(path) {
            Ok(_) => Ok(()),
            Err(Error::IndexOutOfRange { len, .. }) => Err(PyIndexError::new_err(format!(
                "cannot delete '{path}': no such item (the list has {len} items)"
            ))),
            Err(Error::KeyMissing { .. } | Error::NotAContainer { .. }) => Err(
                PyKeyError::new_err(format!("cannot delete '{path}': no such key")),
            ),
            Err(e) => Err(to_py(py, e, Shape::ContextError)),
        })
    }

    fn apply_append(
        py: Python<'_>,
        tx: &Py<Tx>,
        path: &Path,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (zone, len) = with_tx(py, tx, |txn| {
            let zone = txn
                .check_write(path, WriteOp::Append)
                .map_err(|e| to_py(py, e, Shape::TypeError))?;
            match txn.peek(path) {
                Some(Value::List(l)) => Ok((zone, l.len())),
                Some(_) => Err(PyTypeError::new_err(format!(
                    "cannot append to '{path}': it is not a list"
                ))),
                None => Err(PyKeyError::new_err(format!(
                    "cannot append to '{path}': no such list"
                ))),
            }
        })?;
        let at = path.child(len.to_string()).unwrap_or_else(|_| path.clone());
        let stored = if zone == Zone::Heavy {
            Value::Leaf(Leaf::new(value.clone().unbind()))
        } else {
            freeze(py, value, &at, zone, Some(tx))?
        };
        with_tx(py, tx, |txn| {
            txn.append(path, stored)
                .map_err(|e| to_py(py, e, Shape::TypeError))
        })
    }
}

#[pymethods]
impl Tx {
    /// The object passed to the process (`None` for a host transaction).
    #[getter]
    fn ctx(&self, py: Python<'_>) -> PyResult<Option<Py<Ctx>>> {
        Ok(self.lock(py)?.ctx.as_ref().map(|c| c.clone_ref(py)))
    }

    /// The base version.
    #[getter]
    fn version(&self) -> u64 {
        self.version
    }

    /// The attempt's outbox (spec `15`): `tx.outbox.add(topic, payload)`.
    #[getter]
    fn outbox(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.outbox_of(py)
    }

    /// Whether something was written in place during this attempt (spec `06`, rule 2).
    #[getter]
    fn wrote(&self, py: Python<'_>) -> PyResult<bool> {
        let me = self.lock(py)?;
        Ok(me.txn.as_ref().map_or(me.wrote, |t| t.wrote()))
    }

    /// Apply an `Update` (checked writes: contract, zones, semantic).
    pub(crate) fn apply(slf: &Bound<'_, Self>, update: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let tx = slf.clone().unbind();
        for op in update.getattr(intern!(py, "ops"))?.try_iter()? {
            let op = op?;
            let op = op.cast::<PyTuple>()?;
            let kind = op.get_item(0)?;
            let kind = kind.cast::<PyString>()?.to_str()?.to_owned();
            let segments = op.get_item(1)?;
            let value = op.get_item(2)?;
            let mut parts: Vec<Arc<str>> = Vec::new();
            for s in segments.try_iter()? {
                let s = s?;
                parts.push(s.cast::<PyString>()?.to_str()?.into());
            }
            let path = Path::from_segments(parts).map_err(|e| invalid_path(py, e.to_string()))?;
            match kind.as_str() {
                "set" => Tx::apply_set(py, &tx, &path, &value)?,
                "delete" => Tx::apply_delete(py, &tx, &path)?,
                "append" => Tx::apply_append(py, &tx, &path, &value)?,
                "map" => crate::views::ensure_map(py, &tx, &path)?,
                other => {
                    return Err(PyTypeError::new_err(format!(
                        "unknown update operation {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// A recorded read of the draft at a dotted path, or `default`.
    #[pyo3(signature = (path, default = None))]
    fn get(
        slf: &Bound<'_, Self>,
        path: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let path = parse_path(py, path)?;
        let tx = slf.clone().unbind();
        let found = with_tx(py, &tx, |txn| match txn.read(&path) {
            Ok(Lookup::Leaf(leaf)) => Ok(Some(leaf.get(py))),
            Ok(Lookup::Node(node)) => guarded_view(py, &tx, node).map(Some),
            Err(
                Error::KeyMissing { .. }
                | Error::NotAContainer { .. }
                | Error::IndexOutOfRange { .. }
                | Error::InvalidPath { .. },
            ) => Ok(None),
            Err(e) => Err(to_py(py, e, Shape::TypeError)),
        })?;
        Ok(found.unwrap_or_else(|| default.unwrap_or_else(|| py.None())))
    }

    /// Commit and return the new snapshot (`ConflictError` on conflict).
    #[pyo3(signature = (strict = false))]
    fn commit(slf: &Bound<'_, Self>, strict: bool) -> PyResult<Py<Snapshot>> {
        // (the engine first: nothing that can fail is left after the commit landed)
        let engine = slf.get().lock(slf.py())?.engine.clone_ref(slf.py());
        let snapshot = Tx::commit_inner(slf, strict)?;
        engine.get().snapshot_object(slf.py(), snapshot)
    }

    /// End the transaction: discard an uncommitted draft, invalidate views, release the
    /// commit lock of an exclusive transaction.
    fn close(&self, py: Python<'_>) {
        self.close_inner(py);
    }

    fn __repr__(&self) -> String {
        format!(
            "<Tx version={} {}>",
            self.version,
            if self.is_open() { "open" } else { "closed" }
        )
    }
}

/// `ctx`: the namespaces as guarded views of the draft, `local` scratch, `version`.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct Ctx {
    tx: Py<Tx>,
    local: OnceLock<Py<PyAny>>,
    /// `ctx.domain` / `ctx.global_`, made once per attempt: a guarded view re-resolves its
    /// container when the draft changes, so one view object serves every access.
    domain: OnceLock<Py<PyAny>>,
    global: OnceLock<Py<PyAny>>,
    version: u64,
}

impl Ctx {
    fn cached(
        &self,
        py: Python<'_>,
        slot: &OnceLock<Py<PyAny>>,
        name: &str,
    ) -> PyResult<Py<PyAny>> {
        if let Some(view) = slot.get() {
            if !self.tx.get().is_open() {
                return Err(crate::errors::ended(py));
            }
            return Ok(view.clone_ref(py));
        }
        let view = self.namespace(py, name, true)?;
        Ok(slot.get_or_init(|| view).clone_ref(py))
    }

    fn namespace(&self, py: Python<'_>, name: &str, attr: bool) -> PyResult<Py<PyAny>> {
        with_tx(py, &self.tx, |txn| {
            if !txn.draft().contains_key(name) {
                return Err(if attr {
                    PyAttributeError::new_err(format!("ctx has no namespace '{name}'"))
                } else {
                    PyKeyError::new_err(format!("no namespace '{name}'"))
                });
            }
            let root = txn.root_node();
            match txn.child(&root, name) {
                Ok(Lookup::Node(node)) => guarded_view(py, &self.tx, node),
                Ok(Lookup::Leaf(leaf)) => Ok(leaf.get(py)),
                Err(e) => Err(to_py(py, e, Shape::TypeError)),
            }
        })
    }
}

#[pymethods]
impl Ctx {
    /// The `domain` namespace (a guarded view).
    #[getter]
    fn domain(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.cached(py, &self.domain, "domain")
    }

    /// The `global` namespace (a guarded view).
    #[getter]
    fn global_(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.cached(py, &self.global, "global")
    }

    /// Scratch space for this attempt (spec `09`), a fresh `theus.local.Local`.
    #[getter]
    fn local(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(local) = self.local.get() {
            return Ok(local.clone_ref(py));
        }
        let fresh = api(py).local.bind(py).call0()?.unbind();
        Ok(self.local.get_or_init(|| fresh).clone_ref(py))
    }

    /// The base version of this transaction.
    #[getter]
    fn version(&self) -> u64 {
        self.version
    }

    /// This attempt's outbox: `ctx.outbox.add(topic, payload)` (spec `15`).
    #[getter]
    fn outbox(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.tx.get().outbox_of(py)
    }

    fn __getitem__(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match name.cast::<PyString>() {
            Ok(s) => self.namespace(py, s.to_str()?, false),
            Err(_) => Err(PyKeyError::new_err(name.clone().unbind())),
        }
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        if name.starts_with("__") {
            return Err(PyAttributeError::new_err(name.to_owned()));
        }
        self.namespace(py, crate::views::namespace_alias(name), true)
    }

    fn __setattr__(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = match crate::views::namespace_alias(name) {
            "global_" => "global",
            n => n,
        };
        let Ok(path) = Path::parse(name) else {
            return Err(context_error(
                py,
                format!("invalid namespace name '{name}'"),
            ));
        };
        if path.len() != 1 {
            return Err(context_error(
                py,
                format!("invalid namespace name '{name}'"),
            ));
        }
        if is_own_view(value, &self.tx, &path) {
            return Ok(()); // `ctx.domain = ctx.domain`
        }
        set_path(py, &self.tx, &path, value, true)
    }

    fn __repr__(&self) -> String {
        format!("<ctx version={}>", self.version)
    }
}
