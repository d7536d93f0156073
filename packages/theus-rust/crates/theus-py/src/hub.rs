//! `Hub` and `Receiver`: the native SignalHub (spec `08`) over [`theus_core::Hub`].
//!
//! Messages are Rust-owned references to Python objects (an `Arc` per message, so a publish to
//! `n` receivers costs `n` atomic increments and no Python reference count), or engine signals
//! `(name, value, version)` that become a `theus.signals.Signal` only when first received (an
//! engine commit publishes without calling Python: [`Hub::publish_signals`]).
//!
//! GIL and locks: no Python code runs while a hub lock is held (messages that leave the hub and
//! asyncio waiters to wake are handed back by the core and handled after). Every wait (a full
//! `block` receiver, an empty queue, a busy publisher) first tries without waiting, then waits
//! with the GIL released in slices of [`SLICE`], checking for signals (`KeyboardInterrupt`)
//! between slices. An asyncio wait registers one future with the receiver; the first message
//! (or a close) schedules one `call_soon_threadsafe` on that loop; nothing else touches a loop.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::exceptions::{
    PyAttributeError, PyStopAsyncIteration, PyStopIteration, PyTimeoutError, PyTypeError,
    PyValueError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use theus_core::{Message, Outbox, Path, Policy, Poll, PublishError, RecvError, TopicFilter, Wait};

use crate::errors::context_error;
use crate::{api, Leaf};

/// Longest stretch a blocking call waits with the GIL released before it checks for signals.
const SLICE: Duration = Duration::from_millis(50);
/// `publish_many` pulls this many messages from its iterable at a time (Python code: outside
/// the hub's locks), then publishes them as one batch.
const CHUNK: usize = 512;

/// A Python object published by reference, with its topic when a receiver filters.
pub(crate) struct ObjMsg {
    obj: Py<PyAny>,
    topic: Option<Box<str>>,
}

/// An engine signal; the `Signal` object is made once, by the first receiver that takes it.
pub(crate) struct SignalMsg {
    name: Box<str>,
    value: Leaf,
    version: u64,
    made: OnceLock<Py<PyAny>>,
}

/// One message in the hub.
#[derive(Clone)]
pub(crate) enum Msg {
    Obj(Arc<ObjMsg>),
    Signal(Arc<SignalMsg>),
}

impl Message for Msg {
    #[inline]
    fn topic(&self) -> Option<&str> {
        match self {
            Msg::Obj(m) => m.topic.as_deref(),
            Msg::Signal(s) => Some(&s.name),
        }
    }
}

impl Msg {
    /// The Python object (moved out when this was the last reference).
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Msg::Obj(m) => Ok(match Arc::try_unwrap(m) {
                Ok(m) => m.obj,
                Err(m) => m.obj.clone_ref(py),
            }),
            Msg::Signal(s) => {
                if let Some(made) = s.made.get() {
                    return Ok(made.clone_ref(py));
                }
                let made = api(py)
                    .signal
                    .bind(py)
                    .call1((&*s.name, s.value.bind(py), s.version))?
                    .unbind();
                Ok(match s.made.set(made.clone_ref(py)) {
                    Ok(()) => made,
                    Err(_) => s.made.get().map_or(made, |m| m.clone_ref(py)),
                })
            }
        }
    }
}

/// An asyncio wait: the loop, its future, the loop's thread.
pub(crate) struct Waker {
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
    thread: ThreadId,
}

type CoreHub = theus_core::Hub<Msg, Waker>;
type CoreRx = theus_core::Receiver<Msg, Waker>;

fn get_running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
    })?
    .bind(py)
    .call0()
}

/// `_wake(future)`: set the result of a future nobody cancelled (runs on its loop).
#[pyfunction]
fn _wake(future: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = future.py();
    if !future.call_method0(intern!(py, "done"))?.is_truthy()? {
        future.call_method1(intern!(py, "set_result"), (py.None(),))?;
    }
    Ok(())
}

