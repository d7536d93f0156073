//! `MapView` and `ListView`: read-only views of snapshots and guarded views of a transaction's
//! draft (spec `01`, `04`). A view holds its path and either the container itself (a snapshot
//! view) or its transaction and the core's navigation [`Node`] (a guarded view: every access
//! goes through the transaction, which checks the contract and records reads and writes).

use std::sync::Arc;

use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyAttributeError, PyIndexError, PyKeyError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PySlice, PyString, PyTuple};
use theus_core::{Error, Lookup, Node, PList, Path, Transaction, Value, WriteOp, Zone};

use crate::convert::{freeze, thaw, wrap};
use crate::errors::{context_error, missing_key, read_only, to_py, Shape};
use crate::tx::{with_tx, Tx};
use crate::{api, Leaf};

/// Where a view reads from.
pub(crate) enum Src {
    /// A snapshot view: the container itself.
    Snap(Value<Leaf>),
    /// A guarded view of a transaction's draft.
    Tx { tx: Py<Tx>, node: Node<Leaf> },
}

/// A map in the tree: `view.key`, `view["key"]`, the `Mapping` methods; writes only inside a
/// process (or a host transaction), and only on declared outputs.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct MapView {
    path: Path,
    src: Src,
}

/// A list in the tree: indexing, iteration, the `Sequence` methods; list mutators write only
/// inside a process (or a host transaction), and only on declared outputs.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct ListView {
    path: Path,
    src: Src,
}

/// A read-only view of a snapshot container.
pub(crate) fn snapshot_view(py: Python<'_>, path: Path, value: Value<Leaf>) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::List(_) => Py::new(
            py,
            ListView {
                path,
                src: Src::Snap(value),
            },
        )?
        .into_any(),
        _ => Py::new(
            py,
            MapView {
                path,
                src: Src::Snap(value),
            },
        )?
        .into_any(),
    })
}

/// A guarded view of a transaction's container.
pub(crate) fn guarded_view(py: Python<'_>, tx: &Py<Tx>, node: Node<Leaf>) -> PyResult<Py<PyAny>> {
    let path = node.path().clone();
    let list = matches!(node.cached_value(), Value::List(_));
    let src = Src::Tx {
        tx: tx.clone_ref(py),
        node,
    };
    Ok(if list {
        Py::new(py, ListView { path, src })?.into_any()
    } else {
        Py::new(py, MapView { path, src })?.into_any()
    })
}

/// The content of a view written as a value: a snapshot view's container, or a whole (recorded)
/// read of a guarded view of `tx`. `None` if `obj` is not a view.
pub(crate) fn view_value(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    tx: Option<&Py<Tx>>,
) -> PyResult<Option<Value<Leaf>>> {
    let resolve = |src: &Src| -> PyResult<Value<Leaf>> {
        match src {
            Src::Snap(value) => Ok(value.clone()),
            Src::Tx { tx: own, node } => match tx {
                Some(tx) if tx.is(own) => with_tx(py, tx, |txn| observe(py, txn, node)),
                _ => Err(context_error(
                    py,
                    format!(
                        "the view of '{}' belongs to another transaction and cannot be written \
                         here; write view.to_dict() / view.to_list() instead",
                        node.path()
                    ),
                )),
            },
        }
    };
    if let Ok(view) = obj.cast::<MapView>() {
        return resolve(&view.get().src).map(Some);
    }
    if let Ok(view) = obj.cast::<ListView>() {
        return resolve(&view.get().src).map(Some);
    }
    Ok(None)
}

/// Whether `obj` is a guarded view of `tx` at `path` (`view.x += [...]` assigns the mutated view
/// back to itself: a no-op).
pub(crate) fn is_own_view(obj: &Bound<'_, PyAny>, tx: &Py<Tx>, path: &Path) -> bool {
    let same = |src: &Src, p: &Path| matches!(src, Src::Tx { tx: t, .. } if t.is(tx)) && p == path;
    if let Ok(view) = obj.cast::<MapView>() {
        let v = view.get();
        return same(&v.src, &v.path);
    }
    if let Ok(view) = obj.cast::<ListView>() {
        let v = view.get();
        return same(&v.src, &v.path);
    }
    false
}

