//! `MapView` and `ListView`: read-only views of snapshots and guarded views of a transaction's
//! draft (spec `01`, `04`). A view holds its path and either the container itself (a snapshot
//! view) or its transaction and the core's navigation [`Node`] (a guarded view: every access
//! goes through the transaction, which checks the contract and records reads and writes).

use std::sync::Arc;

use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use theus_core::{Error, Node, Path, Transaction, Value, WriteOp, Zone};

use crate::convert::{freeze, wrap};
use crate::errors::{context_error, read_only, to_py, Shape};
use crate::tx::{with_tx, Tx};
use crate::{api, Leaf};

mod list;
mod map;

pub(crate) use list::ListView;
pub(crate) use map::MapView;

/// Where a view reads from.
enum Src {
    /// A snapshot view: the container itself.
    Snap(Value<Leaf>),
    /// A guarded view of a transaction's draft.
    Tx { tx: Py<Tx>, node: Node<Leaf> },
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
                Some(tx) if tx.is(own) => with_tx(py, tx, |txn| observe(py, txn, node, None)),
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

/// The number of segments of the path a map or list view was read at (`None`: not a view).
pub(crate) fn view_depth(obj: &Bound<'_, PyAny>) -> Option<usize> {
    if let Ok(view) = obj.cast::<MapView>() {
        return Some(view.get().path.len());
    }
    obj.cast::<ListView>()
        .ok()
        .map(|view| view.get().path.len())
}

/// Whether `obj` is a map or list view (of a snapshot or of a transaction).
pub(crate) fn is_view(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<MapView>().is_ok() || obj.cast::<ListView>().is_ok()
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

/// A recorded whole-container read of a guarded view's node: everything in it (`visible`:
/// `None`), or what the process may see (meta values hidden from a pure process, spec `03`:
/// `Some(deep)`, see [`Transaction::observe_visible`]).
fn observe(
    py: Python<'_>,
    txn: &mut Transaction<Leaf>,
    node: &Node<Leaf>,
    visible: Option<bool>,
) -> PyResult<Value<Leaf>> {
    let seen = match visible {
        None => txn.observe(node),
        Some(deep) => txn.observe_visible(node, deep),
    };
    seen.map_err(|e| match e {
        Error::KeyMissing { .. } | Error::NotAContainer { .. } => vanished(py, node.path()),
        e => to_py(py, e, Shape::TypeError),
    })
}

/// The container of a view read as a whole, as the process may see it: its own keys (`deep`
/// false: `len`, `keys`, `in`) or its whole content (`to_dict`, `==`, `repr`).
fn whole(py: Python<'_>, src: &Src, deep: bool) -> PyResult<Value<Leaf>> {
    match src {
        Src::Snap(value) => Ok(value.clone()),
        Src::Tx { tx, node } => with_tx(py, tx, |txn| observe(py, txn, node, Some(deep))),
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
            let value = observe(py, txn, node, Some(false))?;
            collect(&value, &mut |k, v| match v {
                Value::Leaf(leaf) => Ok(leaf.get(py)),
                _ => guarded_view(py, tx, txn.node_below(node, k, v.clone())),
            })
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
            // a write by dotted path names its first missing or non-container ancestor
            Error::KeyMissing { path: missing } => PyKeyError::new_err(format!(
                "cannot write '{path}': '{missing}' does not exist"
            )),
            Error::NotAContainer { path: leaf, .. } => context_error(
                py,
                format!("cannot write '{path}': '{leaf}' is not a map or list"),
            ),
            e => to_py(py, e, Shape::ContextError),
        })
    })
}

/// The namespace a Theus 3 alias names (`ctx.domain_ctx`, `ctx.global_ctx`, spec `19`), else
/// `name` itself.
pub(crate) fn namespace_alias(name: &str) -> &str {
    match name {
        "domain_ctx" => "domain",
        "global_ctx" => "global",
        n => n,
    }
}

/// The `"map"` operation of an `Update` (the nested form of `data=`, spec `05`): nothing when
/// the draft holds a map at `path`, else a checked set of an empty map there.
pub(crate) fn ensure_map(py: Python<'_>, tx: &Py<Tx>, path: &Path) -> PyResult<()> {
    let present = with_tx(py, tx, |txn| Ok(matches!(txn.peek(path), Some(Value::Map(_)))))?;
    if present {
        return Ok(());
    }
    let empty = pyo3::types::PyDict::new(py);
    set_path(py, tx, path, empty.as_any(), false)
}

fn repr_of(py: Python<'_>, kind: &str, path: &Path, plain: PyResult<Py<PyAny>>) -> String {
    match plain.and_then(|p| Ok(p.bind(py).repr()?.to_string())) {
        Ok(text) => format!("{kind}('{path}', {text})"),
        Err(_) => format!("{kind}('{path}')"),
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
    PyTypeError::new_err("views cannot be pickled; pickle view.to_dict() / view.to_list()")
}