fn wake_fn(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static WAKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(WAKE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(wrap_pyfunction!(_wake, py)?.into_any().unbind())
        })?
        .bind(py))
}

/// `StopIteration(value)` raised unnormalised (the interpreter takes a non-tuple value as the
/// result without making an exception object: the cheap way to finish an awaitable).
fn stop_iteration(py: Python<'_>, value: Py<PyAny>) -> PyErr {
    if value.bind(py).is_instance_of::<PyTuple>() {
        PyStopIteration::new_err((value,))
    } else {
        PyStopIteration::new_err(value)
    }
}

fn signal_lagged(py: Python<'_>, missed: u64) -> PyErr {
    match api(py).signal_lagged.bind(py).call1((missed,)) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

fn recv_error(py: Python<'_>, e: RecvError) -> PyErr {
    match e {
        RecvError::Lagged(n) => signal_lagged(py, n),
        RecvError::Closed => context_error(py, "this receiver is closed".into()),
        RecvError::Empty => match api(py).signal_empty.bind(py).call1(("no pending signal",)) {
            Ok(e) => PyErr::from_value(e),
            Err(e) => e,
        },
    }
}

fn hub_closed(py: Python<'_>) -> PyErr {
    context_error(py, "this SignalHub is closed".into())
}

/// `capacity` / `max_n`: an `int >= 1` (`TypeError` / `ValueError` naming `what`); a huge one
/// saturates.
fn positive(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            obj.repr()?
        )));
    }
    match obj.extract::<i64>() {
        Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Ok(n) => Err(PyValueError::new_err(format!(
            "{what} must be at least 1, not {n}"
        ))),
        Err(_) if obj.gt(0)? => Ok(usize::MAX),
        Err(_) => Err(PyValueError::new_err(format!(
            "{what} must be at least 1, not {}",
            obj.repr()?
        ))),
    }
}

/// `timeout`: `None` or a number of seconds `>= 0`.
fn timeout_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.is_instance_of::<PyBool>()
        || !(obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "timeout must be a number of seconds or None, not {}",
            obj.repr()?
        )));
    }
    let t: f64 = obj.extract()?;
    if t < 0.0 || t.is_nan() {
        return Err(PyValueError::new_err(format!(
            "timeout must not be negative, not {t}"
        )));
    }
    Ok(Some(t))
}

fn deadline_of(timeout: Option<f64>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(Duration::try_from_secs_f64(t).ok()?))
}

/// Wait in slices with the GIL released: `attempt(wait)` returns `Some` when done. `Ok(None)`
/// when `deadline` passed; an error when a signal handler raised (`KeyboardInterrupt`).
fn wait_in_slices<R: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(Wait) -> Option<R> + Send,
) -> PyResult<Option<R>> {
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(None);
        }
        let slice = now + SLICE;
        let until = deadline.map_or(slice, |d| d.min(slice));
        if let Some(done) = py.detach(|| attempt(Wait::Until(until))) {
            return Ok(Some(done));
        }
        py.check_signals()?;
    }
}

