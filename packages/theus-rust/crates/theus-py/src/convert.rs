//! Python values into the tree and back (spec `01` values, `03` zones): the reading of the
//! reference backend's `freeze`, `thaw` and `wrap`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PySet, PyString};
use theus_core::{is_valid_key, zone_of_key, PList, PMap, Path, Value, Zone};

use crate::errors::context_error;
use crate::tx::Tx;
use crate::views;
use crate::{api, Leaf};

/// The stored form of `obj` written at `path` in `zone`.
///
/// Maps (any `Mapping`) and lists become persistent maps and lists, recursively (the caller's
/// object is copied); sets become frozensets; heavy values stay as they are at any depth; a
/// view is replaced by its container (a guarded view of `tx` is a recorded whole read); every
/// other object is a leaf, by reference. Keys are validated, and a map written in the data zone
/// may not contain a signal key (`ContextError` naming the path).
pub(crate) fn freeze(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    path: &Path,
    zone: Zone,
    tx: Option<&Py<Tx>>,
) -> PyResult<Value<Leaf>> {
    let mut below = Vec::new();
    Freezer { py, path, tx }.freeze(obj, zone, &mut below)
}

struct Freezer<'a, 'py> {
    py: Python<'py>,
    path: &'a Path,
    tx: Option<&'a Py<Tx>>,
}

impl Freezer<'_, '_> {
    fn where_(&self, below: &[Arc<str>]) -> String {
        let mut text = self.path.to_string();
        for segment in below {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(segment);
        }
        text
    }

    fn freeze(
        &self,
        obj: &Bound<'_, PyAny>,
        zone: Zone,
        below: &mut Vec<Arc<str>>,
    ) -> PyResult<Value<Leaf>> {
        let py = self.py;
        if zone == Zone::Heavy && views::is_view(obj) {
            return Err(context_error(
                py,
                format!(
                    "cannot store a view at '{}': heavy values are kept by reference and a view \
                     is a window on a transaction; write view.to_dict() / view.to_list() instead",
                    self.where_(below)
                ),
            ));
        }
        if zone == Zone::Heavy
            || obj.is_exact_instance_of::<PyInt>()
            || obj.is_exact_instance_of::<PyString>()
            || obj.is_exact_instance_of::<PyFloat>()
            || obj.is_exact_instance_of::<PyBool>()
            || obj.is_none()
        {
            return Ok(Value::Leaf(Leaf::new(obj.clone().unbind())));
        }
        if let Some(value) = views::view_value(py, obj, self.tx)? {
            return Ok(value);
        }
        if let Ok(dict) = obj.cast::<PyDict>() {
            let mut map = PMap::new();
            for (key, item) in dict.iter() {
                self.entry(&mut map, &key, &item, zone, below)?;
            }
            return Ok(Value::Map(map));
        }
        if obj.is_instance_of::<PyList>() {
            let list = obj.cast::<PyList>()?;
            let mut items = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                below.push(i.to_string().into());
                let value = self.freeze(&item, zone, below);
                below.pop();
                items.push(value?);
            }
            return Ok(Value::List(items.into_iter().collect::<PList<Leaf>>()));
        }
        if obj.is_instance_of::<PySet>() {
            let frozen = api(py).frozenset.bind(py).call1((obj,))?;
            return Ok(Value::Leaf(Leaf::new(frozen.unbind())));
        }
        if obj.is_instance(api(py).mapping_abc.bind(py))? {
            let mut map = PMap::new();
            for pair in obj.call_method0("items")?.try_iter()? {
                let (key, item): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
                self.entry(&mut map, &key, &item, zone, below)?;
            }
            return Ok(Value::Map(map));
        }
        Ok(Value::Leaf(Leaf::new(obj.clone().unbind())))
    }

    fn entry(
        &self,
        map: &mut PMap<Leaf>,
        key: &Bound<'_, PyAny>,
        item: &Bound<'_, PyAny>,
        zone: Zone,
        below: &mut Vec<Arc<str>>,
    ) -> PyResult<()> {
        let py = self.py;
        let Some(text) = key
            .cast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok())
            .filter(|s| is_valid_key(s))
        else {
            return Err(context_error(
                py,
                format!(
                    "invalid key {} under '{}': keys are non-empty str without '.', other than \
                     '*' and '**'",
                    key.repr().map_or_else(|_| "?".into(), |r| r.to_string()),
                    self.where_(below)
                ),
            ));
        };
        let mut inner = zone;
        if zone == Zone::Data {
            inner = zone_of_key(text).unwrap_or(Zone::Data);
            if inner == Zone::Signal {
                return Err(context_error(
                    py,
                    format!(
                        "the map written at '{}' contains signal key '{text}'; signals are \
                         transient: write the signal path itself",
                        self.where_(below)
                    ),
                ));
            }
        }
        let key: Arc<str> = text.into();
        below.push(key.clone());
        let value = self.freeze(item, inner, below);
        below.pop();
        map.insert(key, value?);
        Ok(())
    }
}

/// A deep, plain, mutable copy of a stored value (dicts in key order, lists, leaves as stored).
pub(crate) fn thaw(py: Python<'_>, value: &Value<Leaf>) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Leaf(leaf) => leaf.get(py),
        Value::Map(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map.iter() {
                dict.set_item(PyString::new(py, key), thaw(py, item)?)?;
            }
            dict.into_any().unbind()
        }
        Value::List(list) => {
            let items = list
                .iter()
                .map(|item| thaw(py, item))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
    })
}

/// What a snapshot read returns: a read-only view for containers, the leaf itself otherwise.
pub(crate) fn wrap(py: Python<'_>, value: &Value<Leaf>, path: Path) -> PyResult<Py<PyAny>> {
    match value {
        Value::Leaf(leaf) => Ok(leaf.get(py)),
        _ => views::snapshot_view(py, path, value.clone()),
    }
}