fn child_path(path: &Path, key: impl Into<Arc<str>>) -> Path {
    let key = key.into();
    path.child(key).unwrap_or_else(|_| path.clone())
}

fn dotted(path: &Path, key: &str) -> String {
    if path.is_root() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The error of a view whose container no longer exists in the draft.
fn vanished(py: Python<'_>, path: &Path) -> PyErr {
    context_error(py, format!("'{path}' no longer exists in this transaction"))
}

/// A recorded whole-container read of a guarded view's node.
fn observe(
    py: Python<'_>,
    txn: &mut Transaction<Leaf>,
    node: &Node<Leaf>,
) -> PyResult<Value<Leaf>> {
    txn.observe(node).map_err(|e| match e {
        Error::KeyMissing { .. } | Error::NotAContainer { .. } => vanished(py, node.path()),
        e => to_py(py, e, Shape::TypeError),
    })
}

fn whole(py: Python<'_>, src: &Src) -> PyResult<Value<Leaf>> {
    match src {
        Src::Snap(value) => Ok(value.clone()),
        Src::Tx { tx, node } => with_tx(py, tx, |txn| observe(py, txn, node)),
    }
}

/// The children of a container read as a whole, as what a read of each returns (views for
/// containers, bound to the same transaction for a guarded view).
type Children = Vec<(Arc<str>, Py<PyAny>)>;
type ItemFn<'a> = dyn FnMut(Arc<str>, &Value<Leaf>) -> PyResult<Py<PyAny>> + 'a;

fn children(py: Python<'_>, path: &Path, src: &Src) -> PyResult<Children> {
    let collect = |value: &Value<Leaf>, item: &mut ItemFn<'_>| -> PyResult<Children> {
        match value {
            Value::Map(map) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), item(k.clone(), v)?)))
                .collect(),
            Value::List(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let k: Arc<str> = i.to_string().into();
                    Ok((k.clone(), item(k, v)?))
                })
                .collect(),
            Value::Leaf(_) => Ok(Vec::new()),
        }
    };
    match src {
        Src::Snap(value) => collect(value, &mut |k, v| wrap(py, v, child_path(path, k))),
        Src::Tx { tx, node } => with_tx(py, tx, |txn| {
            let value = observe(py, txn, node)?;
            collect(&value, &mut |k, v| match v {
                Value::Leaf(leaf) => Ok(leaf.get(py)),
                _ => guarded_view(py, tx, txn.node_below(node, k, v.clone())),
            })
        }),
    }
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

/// The transaction of a guarded view, or the read-only error of a snapshot view.
fn writer<'a>(
    py: Python<'_>,
    path: &Path,
    src: &'a Src,
    what: &str,
    key: Option<&str>,
) -> PyResult<(&'a Py<Tx>, &'a Node<Leaf>)> {
    match src {
        Src::Tx { tx, node } => Ok((tx, node)),
        Src::Snap(_) => {
            let at = key.map_or_else(|| path.to_string(), |k| dotted(path, k));
            Err(read_only(py, &at, what))
        }
    }
}