/// The topic of a Python message (spec `08`): a `Signal`'s name, a `str` `topic` attribute, a
/// `str` message itself.
fn topic_of(obj: &Bound<'_, PyAny>) -> PyResult<Option<Box<str>>> {
    let py = obj.py();
    let text = |s: &Bound<'_, PyString>| -> Box<str> { s.to_string_lossy().into() };
    if obj.get_type().is(api(py).signal.bind(py)) {
        let name = obj.getattr(intern!(py, "name"))?;
        return Ok(name.cast::<PyString>().ok().map(text));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(text(s)));
    }
    match obj.getattr(intern!(py, "topic")) {
        Ok(t) => Ok(t.cast::<PyString>().ok().map(text)),
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `"lag"`, the default policy of `subscribe` (an explicit `None` is a `TypeError`).
fn default_policy() -> Py<PyAny> {
    Python::attach(|py| intern!(py, "lag").clone().into_any().unbind())
}

/// `1024`, the default capacity of a hub (an explicit `None` is a `TypeError`).
fn default_capacity() -> Py<PyAny> {
    Python::attach(|py| {
        1024i64
            .into_pyobject(py)
            .map_or_else(|_| py.None(), |i| i.into_any().unbind())
    })
}

/// The native SignalHub (spec `08`).
#[pyclass(module = "theus_rust._native", frozen, weakref)]
pub struct Hub {
    core: CoreHub,
    failures: AtomicU64,
}

impl Hub {
    fn message(&self, obj: &Bound<'_, PyAny>) -> PyResult<Msg> {
        let topic = if self.core.has_filters() {
            topic_of(obj)?
        } else {
            None
        };
        Ok(Msg::Obj(Arc::new(ObjMsg {
            obj: obj.clone().unbind(),
            topic,
        })))
    }

    /// Drop what left the hub and wake the asyncio waiters (no hub lock is held here).
    fn settle(&self, py: Python<'_>, out: Outbox<Msg, Waker>) {
        let Outbox { garbage, wakers } = out;
        for waker in wakers {
            self.wake(py, waker);
        }
        drop(garbage);
    }

    fn wake(&self, py: Python<'_>, waker: Waker) {
        let future = waker.future.bind(py);
        let woken = (|| -> PyResult<()> {
            if future.call_method0(intern!(py, "done"))?.is_truthy()? {
                return Ok(()); // its wait was cancelled: nobody waits on it
            }
            let method = if waker.thread == std::thread::current().id() {
                intern!(py, "call_soon")
            } else {
                intern!(py, "call_soon_threadsafe")
            };
            waker
                .event_loop
                .bind(py)
                .call_method1(method, (wake_fn(py)?, future))?;
            Ok(())
        })();
        if let Err(err) = woken {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let logged = api(py).logger.bind(py).call_method1(
                intern!(py, "warning"),
                (
                    "a signal receiver could not be woken (%s); the message stays queued",
                    err.value(py)
                        .str()
                        .map_or_else(|_| "?".into(), |s| s.to_string()),
                ),
            );
            if let Err(e) = logged {
                e.write_unraisable(py, None);
            }
        }
    }

    /// Publish a batch, waiting as allowed; the sum of the receivers reached.
    fn publish_batch(
        &self,
        py: Python<'_>,
        batch: &mut VecDeque<Msg>,
        deadline: Option<Instant>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let mut out = Outbox::new();
        let (mut total, mut stop) = self.core.publish_batch(batch, Wait::No, &mut out);
        let mut result = Ok(());
        if matches!(stop, Some(PublishError::WouldBlock(()))) {
            let core = &self.core;
            let waited = wait_in_slices(py, deadline, |wait| {
                let (n, s) = core.publish_batch(batch, wait, &mut out);
                total += n;
                stop = s;
                match stop {
                    Some(PublishError::WouldBlock(())) => None,
                    _ => Some(()),
                }
            });
            match waited {
                Ok(Some(())) => {}
                Ok(None) => {
                    result = Err(PyTimeoutError::new_err(format!(
                        "a 'block' receiver had no room within {} s; nothing more was published",
                        timeout.unwrap_or(0.0)
                    )))
                }
                Err(e) => result = Err(e),
            }
        }
        self.settle(py, out);
        result?;
        match stop {
            Some(PublishError::Closed(())) => Err(hub_closed(py)),
            _ => Ok(total),
        }
    }

    /// Publish an engine commit's signals (`name = path`, `value`, `version`) without calling
    /// Python, except to wake asyncio waiters and, when a `block` receiver is full, to check
    /// for signals between waits. Returns the sum of the receivers reached.
    ///
    /// spec `08`: an interrupt (`KeyboardInterrupt`) while waiting for a full `block` receiver
    /// drops the signal being published (no receiver got it, like an interrupted `publish`),
    /// the commit's other signals are still published, then the interrupt is returned. A closed
    /// hub ends it (`ContextError`: nothing more can be published).
    pub(crate) fn publish_signals(
        &self,
        py: Python<'_>,
        signals: &[(Path, Leaf)],
        version: u64,
    ) -> PyResult<usize> {
        let mut batch: VecDeque<Msg> = signals
            .iter()
            .map(|(path, value)| {
                Msg::Signal(Arc::new(SignalMsg {
                    name: path.to_string().into(),
                    value: value.clone(),
                    version,
                    made: OnceLock::new(),
                }))
            })
            .collect();
        let mut total = 0;
        let mut interrupt = None;
        while !batch.is_empty() {
            match self.publish_batch(py, &mut batch, None, None) {
                Ok(n) => total += n,
                Err(e) if self.core.is_closed() => return Err(e),
                Err(e) => {
                    drop(batch.pop_front()); // the interrupted one
                    interrupt.get_or_insert(e);
                }
            }
        }
        match interrupt {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

#[pymethods]
impl Hub {
    /// A new hub whose receivers hold `capacity` messages by default.
    #[new]
    #[pyo3(signature = (capacity = default_capacity()), text_signature = "(capacity=1024)")]
    fn new(py: Python<'_>, capacity: Py<PyAny>) -> PyResult<Self> {
        let capacity = positive(capacity.bind(py), "capacity")?;
        Ok(Hub {
            core: CoreHub::new(capacity),
            failures: AtomicU64::new(0),
        })
    }

    /// Deliver `message` to every receiver that accepts it; return how many got it.
    #[pyo3(signature = (message, timeout = None))]
    fn publish(
        &self,
        message: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let py = message.py();
        let timeout = timeout_of(timeout)?;
        let msg = self.message(message)?;
        let mut out = Outbox::new(); // no allocation for a publish to one receiver
        match self.core.publish(msg, Wait::No, &mut out) {
            Ok(n) => {
                if !out.wakers.is_empty() {
                    self.settle(py, out);
                } // else `out` drops here: the messages it holds, with no hub lock held
                Ok(n)
            }
            Err(PublishError::Closed(m)) => {
                out.garbage.push(m);
                self.settle(py, out);
                Err(hub_closed(py))
            }
            Err(PublishError::WouldBlock(m)) => {
                self.settle(py, out);
                let mut batch = VecDeque::from([m]);
                self.publish_batch(py, &mut batch, deadline_of(timeout), timeout)
            }
        }
    }

    /// Publish each message of an iterable in order; the sum of the receivers reached.
    #[pyo3(signature = (messages, timeout = None))]
    fn publish_many(
        &self,
        messages: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let py = messages.py();
        let timeout = timeout_of(timeout)?;
        if self.core.is_closed() {
            return Err(hub_closed(py));
        }
        let deadline = deadline_of(timeout);
        let mut total = 0;
        let mut batch = VecDeque::with_capacity(CHUNK);
        let mut iter = messages.try_iter()?;
        loop {
            for item in iter.by_ref().take(CHUNK) {
                batch.push_back(self.message(&item?)?);
            }
            if batch.is_empty() {
                return Ok(total);
            }
            total += self.publish_batch(py, &mut batch, deadline, timeout)?;
        }
    }

    /// A new receiver (held weakly by the hub: keep a reference while you use it).
    #[pyo3(
        signature = (policy = default_policy(), capacity = None, topics = None),
        text_signature = "($self, policy='lag', capacity=None, topics=None)"
    )]
    fn subscribe(
        slf: &Bound<'_, Self>,
        policy: Py<PyAny>,
        capacity: Option<&Bound<'_, PyAny>>,
        topics: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Receiver> {
        let py = slf.py();
        let p = policy.bind(py);
        let Ok(name) = p.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "policy must be 'lag' or 'block', not {}",
                p.repr()?
            )));
        };
        let policy = match name.to_str()? {
            "lag" => Policy::Lag,
            "block" => Policy::Block,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "policy must be 'lag' or 'block', not {}",
                    p.repr()?
                )))
            }
        };
        let capacity = match capacity.filter(|c| !c.is_none()) {
            Some(c) => Some(positive(c, "capacity")?),
            None => None,
        };
        let filter = match topics.filter(|t| !t.is_none()) {
            None => None,
            Some(t) => {
                let not_a_list = || {
                    PyTypeError::new_err(format!(
                        "topics= must be a list of patterns (str), not {}",
                        t.repr().map_or_else(|_| "?".into(), |r| r.to_string())
                    ))
                };
                if t.is_instance_of::<PyString>() {
                    return Err(not_a_list());
                }
                let mut patterns = Vec::new();
                for p in t.try_iter().map_err(|_| not_a_list())? {
                    let p = p?;
                    let Ok(s) = p.cast::<PyString>() else {
                        return Err(PyTypeError::new_err(format!(
                            "a topic pattern must be a str, not {}",
                            p.repr()?
                        )));
                    };
                    patterns.push(s.to_string_lossy().into_owned());
                }
                Some(TopicFilter::new(patterns))
            }
        };
        match slf.get().core.subscribe(policy, capacity, filter) {
            Some(core) => Ok(Receiver {
                core: Arc::new(core),
                hub: slf.clone().unbind(),
                spare: parking_lot::Mutex::new(None),
            }),
            None => Err(hub_closed(py)),
        }
    }

    /// Close the hub and every receiver; wake every blocked call. Idempotent.
    fn close(&self, py: Python<'_>) {
        let mut out = Outbox::new();
        self.core.close(&mut out);
        self.settle(py, out);
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The default capacity of a receiver's queue.
    #[getter]
    fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// The number of live receivers.
    #[getter]
    fn receiver_count(&self) -> usize {
        self.core.receiver_count()
    }

    /// Waiters that could not be woken (their event loop was closed); each was also logged.
    #[getter]
    fn delivery_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn __repr__(&self) -> String {
        format!(
            "<theus_rust SignalHub capacity={} receivers={}{}>",
            self.core.capacity(),
            self.core.receiver_count(),
            if self.core.is_closed() { " closed" } else { "" }
        )
    }
}

