//! `Snapshot`: one immutable version of the state (spec `01`), a mapping of namespaces.

use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyKeyError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use theus_core::Path;

use crate::convert::{thaw, wrap};
use crate::errors::{invalid_path, read_only};
use crate::{api, Leaf};

/// One version of the state: `version`, `domain`, `global_`, `["ns"]`, `get(path)`,
/// `signals`, `to_dict()`. Immutable: every mutation attempt raises `ContextError`.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct Snapshot {
    pub(crate) snap: Arc<theus_core::Snapshot<Leaf>>,
}

/// Parse a dotted path given from Python (`InvalidPathError` for anything malformed).
pub(crate) fn parse_path(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Path> {
    let Ok(text) = path.cast::<PyString>() else {
        return Err(invalid_path(
            py,
            format!(
                "a path must be a str, not {}: {}",
                path.get_type().name()?,
                path.repr()?
            ),
        ));
    };
    let Ok(text) = text.to_str() else {
        return Err(invalid_path(
            py,
            format!(
                "invalid path {}: it contains a lone surrogate; paths must be valid Unicode",
                path.repr()?
            ),
        ));
    };
    Path::parse(text).map_err(|e| invalid_path(py, e.to_string()))
}

impl Snapshot {
    fn namespace(&self, py: Python<'_>, name: &str) -> Option<PyResult<Py<PyAny>>> {
        let value = self.snap.root().get(name)?;
        let path = Path::from_segments([name]).ok()?;
        Some(wrap(py, value, path))
    }
}

#[pymethods]
impl Snapshot {
    /// The version: 0 for the initial context, +1 per commit.
    #[getter]
    fn version(&self) -> u64 {
        self.snap.version()
    }

    /// The `domain` namespace.
    #[getter]
    fn domain(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.namespace(py, "domain")
            .unwrap_or_else(|| Err(PyAttributeError::new_err("domain")))
    }

    /// The `global` namespace.
    #[getter]
    fn global_(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.namespace(py, "global")
            .unwrap_or_else(|| Err(PyAttributeError::new_err("global")))
    }

    /// Signals committed by the commit that made this version (path → value), read-only.
    #[getter]
    fn signals(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let dict = PyDict::new(py);
        for (path, value) in self.snap.signals() {
            dict.set_item(path.to_string(), value.bind(py))?;
        }
        Ok(api(py).mapping_proxy.bind(py).call1((dict,))?.unbind())
    }

    /// The value at a dotted path (signal paths included), or `default`.
    #[pyo3(signature = (path, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let path = parse_path(py, path)?;
        if let Some(value) = self.snap.signal(&path) {
            return Ok(value.get(py));
        }
        match self.snap.get(&path) {
            Some(value) => wrap(py, value, path),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// A deep, plain, mutable copy of the data tree.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        thaw(py, &theus_core::Value::Map(self.snap.root().clone()))
    }

    fn __getitem__(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let found = name
            .cast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok())
            .and_then(|s| self.namespace(py, s));
        found.unwrap_or_else(|| Err(PyKeyError::new_err(name.clone().unbind())))
    }

    fn __getattr__(slf: &Bound<'_, Self>, name: &str) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if name.starts_with("__") {
            return Err(PyAttributeError::new_err(name.to_owned()));
        }
        if let Some(found) = me.namespace(py, name) {
            return found;
        }
        // Theus 3 spellings (spec `19`): aliases, `state.data`; `state.signal` says what to write.
        let alias = match name {
            "domain_ctx" => Some("domain"),
            "global_ctx" => Some("global"),
            _ => None,
        };
        if let Some(found) = alias.and_then(|a| me.namespace(py, a)) {
            return found;
        }
        match name {
            "data" => Ok(slf.clone().into_any().unbind()),
            "signal" => Err(PyAttributeError::new_err(
                "the state has no attribute 'signal': the signals the last commit published \
                 are state.signals (dotted path -> value) (spec/19)",
            )),
            _ => Err(PyAttributeError::new_err(format!(
                "the state has no namespace '{name}'"
            ))),
        }
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> bool {
        name.cast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok())
            .is_some_and(|s| self.snap.root().contains_key(s))
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.keys(py)?.bind(py).try_iter()?.into_any().unbind())
    }

    fn __len__(&self) -> usize {
        self.snap.root().len()
    }

    /// The namespace names, in key order.
    fn keys(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let names: Vec<&str> = self.snap.root().keys().map(|k| &**k).collect();
        Ok(PyList::new(py, names)?.unbind())
    }

    /// `(name, view)` pairs.
    fn items(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let mut out = Vec::new();
        for (name, value) in self.snap.root().iter() {
            let path =
                Path::from_segments([name.clone()]).map_err(|e| invalid_path(py, e.to_string()))?;
            let item = wrap(py, value, path)?;
            out.push(PyTuple::new(
                py,
                [PyString::new(py, name).into_any().unbind(), item],
            )?);
        }
        Ok(PyList::new(py, out)?.unbind())
    }

    /// The namespaces as views.
    fn values(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let mut out = Vec::new();
        for (name, value) in self.snap.root().iter() {
            let path =
                Path::from_segments([name.clone()]).map_err(|e| invalid_path(py, e.to_string()))?;
            out.push(wrap(py, value, path)?);
        }
        Ok(PyList::new(py, out)?.unbind())
    }

    fn __setattr__(&self, py: Python<'_>, name: &str, _value: Py<PyAny>) -> PyResult<()> {
        Err(read_only(py, name, "assign"))
    }

    fn __delattr__(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        Err(read_only(py, name, "delete"))
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        _value: Py<PyAny>,
    ) -> PyResult<()> {
        Err(read_only(py, &name.str()?.to_string(), "assign"))
    }

    fn __delitem__(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(read_only(py, &name.str()?.to_string(), "delete"))
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "snapshots cannot be pickled; pickle snapshot.to_dict()",
        ))
    }

    fn __reduce_ex__(&self, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let _ = protocol;
        self.__reduce__()
    }

    /// A snapshot is immutable: its copy is itself.
    fn __copy__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// A snapshot is immutable: its deep copy is itself.
    fn __deepcopy__(slf: Py<Self>, _memo: &Bound<'_, PyAny>) -> Py<Self> {
        slf
    }

    fn __repr__(&self) -> String {
        let names: Vec<&str> = self.snap.root().keys().map(|k| &**k).collect();
        format!(
            "<Snapshot version={} namespaces={names:?}>",
            self.snap.version()
        )
    }
}
