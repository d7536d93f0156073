//! `ListView`: a view of a list in the tree, read-only over a snapshot or guarded over a
//! transaction's draft (indexing, iteration, the `Sequence` methods and the list mutators).

use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyAttributeError, PyIndexError, PyKeyError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PySlice, PyTuple};
use theus_core::{Error, Lookup, PList, Path, Transaction, Value, WriteOp, Zone};

use super::{
    child_path, children, compared, guarded_view, not_picklable, repr_of, set_path, unhashable,
    vanished, whole, writer, Src,
};
use crate::convert::{freeze, thaw, wrap};
use crate::errors::{to_py, Shape};
use crate::tx::{with_tx, Tx};
use crate::{api, Leaf};

/// A list in the tree: indexing, iteration, the `Sequence` methods; list mutators write only
/// inside a process (or a host transaction), and only on declared outputs.
#[pyclass(module = "theus_rust._native", frozen)]
pub(crate) struct ListView {
    pub(super) path: Path,
    pub(super) src: Src,
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
    saturating_index(index)
}

/// A list index argument (`pop(i)`, `insert(i, v)`): any int, saturated to `isize`.
pub(crate) struct SatIndex(isize);

impl<'a, 'py> FromPyObject<'a, 'py> for SatIndex {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        saturating_index(&obj.to_owned()).map(SatIndex)
    }
}

/// An int index as `isize`, saturated: `10**30` and `-10**30` are just out of range (or clamp,
/// for `insert`), never `OverflowError` (spec `01`).
fn saturating_index(index: &Bound<'_, PyAny>) -> PyResult<isize> {
    match index.extract::<isize>() {
        Ok(i) => Ok(i),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(index.py()) => {
            Ok(if index.lt(0)? { isize::MIN } else { isize::MAX })
        }
        Err(e) => Err(e),
    }
}

impl ListView {
    fn len(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(whole(py, &self.src, false)?
            .as_list()
            .map_or(0, |l| l.len()))
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
        Ok(thaw(py, &whole(py, &self.src, true)?)?
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
        thaw(py, &whole(py, &self.src, true)?)
    }

    fn __copy__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.to_list(py)
    }

    /// A deep plain copy (Theus 3's `list.copy()`; same as `to_list`).
    fn copy(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.to_list(py)
    }

    /// `view + list`: a plain list (the view is read as a whole).
    fn __add__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let other = if let Ok(view) = other.cast::<ListView>() {
            view.get().to_list(py)?.into_bound(py)
        } else if other.is_instance_of::<PyList>() {
            other.clone()
        } else {
            return Ok(py.NotImplemented());
        };
        Ok(self.to_list(py)?.bind(py).add(other)?.unbind())
    }

    /// `list + view`: a plain list.
    fn __radd__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if !other.is_instance_of::<PyList>() {
            return Ok(py.NotImplemented());
        }
        Ok(other.add(self.to_list(py)?.bind(py))?.unbind())
    }

    /// `view * n`: a plain list.
    fn __mul__(&self, py: Python<'_>, n: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if n.is_instance_of::<pyo3::types::PyFloat>() || n.extract::<isize>().is_err() {
            return Ok(py.NotImplemented());
        }
        Ok(self.to_list(py)?.bind(py).mul(n)?.unbind())
    }

    /// `n * view`: a plain list.
    fn __rmul__(&self, py: Python<'_>, n: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.__mul__(py, n)
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.to_list(py)
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

    fn __reduce_ex__(&self, _protocol: &Bound<'_, PyAny>) -> PyResult<()> {
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
    fn insert(&self, py: Python<'_>, index: SatIndex, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let index = index.0;
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
        let stored = self.convert(py, tx, value, zone, at.to_string())?;
        with_tx(py, tx, |txn| {
            txn.insert(&self.path, at, stored).map_err(list_err(py))
        })
    }

    /// Remove and return the item at `index` (default last).
    #[pyo3(signature = (index = SatIndex(-1)), text_signature = "($self, index=-1)")]
    fn pop(&self, py: Python<'_>, index: SatIndex) -> PyResult<Py<PyAny>> {
        let index = index.0;
        let (tx, _) = writer(py, &self.path, &self.src, "pop from", None)?;
        let removed = with_tx(py, tx, |txn| {
            let (_, list) = check_list(py, txn, &self.path, WriteOp::Pop, "pop from")?;
            let len = list.len() as isize;
            if len == 0 {
                return Err(PyIndexError::new_err("pop from empty list"));
            }
            let i = if index < 0 { index + len } else { index };
            if !(0..len).contains(&i) {
                return Err(PyIndexError::new_err(format!(
                    "pop index out of range at '{}'",
                    self.path
                )));
            }
            txn.pop(&self.path, i as usize).map_err(list_err(py))
        })?;
        thaw(py, &removed)
    }

    /// Remove the first item equal to `value`.
    fn remove(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "remove from", None)?;
        let shown = with_tx(py, tx, |txn| {
            let (_, list) = check_list(py, txn, &self.path, WriteOp::Pop, "remove from")?;
            Ok(txn.visible(&self.path, &Value::List(list)))
        })?;
        let plain = thaw(py, &shown)?;
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
        let (list, shown) = with_tx(py, tx, |txn| {
            txn.check_write(&self.path, WriteOp::Sort)
                .map_err(list_err(py))?;
            let (_, list) = check_list(py, txn, &self.path, WriteOp::Set, "sort")?;
            let shown = txn.visible(&self.path, &Value::List(list.clone()));
            Ok((list, shown))
        })?;
        let Value::List(shown) = shown else {
            return Err(vanished(py, &self.path));
        };
        let mut keys = Vec::with_capacity(list.len());
        for (i, item) in shown.iter().enumerate() {
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
            txn.rewrite_list(&self.path, sorted).map_err(list_err(py))
        })
    }

    /// Reverse in place (in the draft).
    fn reverse(&self, py: Python<'_>) -> PyResult<()> {
        let (tx, _) = writer(py, &self.path, &self.src, "reverse", None)?;
        with_tx(py, tx, |txn| {
            txn.check_write(&self.path, WriteOp::Reverse)
                .map_err(list_err(py))?;
            let (_, list) = check_list(py, txn, &self.path, WriteOp::Set, "reverse")?;
            let mut items: Vec<Value<Leaf>> = list.iter().cloned().collect();
            items.reverse();
            let reversed: PList<Leaf> = items.into_iter().collect();
            txn.rewrite_list(&self.path, reversed).map_err(list_err(py))
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
                txn.rewrite_list(&self.path, kept).map_err(list_err(py))
            });
        }
        let index = index_of(index)?;
        let i = if index < 0 { index + len } else { index };
        if !(0..len).contains(&i) {
            return Err(PyIndexError::new_err(format!(
                "list assignment index out of range at '{}'",
                self.path
            )));
        }
        with_tx(py, tx, |txn| {
            txn.pop(&self.path, i as usize)
                .map(|_| ())
                .map_err(list_err(py))
        })
    }
}