/// One subscription: the messages published after it was made, in order (spec `08`).
#[pyclass(module = "theus_rust._native", frozen, weakref)]
pub struct Receiver {
    core: Arc<CoreRx>,
    hub: Py<Hub>,
    /// The awaitable of the last `__anext__`, reused when nobody else holds it (an `async for`
    /// then allocates nothing per message). It holds the core receiver, not this object.
    spare: parking_lot::Mutex<Option<Py<RecvWait>>>,
}

impl Receiver {
    /// Up to `max` messages; waits (up to `timeout`) for the first. `Ok(None)` on timeout.
    fn take(&self, py: Python<'_>, max: usize, timeout: Option<f64>) -> PyResult<Option<Vec<Msg>>> {
        let mut got = Vec::new();
        match self.core.recv_many(max, &mut got, Wait::No) {
            Ok(()) => return Ok(Some(got)),
            Err(RecvError::Empty) => {}
            Err(e) => return Err(recv_error(py, e)),
        }
        if timeout == Some(0.0) {
            return Ok(None);
        }
        let core = &self.core;
        let got = wait_in_slices(py, deadline_of(timeout), |wait| {
            match core.recv_many(max, &mut got, wait) {
                Err(RecvError::Empty) => None,
                Ok(()) => Some(Ok(std::mem::take(&mut got))),
                Err(e) => Some(Err(e)),
            }
        })?;
        match got {
            None => Ok(None),
            Some(Ok(got)) => Ok(Some(got)),
            Some(Err(e)) => Err(recv_error(py, e)),
        }
    }