/// A checked assignment of `value` at `path` in `tx` (contract, semantic, zones, then the value
/// is converted, then written). `by_view`: the parent is a view's container, so its absence
/// means the view outlived it (`ContextError`); by dotted path it is a `KeyError`.
pub(crate) fn set_path(
    py: Python<'_>,
    tx: &Py<Tx>,
    path: &Path,
    value: &Bound<'_, PyAny>,
    by_view: bool,
) -> PyResult<()> {
    if path.len() == 1 {
        let exists = with_tx(py, tx, |txn| {
            Ok(txn.draft().contains_key(&path.segments()[0]))
        })?;
        let mapping =
            value.cast::<MapView>().is_ok() || value.is_instance(api(py).mapping_abc.bind(py))?;
        if exists && !mapping {
            return Err(PyTypeError::new_err(format!(
                "namespace '{path}' must be assigned a mapping, not {}",
                value.get_type().name()?
            )));
        }
    }
    let zone = with_tx(py, tx, |txn| {
        txn.check_write(path, WriteOp::Set)
            .map_err(|e| to_py(py, e, Shape::ContextError))
    })?;
    let stored = if zone == Zone::Signal {
        // A signal value is frozen like data and read back as a read-only view (spec `03`);
        // the core keeps it as one opaque leaf.
        match freeze(py, value, path, Zone::Data, Some(tx))? {
            leaf @ Value::Leaf(_) => leaf,
            container => Value::Leaf(Leaf::new(snapshot_view(py, path.clone(), container)?)),
        }
    } else {
        freeze(py, value, path, zone, Some(tx))?
    };
    with_tx(py, tx, |txn| {
        txn.set(path, stored).map_err(|e| match e {
            Error::KeyMissing { .. } | Error::NotAContainer { .. } if by_view => {
                vanished(py, &path.parent().unwrap_or_else(|| path.clone()))
            }
            e => to_py(py, e, Shape::ContextError),
        })
    })
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
                "invalid key {} under '{path}': keys are non-empty str without '.'",
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

fn repr_of(py: Python<'_>, kind: &str, path: &Path, plain: PyResult<Py<PyAny>>) -> String {
    match plain.and_then(|p| Ok(p.bind(py).repr()?.to_string())) {
        Ok(text) => format!("{kind}('{path}', {text})"),
        Err(_) => format!("{kind}('{path}')"),
    }
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
        Ok(whole(py, &self.src)?.as_map().map_or(0, |m| m.len()))
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let value = whole(py, &self.src)?;
        Ok(key_text(key).is_some_and(|k| value.as_map().is_some_and(|m| m.contains_key(k))))
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.keys(py)?.bind(py).try_iter()?.into_any().unbind())
    }

    /// The keys, in key order.
    fn keys(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let value = whole(py, &self.src)?;
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
        thaw(py, &whole(py, &self.src)?)
    }

    /// A deep plain copy (same as `to_dict`).
    fn copy(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.to_dict(py)
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
        writer(py, &self.path, &self.src, "clear", None)?;
        let keys = self.keys(py)?;
        for key in keys.bind(py).iter() {
            delete_key(py, &self.path, &self.src, &key, false)?;
        }
        Ok(())
    }
}

/// The result of `==` / `!=` on a view, given whether the contents are equal.
fn compared(py: Python<'_>, equal: bool, op: CompareOp) -> Py<PyAny> {
    pyo3::types::PyBool::new(py, equal == matches!(op, CompareOp::Eq))
        .to_owned()
        .into_any()
        .unbind()
}

/// Views compare by content, so they cannot be hashed.
fn unhashable(class: &str) -> PyErr {
    PyTypeError::new_err(format!("unhashable type: '{class}'"))
}

/// Views are windows on a snapshot or a transaction: never pickled.
fn not_picklable() -> PyErr {
    PyTypeError::new_err("views cannot be pickled; use to_dict()/to_list()")
}

/// Whether `obj` is a map or list view (of a snapshot or of a transaction).
pub(crate) fn is_view(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<MapView>().is_ok() || obj.cast::<ListView>().is_ok()
}

/// A deep plain copy of a view (a whole read), or the object itself.
fn plain_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    if let Ok(view) = obj.cast::<MapView>() {
        return thaw(py, &whole(py, &view.get().src)?);
    }
    if let Ok(view) = obj.cast::<ListView>() {
        return thaw(py, &whole(py, &view.get().src)?);
    }
    Ok(obj.clone().unbind())
}

/// Checks of a list mutator: contract, zones, then the list itself. Returns the zone and the
/// list as it is in the draft.
fn check_list(
    py: Python<'_>,
    txn: &Transaction<Leaf>,
    path: &Path,
    op: WriteOp,
    verb: &str,
) -> PyResult<(Zone, PList<Leaf>)> {
    let zone = txn
        .check_write(path, op)
        .map_err(|e| to_py(py, e, Shape::TypeError))?;
    match txn.peek(path) {
        Some(Value::List(list)) => Ok((zone, list.clone())),
        Some(_) => Err(PyTypeError::new_err(format!(
            "cannot {verb} '{path}': it is not a list"
        ))),
        None => Err(PyKeyError::new_err(format!(
            "cannot {verb} '{path}': no such list"
        ))),
    }
}

