//! `Engine` (the `EngineCore` protocol) and `Handle` (a process compiled for one engine), with
//! the native attempt loop of `execute` (the reading of `theus._runner.run_sync`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use theus_core::{Contract, Error, PMap, Path, Semantic, Store, Zone};

use crate::convert::freeze;
use crate::errors::{conflict_error, context_error, invalid_contract, to_py, Shape};
use crate::hub::Hub;
use crate::pipeline::{Hooks, Watcher};
use crate::snapshot::Snapshot;
use crate::tx::{lock_commits, Tx};
use crate::{api, Leaf};

/// One engine's state store: the current snapshot, the commit lock and history, its options.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct Engine {
    pub(crate) store: Store<Leaf>,
    pub(crate) strict_guards: bool,
    pub(crate) strict_cas: bool,
    /// `hub` when it is the native [`Hub`]: commits publish their signals through it natively.
    pub(crate) native_hub: Option<Py<Hub>>,
    /// The Python object of the current snapshot once handed out (pointer of the core
    /// snapshot, its version, the object), so that `engine.state` is the same object until the
    /// next commit (spec `12`: after an error `engine.state` is the object from before the
    /// call). Never holds an older snapshot past the commit that replaced it. No Python code
    /// runs while this lock is held: objects are made before and dropped after.
    cache: Mutex<Option<(usize, u64, Py<Snapshot>)>>,
    rng: AtomicU64,
    /// The engine's `theus.pipeline.CommitPipeline` and what it needs (spec `15`).
    pub(crate) pipeline: Py<PyAny>,
    pub(crate) hooks: Arc<Hooks>,
    /// Tickets of commits handed to the pipeline; only changed under the commit lock.
    pub(crate) tickets: AtomicU64,
}

/// A process compiled for one engine (`compile` returns it; `begin`/`execute` take it back).
#[pyclass(module = "theus_rust._native", frozen)]
pub struct Handle {
    contract: Arc<Contract>,
    spec: Py<PyAny>,
    func: Py<PyAny>,
    name: String,
    name_py: Py<PyAny>,
    /// `spec.retry_policy` (spec `05`), read once: re-runs, backoff base, exclusive last re-run.
    retries: u64,
    backoff_base: f64,
    exclusive_last: bool,
    /// The outputs a plain return value maps onto (spec `06`): the path, or `None` for a
    /// pattern with a wildcard (which cannot receive a value).
    outputs: Vec<Option<Path>>,
}

impl Handle {
    /// The process name as a Python string (for `Changes.process`).
    pub(crate) fn name_obj(&self, py: Python<'_>) -> Py<PyAny> {
        self.name_py.clone_ref(py)
    }
}

impl Engine {
    /// The Python object for `snapshot` (cached while it is the current one).
    pub(crate) fn snapshot_object(
        &self,
        py: Python<'_>,
        snapshot: Arc<theus_core::Snapshot<Leaf>>,
    ) -> PyResult<Py<Snapshot>> {
        let key = Arc::as_ptr(&snapshot) as usize;
        let version = snapshot.version();
        if let Some((k, _, obj)) = self.cache.lock().as_ref() {
            if *k == key {
                return Ok(obj.clone_ref(py));
            }
        }
        // Allocating may run the cyclic GC (destructors): not under the lock.
        let fresh = Py::new(py, Snapshot { snap: snapshot })?;
        let (obj, replaced) = {
            let mut cache = self.cache.lock();
            match cache.as_ref() {
                Some((k, _, obj)) if *k == key => (obj.clone_ref(py), None),
                // Only the current snapshot is cached: a commit that landed meanwhile has
                // already forgotten the older one, and must not see it come back.
                _ if Arc::as_ptr(&self.store.current()) as usize == key => {
                    let replaced = cache.replace((key, version, fresh.clone_ref(py)));
                    (fresh.clone_ref(py), replaced)
                }
                _ => (fresh.clone_ref(py), None),
            }
        };
        drop(replaced);
        drop(fresh);
        Ok(obj)
    }

