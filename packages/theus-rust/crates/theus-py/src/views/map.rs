//! `MapView`: a view of a map in the tree, read-only over a snapshot or guarded over a
//! transaction's draft (attribute and item access, the `Mapping` methods and map writes).

use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyAttributeError, PyKeyError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use theus_core::{Error, Lookup, Path};

use super::{
    child_path, children, compared, guarded_view, is_own_view, is_view, not_picklable, repr_of,
    set_path, unhashable, vanished, whole, writer, ListView, Src,
};
use crate::api;
use crate::convert::{thaw, wrap};
use crate::errors::{context_error, missing_key, to_py, Shape};
use crate::tx::with_tx;

/// A map in the tree: `view.key`, `view["key"]`, the `Mapping` methods; writes only inside a
/// process (or a host transaction), and only on declared outputs.
#[pyclass(module = "theus_rust._native", frozen)]
pub(crate) struct MapView {
    pub(super) path: Path,
    pub(super) src: Src,
}

/// The guarded lookup of `key` below a view.
fn read_key(py: Python<'_>, path: &Path, src: &Src, key: &str, attr: bool) -> PyResult<Py<PyAny>> {
    match src {
        Src::Snap(value) => match value.child(key) {
            Some(item) => wrap(py, item, child_path(path, key)),
            None => Err(missing_key(path, key, attr)),
        },
        Src::Tx { tx, node } => with_tx(py, tx, |txn| match txn.child(node, key) {
            Ok(Lookup::Leaf(leaf)) => Ok(leaf.get(py)),
            Ok(Lookup::Node(child)) => guarded_view(py, tx, child),
            Err(Error::KeyMissing { path: missing }) if &missing == path => Err(vanished(py, path)),
            Err(Error::KeyMissing { .. }) | Err(Error::InvalidPath { .. }) => {
                Err(missing_key(path, key, attr))
            }
            Err(Error::NotAContainer { .. }) => Err(vanished(py, path)),
            Err(e) => Err(to_py(py, e, Shape::TypeError)),
        }),
    }
}

fn write_key(
    py: Python<'_>,
    path: &Path,
    src: &Src,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let text = key.cast::<PyString>().ok().and_then(|s| s.to_str().ok());
    let (tx, _) = writer(py, path, src, "assign", Some(text.unwrap_or("?")))?;
    let Some(child) = text.and_then(|k| path.child(k).ok()) else {
        return Err(context_error(
            py,
            format!(
                "invalid key {} under '{path}': keys are non-empty str without '.', other than \
                 '*' and '**', and valid Unicode (no lone surrogates)",
                key.repr()?
            ),
        ));
    };
    if is_own_view(value, tx, &child) {
        return Ok(());
    }
    set_path(py, tx, &child, value, true)
}

fn delete_key(
    py: Python<'_>,
    path: &Path,
    src: &Src,
    key: &Bound<'_, PyAny>,
    attr: bool,
) -> PyResult<()> {
    let text = key.cast::<PyString>().ok().and_then(|s| s.to_str().ok());
    let (tx, _) = writer(py, path, src, "delete", Some(text.unwrap_or("?")))?;
    let Some((text, child)) = text.and_then(|k| Some((k, path.child(k).ok()?))) else {
        return Err(PyKeyError::new_err(key.clone().unbind()));
    };
    with_tx(py, tx, |txn| match txn.delete(&child) {
        Ok(_) => Ok(()),
        Err(Error::KeyMissing { path: missing }) if missing == child => {
            Err(missing_key(path, text, attr))
        }
        Err(e) => Err(to_py(py, e, Shape::ContextError)),
    })
}

fn key_text<'a>(key: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    key.cast::<PyString>().ok().and_then(|s| s.to_str().ok())
}

fn generic_getattr(slf: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
    // SAFETY: both pointers are valid objects for the duration of the call; the result is a new
    // reference or NULL with an exception set.
    unsafe {
        let ptr = ffi::PyObject_GenericGetAttr(slf.as_ptr(), name.as_ptr());
        Ok(Bound::from_owned_ptr_or_err(slf.py(), ptr)?.unbind())
    }
}

/// A deep plain copy of a view (a whole read), or the object itself.
fn plain_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    if let Ok(view) = obj.cast::<MapView>() {
        return thaw(py, &whole(py, &view.get().src, true)?);
    }
    if let Ok(view) = obj.cast::<ListView>() {
        return thaw(py, &whole(py, &view.get().src, true)?);
    }
    Ok(obj.clone().unbind())
}