fn list_err(py: Python<'_>) -> impl Fn(Error) -> PyErr + '_ {
    move |e| to_py(py, e, Shape::TypeError)
}

fn index_of(index: &Bound<'_, PyAny>) -> PyResult<isize> {
    if index.is_instance_of::<pyo3::types::PyBool>() || !index.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "list indices must be integers, not {}",
            index.get_type().name()?
        )));
    }
    index.extract()
}

impl ListView {
    fn len(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(whole(py, &self.src)?.as_list().map_or(0, |l| l.len()))
    }

    fn item(&self, py: Python<'_>, index: isize) -> PyResult<Py<PyAny>> {
        let out_of_range =
            || PyIndexError::new_err(format!("list index out of range at '{}'", self.path));
        let index = if index < 0 {
            let i = index + self.len(py)? as isize;
            if i < 0 {
                return Err(out_of_range());
            }
            i as usize
        } else {
            index as usize
        };
        match &self.src {
            Src::Snap(value) => match value.as_list().and_then(|l| l.get(index)) {
                Some(item) => wrap(py, item, child_path(&self.path, index.to_string())),
                None => Err(out_of_range()),
            },
            Src::Tx { tx, node } => {
                with_tx(py, tx, |txn| match txn.child(node, &index.to_string()) {
                    Ok(Lookup::Leaf(leaf)) => Ok(leaf.get(py)),
                    Ok(Lookup::Node(child)) => guarded_view(py, tx, child),
                    Err(Error::KeyMissing { path }) if path == self.path => {
                        Err(vanished(py, &self.path))
                    }
                    Err(Error::KeyMissing { .. }) => Err(out_of_range()),
                    Err(Error::NotAContainer { .. }) => Err(vanished(py, &self.path)),
                    Err(e) => Err(to_py(py, e, Shape::TypeError)),
                })
            }
        }
    }

    fn items(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        Ok(children(py, &self.path, &self.src)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    fn plain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        Ok(thaw(py, &whole(py, &self.src)?)?
            .into_bound(py)
            .cast_into::<PyList>()?)
    }

    /// Convert `value` for storage in this list (zone of the list, path of the new item).
    fn convert(
        &self,
        py: Python<'_>,
        tx: &Py<Tx>,
        value: &Bound<'_, PyAny>,
        zone: Zone,
        at: String,
    ) -> PyResult<Value<Leaf>> {
        freeze(py, value, &child_path(&self.path, at), zone, Some(tx))
    }
}

#[pymethods]
impl ListView {
    fn __getitem__(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Ok(slice) = index.cast::<PySlice>() {
            let items = self.items(py)?;
            let ind = slice.indices(items.len() as isize)?;
            let mut out = Vec::new();
            let mut i = ind.start;
            while (ind.step > 0 && i < ind.stop) || (ind.step < 0 && i > ind.stop) {
                out.push(items[i as usize].clone_ref(py));
                i += ind.step;
            }
            return Ok(PyList::new(py, out)?.into_any().unbind());
        }
        let index = index_of(index)?;
        self.item(py, index)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.len(py)
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let items = PyList::new(py, self.items(py)?)?;
        Ok(items.try_iter()?.into_any().unbind())
    }

    fn __reversed__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut items = self.items(py)?;
        items.reverse();
        Ok(PyList::new(py, items)?.try_iter()?.into_any().unbind())
    }

    fn __contains__(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.plain(py)?.contains(value)
    }

    /// The first index of `value`.
    #[pyo3(signature = (value, start = 0, stop = None))]
    fn index(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        start: isize,
        stop: Option<isize>,
    ) -> PyResult<Py<PyAny>> {
        let items = self.plain(py)?;
        let stop = stop.unwrap_or(items.len() as isize);
        Ok(items.call_method1("index", (value, start, stop))?.unbind())
    }

    /// How many items equal `value`.
    fn count(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        Ok(self.plain(py)?.call_method1("count", (value,))?.unbind())
    }