    /// Drop the cached object of a snapshot older than `version` (called after a commit, with
    /// the lock released; the object, maybe the last holder of replaced values, is dropped
    /// outside the lock).
    pub(crate) fn forget_older(&self, version: u64) {
        let stale = {
            let mut cache = self.cache.lock();
            match cache.as_ref() {
                Some((_, v, _)) if *v < version => cache.take(),
                _ => None,
            }
        };
        drop(stale);
    }

    /// `ContextError` once [`Engine::close`] ran.
    fn check_open(&self, py: Python<'_>) -> PyResult<()> {
        if self.store.is_closed() {
            return Err(context_error(
                py,
                "this TheusEngine is closed; nothing was committed".into(),
            ));
        }
        Ok(())
    }

    fn jitter(&self, attempt: u64, base: f64) -> f64 {
        if attempt <= 1 {
            return 0.0;
        }
        // splitmix64: a per-engine generator, no process-global state.
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        let shift = (attempt - 2).min(62) as i32;
        unit * base * 2f64.powi(shift)
    }
}

fn texts(patterns: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    patterns
        .try_iter()?
        .map(|p| p?.getattr("text")?.extract::<String>())
        .collect()
}

/// Map a process's return value onto its outputs (spec `06`), natively, exactly like
/// `theus._runner.apply_return`: a `StateUpdate` is applied; `None`, an in-place write or no
/// outputs map nothing; else one value per output (a tuple for several), never to a wildcard.
fn map_return(
    py: Python<'_>,
    tx: &Py<Tx>,
    handle: &Handle,
    result: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if result.is_none() {
        return Ok(()); // (before the StateUpdate check: the common case, one pointer compare)
    }
    let a = api(py);
    if result.is_instance(a.state_update.bind(py))? {
        let update = result.call_method0(intern!(py, "to_update"))?;
        return Tx::apply(tx.bind(py), &update);
    }
    if handle.outputs.is_empty() || Tx::wrote_in_place(py, tx)? {
        return Ok(());
    }
    let spec = handle.spec.bind(py);
    let values: Vec<Bound<'_, PyAny>> = if handle.outputs.len() == 1 {
        vec![result.clone()]
    } else {
        match result.cast::<PyTuple>() {
            Ok(t) if t.len() == handle.outputs.len() => t.iter().collect(),
            _ => {
                return Err(PyErr::from_value(
                    a.arity_error.bind(py).call1((spec, result))?,
                ))
            }
        }
    };
    for (i, output) in handle.outputs.iter().enumerate() {
        if output.is_none() {
            let pattern = spec.getattr(intern!(py, "outputs"))?.get_item(i)?;
            return Err(PyErr::from_value(
                a.wildcard_error.bind(py).call1((spec, pattern))?,
            ));
        }
    }
    for (path, value) in handle.outputs.iter().zip(values) {
        let path = path.as_ref().expect("checked above");
        crate::views::set_path(py, tx, path, &value, false)?;
    }
    Ok(())
}

