//! `theus_rust._native`: the PyO3 layer of the Theus Rust backend.
//!
//! A thin shell around `theus-core`: Python objects are the leaves of the tree ([`Leaf`]),
//! dicts and lists are frozen into the core's persistent maps and lists ([`convert`]), and the
//! engine, snapshots, transactions, the `ctx` object and the guarded views are Rust classes
//! ([`engine`], [`snapshot`], [`tx`], [`views`]). `engine.execute` runs the whole attempt loop
//! natively, exactly like `theus._runner.run_sync`.
//!
//! GIL rules: nothing ever blocks on the commit lock while attached to the interpreter
//! (`try_lock`, else detach and lock), and large conflict checks and rebases run detached.
//!
//! Lock rules: the commit lock knows its owning thread, so a signal handler or destructor that
//! re-enters a commit of its own thread gets `NestedExecutionError` instead of a hang; what a
//! commit replaced is freed only after the lock is released; no Python object is made or dropped
//! while the snapshot cache's mutex is held. No Python code runs under the commit lock: signals
//! go to the native hub natively; the commit pipeline's Python hooks (spec `15`) run before the
//! lock is taken and after it is released (a ticket reserved under the lock keeps their order).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyModule, PyType};

mod convert;
mod engine;
mod errors;
mod flux_expr;
mod hub;
mod pipeline;
mod snapshot;
mod tx;
mod views;

/// A leaf of the tree: a Python object, shared by an `Arc` so that cloning a value (which the
/// core does freely, also with the GIL released) never touches a reference count in Python.
#[derive(Clone)]
pub struct Leaf(Arc<Py<PyAny>>);

impl Leaf {
    /// Wrap a Python object.
    #[inline]
    pub fn new(obj: Py<PyAny>) -> Leaf {
        Leaf(Arc::new(obj))
    }

    /// A new strong reference to the object.
    #[inline]
    pub fn get(&self, py: Python<'_>) -> Py<PyAny> {
        self.0.clone_ref(py)
    }

    /// The object, borrowed.
    #[inline]
    pub fn bind<'a, 'py>(&'a self, py: Python<'py>) -> &'a Bound<'py, PyAny> {
        self.0.bind(py)
    }
}

/// Python objects the extension needs, imported once when the module is initialised.
pub(crate) struct Api {
    pub theus_error: Py<PyType>,
    pub context_error: Py<PyType>,
    pub depth_limit_error: Py<PyType>,
    pub invalid_path_error: Py<PyType>,
    pub invalid_contract_error: Py<PyType>,
    pub contract_violation_error: Py<PyType>,
    pub conflict_error: Py<PyType>,
    pub nested_execution_error: Py<PyType>,
    pub signal_empty: Py<PyType>,
    pub signal_lagged: Py<PyType>,
    pub mapping_abc: Py<PyAny>,
    pub sequence_abc: Py<PyAny>,
    pub mapping_proxy: Py<PyAny>,
    pub signal: Py<PyAny>,
    pub local: Py<PyAny>,
    pub state_update: Py<PyAny>,
    pub change: Py<PyAny>,
    pub changes: Py<PyAny>,
    pub tuple_new: Py<PyAny>,
    pub object_new: Py<PyAny>,
    pub outbox_buffer: Py<PyAny>,
    pub sorted: Py<PyAny>,
    pub frozenset: Py<PyAny>,
    /// `logging.getLogger("theus")`: failures after a commit landed are reported here.
    pub logger: Py<PyAny>,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

fn load_api(py: Python<'_>) -> PyResult<Api> {
    // Everything comes from the declared backend-facing module (spec `14`).
    let theus = py.import("theus.backend")?;
    let ty = |name: &str| -> PyResult<Py<PyType>> {
        Ok(theus.getattr(name)?.cast_into::<PyType>()?.unbind())
    };
    let builtins = py.import("builtins")?;
    Ok(Api {
        theus_error: ty("TheusError")?,
        context_error: ty("ContextError")?,
        depth_limit_error: ty("DepthLimitError")?,
        invalid_path_error: ty("InvalidPathError")?,
        invalid_contract_error: ty("InvalidContractError")?,
        contract_violation_error: ty("ContractViolationError")?,
        conflict_error: ty("ConflictError")?,
        nested_execution_error: ty("NestedExecutionError")?,
        signal_empty: ty("SignalEmpty")?,
        signal_lagged: ty("SignalLagged")?,
        mapping_abc: py.import("collections.abc")?.getattr("Mapping")?.unbind(),
        sequence_abc: py.import("collections.abc")?.getattr("Sequence")?.unbind(),
        mapping_proxy: py.import("types")?.getattr("MappingProxyType")?.unbind(),
        signal: theus.getattr("Signal")?.unbind(),
        local: theus.getattr("Local")?.unbind(),
        state_update: theus.getattr("StateUpdate")?.unbind(),
        change: theus.getattr("Change")?.unbind(),
        changes: theus.getattr("Changes")?.unbind(),
        outbox_buffer: theus.getattr("OutboxBuffer")?.unbind(),
        tuple_new: builtins.getattr("tuple")?.getattr("__new__")?.unbind(),
        object_new: builtins.getattr("object")?.getattr("__new__")?.unbind(),
        sorted: builtins.getattr("sorted")?.unbind(),
        frozenset: builtins.getattr("frozenset")?.unbind(),
        logger: py
            .import("logging")?
            .call_method1("getLogger", ("theus",))?
            .unbind(),
    })
}

/// The imported Python objects (the module init has loaded them).
#[inline]
pub(crate) fn api(py: Python<'_>) -> &Api {
    API.get(py).expect("theus_rust._native was initialised")
}

/// The Rust core of the Theus `rust` backend.
#[pymodule]
fn _native(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    let loaded = load_api(py)?;
    let _ = API.set(py, loaded);
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::Handle>()?;
    m.add_class::<hub::Hub>()?;
    m.add_class::<flux_expr::NativeExpression>()?;
    m.add_class::<hub::Receiver>()?;
    m.add_class::<pipeline::Watcher>()?;
    m.add_class::<pipeline::BaseRef>()?;
    m.add_class::<snapshot::Snapshot>()?;
    m.add_class::<tx::Tx>()?;
    m.add_class::<tx::Ctx>()?;
    m.add_class::<views::MapView>()?;
    m.add_class::<views::ListView>()?;
    m.add("HISTORY_CAPACITY", theus_core::HISTORY_CAPACITY)?;
    Ok(())
}