    /// A deep plain copy.
    fn to_list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        thaw(py, &whole(py, &self.src)?)
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
        let other_list = if let Ok(view) = other.cast::<ListView>() {
            view.get().to_list(py)?.into_bound(py)
        } else if other.is_instance_of::<PyList>() || other.is_instance_of::<PyTuple>() {
            py.get_type::<PyList>().call1((other,))?
        } else if other.hasattr(intern!(py, "to_list"))?
            && other.is_instance(api(py).sequence_abc.bind(py))?
        {
            other.call_method0(intern!(py, "to_list"))? // another backend's list view
        } else {
            return Ok(py.NotImplemented());
        };
        let equal = self.to_list(py)?.bind(py).eq(other_list)?;
        Ok(compared(py, equal, op))
    }

    fn __hash__(&self) -> PyResult<isize> {
        Err(unhashable("ListView"))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        repr_of(py, "ListView", &self.path, self.to_list(py))
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(not_picklable())
    }

    fn __setattr__(&self, key: &str, _value: Py<PyAny>) -> PyResult<()> {
        Err(PyAttributeError::new_err(format!(
            "cannot set attribute '{key}' on a list view"
        )))
    }

    /// Append `value`.
    fn append(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "append", None)?;
        let (zone, list) = with_tx(py, tx, |txn| {
            check_list(py, txn, &self.path, WriteOp::Append, "append to")
        })?;
        let stored = self.convert(py, tx, value, zone, list.len().to_string())?;
        with_tx(py, tx, |txn| {
            txn.append(&self.path, stored).map_err(list_err(py))
        })
    }

    /// Append every item of `values`.
    fn extend(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let items: Vec<Bound<'_, PyAny>> = values.try_iter()?.collect::<PyResult<_>>()?;
        let (tx, _) = writer(py, &self.path, &self.src, "extend", None)?;
        let (zone, list) = with_tx(py, tx, |txn| {
            check_list(py, txn, &self.path, WriteOp::Extend, "extend")
        })?;
        let base = list.len();
        let stored = items
            .iter()
            .enumerate()
            .map(|(i, v)| self.convert(py, tx, v, zone, (base + i).to_string()))
            .collect::<PyResult<Vec<_>>>()?;
        with_tx(py, tx, |txn| {
            txn.extend(&self.path, stored).map_err(list_err(py))
        })
    }

    fn __iadd__(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        self.extend(py, values)
    }

    /// Insert `value` before `index`.
    fn insert(&self, py: Python<'_>, index: isize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "insert into", None)?;
        let (zone, list) = with_tx(py, tx, |txn| {
            check_list(py, txn, &self.path, WriteOp::Insert, "insert into")
        })?;
        let len = list.len() as isize;
        let at = if index < 0 {
            (index + len).max(0)
        } else {
            index.min(len)
        } as usize;
        let stored = self.convert(py, tx, value, zone, index.to_string())?;
        with_tx(py, tx, |txn| {
            txn.insert(&self.path, at, stored).map_err(list_err(py))
        })
    }

    /// Remove and return the item at `index` (default last).
    #[pyo3(signature = (index = -1), text_signature = "($self, index=-1)")]
    fn pop(&self, py: Python<'_>, index: isize) -> PyResult<Py<PyAny>> {
        let (tx, _) = writer(py, &self.path, &self.src, "pop from", None)?;
        let removed = with_tx(py, tx, |txn| {
            let (_, list) = check_list(py, txn, &self.path, WriteOp::Pop, "pop from")?;
            let len = list.len() as isize;
            if len == 0 {
                return Err(PyIndexError::new_err("pop from empty list"));
            }
            let i = if index < 0 { index + len } else { index };
            if !(0..len).contains(&i) {
                return Err(PyIndexError::new_err("pop index out of range"));
            }
            txn.pop(&self.path, i as usize).map_err(list_err(py))
        })?;
        thaw(py, &removed)
    }

    /// Remove the first item equal to `value`.
    fn remove(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "remove from", None)?;
        let (_, list) = with_tx(py, tx, |txn| {
            check_list(py, txn, &self.path, WriteOp::Pop, "remove from")
        })?;
        let plain = thaw(py, &Value::List(list))?;
        let index: usize = plain.bind(py).call_method1("index", (value,))?.extract()?;
        with_tx(py, tx, |txn| {
            txn.pop(&self.path, index).map(|_| ()).map_err(list_err(py))
        })
    }

    /// Remove every item.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "clear", None)?;
        with_tx(py, tx, |txn| {
            check_list(py, txn, &self.path, WriteOp::Clear, "clear")?;
            txn.clear(&self.path).map_err(list_err(py))
        })
    }

    /// Sort in place (in the draft).
    #[pyo3(signature = (*, key = None, reverse = false))]
    fn sort(&self, py: Python<'_>, key: Option<&Bound<'_, PyAny>>, reverse: bool) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "sort", None)?;
        let (_, list) = with_tx(py, tx, |txn| {
            txn.check_write(&self.path, WriteOp::Clear)
                .map_err(list_err(py))?;
            check_list(py, txn, &self.path, WriteOp::Set, "sort")
        })?;
        let mut keys = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            keys.push(match key {
                None => thaw(py, item)?,
                Some(f) => f
                    .call1((wrap(py, item, child_path(&self.path, i.to_string()))?,))?
                    .unbind(),
            });
        }
        let keys = PyList::new(py, keys)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("key", keys.getattr("__getitem__")?)?;
        kwargs.set_item("reverse", reverse)?;
        let order = api(py).sorted.bind(py).call(
            (pyo3::types::PyRange::new(py, 0, list.len() as isize)?,),
            Some(&kwargs),
        )?;
        let mut sorted = Vec::with_capacity(list.len());
        for i in order.try_iter()? {
            let i: usize = i?.extract()?;
            if let Some(item) = list.get(i) {
                sorted.push(item.clone());
            }
        }
        let sorted: PList<Leaf> = sorted.into_iter().collect();
        with_tx(py, tx, |txn| {
            txn.set(&self.path, Value::List(sorted))
                .map_err(list_err(py))
        })
    }

    /// Reverse in place (in the draft).
    fn reverse(&self, py: Python<'_>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "reverse", None)?;
        with_tx(py, tx, |txn| {
            txn.check_write(&self.path, WriteOp::Clear)
                .map_err(list_err(py))?;
            let (_, list) = check_list(py, txn, &self.path, WriteOp::Set, "reverse")?;
            let mut items: Vec<Value<Leaf>> = list.iter().cloned().collect();
            items.reverse();
            let reversed: PList<Leaf> = items.into_iter().collect();
            txn.set(&self.path, Value::List(reversed))
                .map_err(list_err(py))
        })
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let index = index_of(index)?;
        let (tx, _) = writer(
            py,
            &self.path,
            &self.src,
            "assign",
            Some(&index.to_string()),
        )?;
        let len = with_tx(py, tx, |txn| match txn.peek(&self.path) {
            Some(Value::List(l)) => Ok(l.len() as isize),
            _ => Err(vanished(py, &self.path)),
        })?;
        let i = if index < 0 { index + len } else { index };
        if !(0..len).contains(&i) {
            return Err(PyIndexError::new_err(format!(
                "list assignment index out of range at '{}'",
                self.path
            )));
        }
        let item = child_path(&self.path, i.to_string());
        set_path(py, tx, &item, value, true)
    }

    fn __delitem__(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "delete from", None)?;
        let (_, list) = with_tx(py, tx, |txn| {
            check_list(py, txn, &self.path, WriteOp::Pop, "delete from")
        })?;
        let len = list.len() as isize;
        if let Ok(slice) = index.cast::<PySlice>() {
            let ind = slice.indices(len)?;
            let mut drop = vec![false; list.len()];
            let mut i = ind.start;
            while (ind.step > 0 && i < ind.stop) || (ind.step < 0 && i > ind.stop) {
                drop[i as usize] = true;
                i += ind.step;
            }
            let kept: PList<Leaf> = list
                .iter()
                .zip(drop)
                .filter(|(_, d)| !d)
                .map(|(v, _)| v.clone())
                .collect();
            return with_tx(py, tx, |txn| {
                txn.set(&self.path, Value::List(kept)).map_err(list_err(py))
            });
        }
        let index = index_of(index)?;
        let i = if index < 0 { index + len } else { index };
        if !(0..len).contains(&i) {
            return Err(PyIndexError::new_err("list assignment index out of range"));
        }
        with_tx(py, tx, |txn| {
            txn.pop(&self.path, i as usize)
                .map(|_| ())
                .map_err(list_err(py))
        })
    }
}