    fn one(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        match self.take(py, 1, timeout)? {
            Some(mut got) => got.pop().expect("one message").into_py(py),
            None => Err(PyTimeoutError::new_err(format!(
                "no signal within {} s",
                timeout.unwrap_or(0.0)
            ))),
        }
    }

    fn settle(&self, py: Python<'_>, out: Outbox<Msg, Waker>) {
        self.hub.get().settle(py, out);
    }
}

fn to_list(py: Python<'_>, got: Vec<Msg>) -> PyResult<Py<PyAny>> {
    let items = got
        .into_iter()
        .map(|m| m.into_py(py))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any().unbind())
}

#[pymethods]
impl Receiver {
    /// The next message, blocking; `TimeoutError` after `timeout` seconds.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let timeout = timeout_of(timeout)?;
        self.one(py, timeout)
    }

    /// The next message, or `SignalEmpty`.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.core.try_recv() {
            Ok(m) => m.into_py(py),
            Err(e) => Err(recv_error(py, e)),
        }
    }

    /// Wait (up to `timeout`) for a message, then return up to `max_n` pending ones; `[]` on
    /// timeout.
    #[pyo3(signature = (max_n, timeout = None))]
    fn recv_many(
        &self,
        max_n: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = max_n.py();
        let max = positive(max_n, "max_n")?;
        let timeout = timeout_of(timeout)?;
        match self.take(py, max, timeout)? {
            Some(got) => to_list(py, got),
            None => Ok(PyList::empty(py).into_any().unbind()),
        }
    }

    /// Await the next message (a cancelled wait loses none).
    fn recv_async(&self) -> RecvWait {
        RecvWait::new(self, 1, Mode::One)
    }

    /// Await at least one message, then return up to `max_n` pending ones.
    fn recv_many_async(&self, max_n: &Bound<'_, PyAny>) -> PyResult<RecvWait> {
        let max = positive(max_n, "max_n")?;
        Ok(RecvWait::new(self, max, Mode::Many))
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.take(py, 1, None) {
            Ok(Some(mut got)) => got.pop().expect("one message").into_py(py).map(Some),
            Ok(None) => Ok(None),
            Err(e) if e.is_instance(py, api(py).context_error.bind(py)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__(&self, py: Python<'_>) -> PyResult<Py<RecvWait>> {
        let reusable = self.spare.lock().take();
        if let Some(spare) = reusable {
            if spare.get_refcnt(py) == 1 {
                // Nobody else can see it: reset it for this wait.
                {
                    let mut w = spare.bind(py).borrow_mut();
                    w.forget_waiter();
                    w.max = 1;
                    w.mode = Mode::Next;
                }
                let handed = spare.clone_ref(py);
                *self.spare.lock() = Some(spare);
                return Ok(handed);
            }
            drop(spare);
        }
        let fresh = Py::new(py, RecvWait::new(self, 1, Mode::Next))?;
        let old = self.spare.lock().replace(fresh.clone_ref(py));
        drop(old);
        Ok(fresh)
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    /// How many messages this receiver missed in total (policy `lag`).
    #[getter]
    fn lagged(&self) -> u64 {
        self.core.lagged()
    }

    /// `"lag"` or `"block"`.
    #[getter]
    fn policy(&self) -> &'static str {
        match self.core.policy() {
            Policy::Lag => "lag",
            Policy::Block => "block",
        }
    }

    /// The bound of the queue.
    #[getter]
    fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// Unsubscribe; pending messages can still be drained.
    fn close(&self, py: Python<'_>) {
        let mut out = Outbox::new();
        self.core.close(&mut out);
        self.settle(py, out);
    }

    fn __repr__(&self) -> String {
        format!(
            "<theus_rust Receiver policy={} capacity={} pending={}>",
            self.policy(),
            self.core.capacity(),
            self.core.len()
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `recv_async`: one message; `ContextError` once closed.
    One,
    /// `recv_many_async`: a list.
    Many,
    /// `__anext__`: one message; `StopAsyncIteration` once closed.
    Next,
}

/// The awaitable of `recv_async`, `recv_many_async` and `__anext__` (a coroutine object).
#[pyclass(module = "theus_rust._native")]
pub struct RecvWait {
    rx: Arc<CoreRx>,
    max: usize,
    mode: Mode,
    waiter: Option<u64>,
}

impl RecvWait {
    fn new(rx: &Receiver, max: usize, mode: Mode) -> RecvWait {
        RecvWait {
            rx: Arc::clone(&rx.core),
            max,
            mode,
            waiter: None,
        }
    }

    fn forget_waiter(&mut self) {
        if let Some(id) = self.waiter.take() {
            drop(self.rx.unregister(id));
        }
    }

    fn finish(&self, py: Python<'_>, got: Vec<Msg>) -> PyErr {
        let value = match self.mode {
            Mode::Many => to_list(py, got),
            _ => got.into_iter().next().expect("one message").into_py(py),
        };
        match value {
            Ok(v) => stop_iteration(py, v),
            Err(e) => e,
        }
    }

    fn fail(&self, py: Python<'_>, e: RecvError) -> PyErr {
        match (e, self.mode) {
            (RecvError::Closed, Mode::Next) => PyStopAsyncIteration::new_err(()),
            (e, _) => recv_error(py, e),
        }
    }

    /// One step: the result (as `StopIteration`), or the future to wait on.
    fn step(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.forget_waiter();
        let rx = &self.rx;
        let mut got = Vec::new();
        if self.mode == Mode::Many {
            match rx.recv_many(self.max, &mut got, Wait::No) {
                Ok(()) => return Err(self.finish(py, got)),
                Err(RecvError::Empty) => {}
                Err(e) => return Err(self.fail(py, e)),
            }
        } else {
            match rx.try_recv() {
                Ok(m) => {
                    return Err(match m.into_py(py) {
                        Ok(v) => stop_iteration(py, v),
                        Err(e) => e,
                    })
                }
                Err(RecvError::Empty) => {}
                Err(e) => return Err(self.fail(py, e)),
            }
        }
        let event_loop = get_running_loop(py)?;
        let future = event_loop.call_method0(intern!(py, "create_future"))?;
        let waker = Waker {
            event_loop: event_loop.unbind(),
            future: future.clone().unbind(),
            thread: std::thread::current().id(),
        };
        match rx.poll_register(self.max, &mut got, waker) {
            Ok(Poll::Ready(unused)) => {
                drop(unused);
                Err(self.finish(py, got))
            }
            Ok(Poll::Registered(id)) => {
                self.waiter = Some(id);
                future.setattr(intern!(py, "_asyncio_future_blocking"), true)?;
                Ok(future.unbind())
            }
            Err((e, unused)) => {
                drop(unused);
                Err(self.fail(py, e))
            }
        }
    }
}

#[pymethods]
impl RecvWait {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }

    /// Resume (the value sent is ignored).
    fn send(&mut self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }

    /// Abandon the wait and raise `exc` here (a cancellation); no message is lost.
    #[pyo3(signature = (exc, value = None, _traceback = None))]
    fn throw(
        &mut self,
        exc: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.forget_waiter();
        if exc.is_instance_of::<PyType>() {
            let made = match value.filter(|v| !v.is_none()) {
                Some(v) if v.is_instance(exc)? => v.clone(),
                Some(v) => exc.call1((v,))?,
                None => exc.call0()?,
            };
            return Err(PyErr::from_value(made));
        }
        Err(PyErr::from_value(exc.clone()))
    }

    /// Abandon the wait.
    fn close(&mut self) {
        self.forget_waiter();
    }
}

impl Drop for RecvWait {
    fn drop(&mut self) {
        self.forget_waiter();
    }
}