#[pymethods]
impl MapView {
    fn __getattribute__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        let text = name.to_str()?;
        if text.starts_with("__")
            || matches!(
                text,
                "items"
                    | "keys"
                    | "values"
                    | "get"
                    | "update"
                    | "pop"
                    | "popitem"
                    | "copy"
                    | "clear"
                    | "setdefault"
                    | "to_dict"
            )
        {
            return generic_getattr(slf.as_any(), name);
        }
        let me = slf.get();
        read_key(slf.py(), &me.path, &me.src, text, true)
    }

    fn __getattr__(&self, name: &str) -> PyResult<Py<PyAny>> {
        Err(PyAttributeError::new_err(format!(
            "no key '{name}' at '{}'",
            self.path
        )))
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match key_text(key) {
            Some(text) => read_key(py, &self.path, &self.src, text, false),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    /// `view[key]`, or `default` when the key is missing.
    #[pyo3(signature = (key, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match self.__getitem__(py, key) {
            Err(e) if e.is_instance_of::<PyKeyError>(py) => {
                Ok(default.unwrap_or_else(|| py.None()))
            }
            other => other,
        }
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(whole(py, &self.src, false)?.as_map().map_or(0, |m| m.len()))
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let value = whole(py, &self.src, false)?;
        Ok(key_text(key).is_some_and(|k| value.as_map().is_some_and(|m| m.contains_key(k))))
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.keys(py)?.bind(py).try_iter()?.into_any().unbind())
    }

    /// The keys, in key order.
    fn keys(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let value = whole(py, &self.src, false)?;
        let keys: Vec<&str> = value
            .as_map()
            .map(|m| m.keys().map(|k| &**k).collect())
            .unwrap_or_default();
        Ok(PyList::new(py, keys)?.unbind())
    }

    /// `(key, value)` pairs in key order; containers as views.
    fn items(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let pairs = children(py, &self.path, &self.src)?;
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            out.push(PyTuple::new(
                py,
                [PyString::new(py, &k).into_any().unbind(), v],
            )?);
        }
        Ok(PyList::new(py, out)?.unbind())
    }

    /// The values in key order; containers as views.
    fn values(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let pairs = children(py, &self.path, &self.src)?;
        Ok(PyList::new(py, pairs.into_iter().map(|(_, v)| v))?.unbind())
    }

    /// A deep plain copy.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        thaw(py, &whole(py, &self.src, true)?)
    }

    fn __copy__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.to_dict(py)
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.to_dict(py)
    }

    /// A deep plain copy (same as `to_dict`).
    fn copy(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.to_dict(py)
    }

    /// `view | dict`: a plain dict (the view is read as a whole).
    fn __or__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let other = if let Ok(view) = other.cast::<MapView>() {
            view.get().to_dict(py)?.into_bound(py)
        } else if other.is_instance_of::<PyDict>() {
            other.clone()
        } else {
            return Ok(py.NotImplemented());
        };
        Ok(self.to_dict(py)?.bind(py).bitor(other)?.unbind())
    }

    /// `dict | view`: a plain dict.
    fn __ror__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if !other.is_instance_of::<PyDict>() {
            return Ok(py.NotImplemented());
        }
        Ok(other.bitor(self.to_dict(py)?.bind(py))?.unbind())
    }

    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Ok(py.NotImplemented());
        }
        let other_dict = if let Ok(view) = other.cast::<MapView>() {
            view.get().to_dict(py)?.into_bound(py)
        } else if other.is_instance(api(py).mapping_abc.bind(py))? {
            py.get_type::<PyDict>().call1((other,))?
        } else {
            return Ok(py.NotImplemented());
        };
        let equal = self.to_dict(py)?.bind(py).eq(other_dict)?;
        Ok(compared(py, equal, op))
    }

    fn __hash__(&self) -> PyResult<isize> {
        Err(unhashable("MapView"))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        repr_of(py, "MapView", &self.path, self.to_dict(py))
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(not_picklable())
    }

    fn __reduce_ex__(&self, _protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(not_picklable())
    }

    fn __setattr__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        write_key(py, &self.path, &self.src, key, value)
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        write_key(py, &self.path, &self.src, key, value)
    }

    fn __delattr__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        delete_key(py, &self.path, &self.src, key, true)
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        delete_key(py, &self.path, &self.src, key, false)
    }

    /// Write every pair of `other` and `kwargs`.
    #[pyo3(signature = (other = None, **kwargs))]
    fn update(
        &self,
        py: Python<'_>,
        other: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        writer(py, &self.path, &self.src, "update", None)?;
        let pairs = match other {
            Some(o) => py.get_type::<PyDict>().call1((o,))?.cast_into::<PyDict>()?,
            None => PyDict::new(py),
        };
        if let Some(kw) = kwargs {
            pairs.update(kw.as_mapping())?;
        }
        for (key, value) in pairs.iter() {
            write_key(py, &self.path, &self.src, &key, &value)?;
        }
        Ok(())
    }

    /// Remove `key` and return its value (or `default` when absent).
    #[pyo3(signature = (key, *default))]
    fn pop(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        writer(py, &self.path, &self.src, "pop from", None)?;
        let value = match self.__getitem__(py, key) {
            Ok(v) => v,
            Err(e) if e.is_instance_of::<PyKeyError>(py) && !default.is_empty() => {
                return Ok(default.get_item(0)?.unbind())
            }
            Err(e) => return Err(e),
        };
        let value = if is_view(value.bind(py)) {
            plain_of(py, value.bind(py))?
        } else {
            value
        };
        delete_key(py, &self.path, &self.src, key, false)?;
        Ok(value)
    }

    /// Remove and return the last pair in key order.
    fn popitem(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        writer(py, &self.path, &self.src, "pop from", None)?;
        let keys = self.keys(py)?;
        let keys = keys.bind(py);
        if keys.is_empty() {
            return Err(PyKeyError::new_err(format!(
                "popitem(): '{}' is empty",
                self.path
            )));
        }
        let last = keys.get_item(keys.len() - 1)?;
        let value = self.pop(py, &last, &PyTuple::empty(py))?;
        Ok((last.unbind(), value))
    }

    /// `view[key]`, inserting `default` first if the key is missing.
    #[pyo3(signature = (key, default = None))]
    fn setdefault(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        writer(py, &self.path, &self.src, "insert into", None)?;
        if !self.__contains__(py, key)? {
            let default = default.unwrap_or_else(|| py.None().into_bound(py));
            write_key(py, &self.path, &self.src, key, &default)?;
        }
        self.__getitem__(py, key)
    }

    /// Remove every key.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "clear", None)?;
        with_tx(py, tx, |txn| {
            txn.refuse_meta_below(&self.path)
                .map_err(|e| to_py(py, e, Shape::ContextError))
        })?;
        let keys = self.keys(py)?;
        for key in keys.bind(py).iter() {
            delete_key(py, &self.path, &self.src, &key, false)?;
        }
        Ok(())
    }
}