/// One attempt: run the function, map its return value, commit. `Ok(Err(conflict))` when the
/// commit lost; else the return value and the version the commit made.
fn attempt(
    py: Python<'_>,
    tx: &Py<Tx>,
    handle: &Handle,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Result<(Py<PyAny>, u64), PyErr>> {
    let ctx = Tx::ctx_of(py, tx).ok_or_else(|| context_error(py, "no ctx".into()))?;
    let func = handle.func.bind(py);
    let result = match kwargs {
        Some(kw) if !kw.is_empty() => func.call((ctx,), Some(kw))?,
        _ => func.call1((ctx,))?,
    };
    map_return(py, tx, handle, &result)?;
    match Tx::commit_inner(tx.bind(py), false) {
        Ok(snapshot) => Ok(Ok((result.unbind(), snapshot.version()))),
        Err(e) if e.is_instance(py, api(py).conflict_error.bind(py)) => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

impl Engine {
    /// The attempt loop of `execute` and `execute_step`.
    fn run(
        slf: &Bound<'_, Self>,
        handle: &Bound<'_, Handle>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Py<PyAny>, u64)> {
        let py = slf.py();
        let h = handle.get();
        let mut attempts: u64 = 0;
        loop {
            slf.get().check_open(py)?;
            let exclusive = h.exclusive_last && attempts > 0 && attempts == h.retries;
            let process = (Arc::clone(&h.contract), h.name_obj(py));
            let tx = Tx::begin(py, slf, Some(process), exclusive)?;
            let outcome = attempt(py, &tx, h, kwargs);
            tx.get().close_inner(py);
            match outcome? {
                Ok(result) => return Ok(result),
                Err(conflict) => {
                    attempts += 1;
                    if attempts > h.retries {
                        let error = conflict_error(
                            py,
                            format!(
                                "process '{}' lost to concurrent commits {attempts} times \
                                 (retries={}): {}",
                                h.name,
                                h.retries,
                                conflict.value(py)
                            ),
                        );
                        error.set_cause(py, Some(conflict));
                        return Err(error);
                    }
                }
            }
            let delay = slf.get().jitter(attempts, h.backoff_base);
            if delay > 0.0 {
                py.detach(|| std::thread::sleep(Duration::from_secs_f64(delay)));
            }
        }
    }
}

#[pymethods]
impl Engine {
    /// A new engine core holding `context` (a mapping of namespaces) as version 0.
    #[new]
    fn new(
        py: Python<'_>,
        context: &Bound<'_, PyAny>,
        options: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let mut root = PMap::new();
        for pair in context.call_method0("items")?.try_iter()? {
            let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
            let name = name.cast::<PyString>()?.to_str()?.to_owned();
            let path = Path::from_segments([name.as_str()])
                .map_err(|_| context_error(py, format!("invalid namespace name '{name}'")))?;
            let value = freeze(py, &value, &path, Zone::Data, None)?;
            root.insert(name.into(), value);
        }
        let version: u64 = options.getattr("version")?.extract()?;
        let store =
            Store::with_version(root, version).map_err(|e| to_py(py, e, Shape::ContextError))?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (Arc::as_ptr(&store.current()) as u64);
        let hub = options.getattr("hub")?;
        let native_hub = hub.cast::<Hub>().ok().map(|h| h.clone().unbind());
        let pipeline = options.getattr("pipeline")?;
        let hooks = Arc::new(Hooks::default());
        // With the native hub, signals are published natively (the pipeline's signal stage is
        // not called); with another hub the stage publishes them.
        let native: &[&str] = if native_hub.is_some() {
            &["signals"]
        } else {
            &[]
        };
        pipeline.call_method1(
            "watch",
            (
                Watcher {
                    hooks: Arc::clone(&hooks),
                },
                pyo3::types::PyFrozenSet::new(py, native)?,
            ),
        )?;
        Ok(Engine {
            store,
            strict_guards: options.getattr("strict_guards")?.extract()?,
            strict_cas: options.getattr("strict_cas")?.extract()?,
            native_hub,
            cache: Mutex::new(None),
            rng: AtomicU64::new(seed),
            pipeline: pipeline.unbind(),
            hooks,
            tickets: AtomicU64::new(0),
        })
    }

    /// The current snapshot.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<Snapshot>> {
        self.snapshot_object(py, self.store.current())
    }

    /// Compile a process's contract for this engine (once, at registration).
    fn compile(&self, py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<Handle> {
        let name: String = spec.getattr("name")?.extract()?;
        let inputs = texts(&spec.getattr("inputs")?)?;
        let outputs = texts(&spec.getattr("outputs")?)?;
        let semantic_name: String = spec.getattr("semantic")?.getattr("value")?.extract()?;
        let semantic = Semantic::parse(&semantic_name)
            .ok_or_else(|| invalid_contract(py, format!("unknown semantic {semantic_name:?}")))?;
        // The re-run policy as data (`theus.retry.RetryPolicy`). Any int >= 0 (spec `04`);
        // beyond u64 saturates: no run can reach that many re-runs.
        let policy = spec.getattr("retry_policy")?;
        let retries_obj = policy.getattr("retries")?;
        let retries: u64 = match retries_obj.extract() {
            Ok(n) => n,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) => {
                if retries_obj.lt(0)? {
                    return Err(e);
                }
                u64::MAX
            }
            Err(e) => return Err(e),
        };
        let backoff_base: f64 = policy.getattr("backoff_base")?.extract()?;
        let exclusive_last: bool = policy.getattr("exclusive_last")?.extract()?;
        let mut targets = Vec::new();
        for pattern in spec.getattr("outputs")?.try_iter()? {
            let pattern = pattern?;
            targets.push(if pattern.getattr("has_wildcard")?.is_truthy()? {
                None
            } else {
                let segments: Vec<String> = pattern.getattr("segments")?.extract()?;
                Some(
                    Path::from_segments(segments)
                        .map_err(|e| invalid_contract(py, e.to_string()))?,
                )
            });
        }
        let contract =
            Contract::compile(&name, &inputs, &outputs, semantic).map_err(|e| match e {
                Error::InvalidContract { .. } => invalid_contract(py, e.to_string()),
                e => to_py(py, e, Shape::ContextError),
            })?;
        Ok(Handle {
            contract: Arc::new(contract),
            spec: spec.clone().unbind(),
            func: spec.getattr("func")?.unbind(),
            name_py: PyString::new(py, &name).into_any().unbind(),
            name,
            retries,
            backoff_base,
            exclusive_last,
            outputs: targets,
        })
    }

    /// Open a transaction for a process (`handle`) or the host (`None`). `exclusive` holds the
    /// engine's commit lock until `close` (spec `05`).
    #[pyo3(signature = (handle = None, exclusive = false))]
    fn begin(
        slf: &Bound<'_, Self>,
        handle: Option<&Bound<'_, Handle>>,
        exclusive: bool,
    ) -> PyResult<Py<Tx>> {
        slf.get().check_open(slf.py())?;
        let process = handle.map(|h| (Arc::clone(&h.get().contract), h.get().name_obj(slf.py())));
        Tx::begin(slf.py(), slf, process, exclusive)
    }

    /// Run a sync process end to end, exactly like `theus._runner.run_sync`: attempt, map the
    /// return value, commit; on conflict re-run (the first at once, then with jittered
    /// backoff; the last re-run exclusive), else `ConflictError`.
    #[pyo3(signature = (handle, kwargs = None))]
    fn execute(
        slf: &Bound<'_, Self>,
        handle: &Bound<'_, Handle>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Ok(Self::run(slf, handle, kwargs)?.0)
    }

    /// `execute`, returning `(return value, version its commit made)`: a Flux step
    /// (spec `18`) reports the version of its own commit.
    #[pyo3(signature = (handle, kwargs = None))]
    fn execute_step(
        slf: &Bound<'_, Self>,
        handle: &Bound<'_, Handle>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Py<PyAny>, u64)> {
        Self::run(slf, handle, kwargs)
    }

    /// Close the engine core (spec `14`): wait for a commit in its critical section (or an
    /// open exclusive transaction), then refuse every later commit and `begin` with
    /// `ContextError`. Idempotent. After it returned nothing commits. `NestedExecutionError`
    /// if called from inside this thread's own commit or exclusive transaction.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.store.is_closed() {
            return Ok(());
        }
        let guard = lock_commits(py, &self.store)?;
        guard.close_store();
        drop(guard);
        Ok(())
    }

    /// Whether [`Engine::close`] ran.
    #[getter]
    fn closed(&self) -> bool {
        self.store.is_closed()
    }

    /// The current version.
    #[getter]
    fn version(&self) -> u64 {
        self.store.version()
    }

    fn __repr__(&self) -> String {
        format!("<theus_rust engine core version={}>", self.store.version())
    }
}

#[pymethods]
impl Handle {
    /// The process's `ProcessSpec`.
    #[getter]
    fn spec(&self, py: Python<'_>) -> Py<PyAny> {
        self.spec.clone_ref(py)
    }

    /// The process name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("<theus_rust process handle {:?}>", self.name)
    }
}
