//! Python values into the tree and back (spec `01` values, `03` zones): the reading of the
//! reference backend's `freeze`, `thaw` and `wrap`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PySet, PyString};
use theus_core::{is_valid_key, zone_of_key, PList, PMap, Path, Value, Zone, MAX_DEPTH};

use crate::errors::{context_error, depth_limit};
use crate::tx::Tx;
use crate::views;
use crate::{api, Leaf};

/// The stored form of `obj` written at `path` in `zone`.
///
/// Maps (any `Mapping`) and lists become persistent maps and lists, recursively (the caller's
/// object is copied); sets become frozensets; heavy values stay as they are at any depth; a
/// view is replaced by its container (a guarded view of `tx` is a recorded whole read); every
/// other object is a leaf, by reference. Keys are validated, and a map written in the data zone
/// may not contain a signal key (`ContextError` naming the path). No value may sit deeper than
/// [`MAX_DEPTH`] segments and a value containing itself is refused (`DepthLimitError`, spec
/// `01`). Iterative: the native stack does not grow with the input's depth.
pub(crate) fn freeze<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    path: &Path,
    zone: Zone,
    tx: Option<&Py<Tx>>,
) -> PyResult<Value<Leaf>> {
    Freezer {
        py,
        path,
        tx,
        below: Vec::new(),
    }
    .run(obj, zone)
}

/// A container being frozen: its object (for cycle detection), its zone, what is built so far
/// and the children still to visit.
struct Frame<'py> {
    ptr: usize,
    zone: Zone,
    kind: FrameKind<'py>,
}

type Pairs<'py> = std::vec::IntoIter<(Bound<'py, PyAny>, Bound<'py, PyAny>)>;

enum FrameKind<'py> {
    Map {
        out: PMap<Leaf>,
        items: Pairs<'py>,
    },
    List {
        out: Vec<Value<Leaf>>,
        items: std::vec::IntoIter<Bound<'py, PyAny>>,
    },
}

impl Frame<'_> {
    fn put(&mut self, key: Arc<str>, value: Value<Leaf>) {
        match &mut self.kind {
            FrameKind::Map { out, .. } => {
                out.insert(key, value);
            }
            FrameKind::List { out, .. } => out.push(value),
        }
    }

    fn finish(self) -> Value<Leaf> {
        match self.kind {
            FrameKind::Map { out, .. } => Value::Map(out),
            FrameKind::List { out, .. } => Value::List(out.into_iter().collect::<PList<Leaf>>()),
        }
    }
}

/// What [`Freezer::start`] made of one object.
enum Step<'py> {
    Done(Value<Leaf>),
    Open(Frame<'py>),
}

struct Freezer<'a, 'py> {
    py: Python<'py>,
    path: &'a Path,
    tx: Option<&'a Py<Tx>>,
    /// The segments from `path` to the value being frozen.
    below: Vec<Arc<str>>,
}

/// The dotted text of `segments`, with the middle elided when there are many.
pub(crate) fn show_segments<S: AsRef<str>>(segments: &[S]) -> String {
    let join = |part: &[S]| part.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(".");
    if segments.len() <= 16 {
        return join(segments);
    }
    format!(
        "{}...({} segments)...{}",
        join(&segments[..8]),
        segments.len() - 16,
        join(&segments[segments.len() - 8..])
    )
}

impl<'py> Freezer<'_, 'py> {
    fn segments(&self, below: usize) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = self.path.segments().to_vec();
        out.extend(self.below[..below].iter().cloned());
        out
    }

    fn where_(&self) -> String {
        show_segments(&self.segments(self.below.len()))
    }

    fn depth(&self) -> usize {
        self.path.len() + self.below.len()
    }

    /// The error for a value reached deeper than the limit; names where a cycle closes when
    /// one of the enclosing containers repeats.
    fn too_deep(&self, stack: &[Frame<'py>]) -> PyErr {
        let base = show_segments(self.path.segments());
        let mut first = std::collections::HashMap::new();
        for (j, frame) in stack.iter().enumerate() {
            let i = *first.entry(frame.ptr).or_insert(j);
            if i != j {
                let kind = match frame.kind {
                    FrameKind::Map { .. } => "map",
                    FrameKind::List { .. } => "list",
                };
                return depth_limit(
                    self.py,
                    format!(
                        "the value written at '{base}' contains itself: the {kind} at '{}' \
                         appears again inside itself at '{}'; a cyclic value cannot be stored",
                        show_segments(&self.segments(i)),
                        show_segments(&self.segments(j)),
                    ),
                );
            }
        }
        let all = self.segments(self.below.len());
        depth_limit(
            self.py,
            format!(
                "the value written at '{base}' is nested too deeply: '{}' would have more than \
                 {MAX_DEPTH} segments (the depth limit)",
                show_segments(&all[..all.len().min(MAX_DEPTH + 1)])
            ),
        )
    }

    fn run(mut self, obj: &Bound<'py, PyAny>, zone: Zone) -> PyResult<Value<Leaf>> {
        if self.depth() > MAX_DEPTH {
            return Err(self.too_deep(&[]));
        }
        let mut stack = match self.start(obj, zone)? {
            Step::Done(value) => return Ok(value),
            Step::Open(frame) => vec![frame],
        };
        loop {
            let top = stack.last_mut().expect("not empty");
            let zone = top.zone;
            let next = match &mut top.kind {
                FrameKind::Map { items, .. } => match items.next() {
                    Some((key, item)) => {
                        let (key, inner) = self.key(&key, zone)?;
                        Some((key, item, inner))
                    }
                    None => None,
                },
                FrameKind::List { out, items } => items
                    .next()
                    .map(|item| (Arc::<str>::from(out.len().to_string()), item, zone)),
            };
            match next {
                Some((key, item, inner)) => {
                    self.below.push(key.clone());
                    if self.depth() > MAX_DEPTH {
                        return Err(self.too_deep(&stack));
                    }
                    match self.start(&item, inner)? {
                        Step::Done(value) => {
                            self.below.pop();
                            stack.last_mut().expect("not empty").put(key, value);
                        }
                        Step::Open(frame) => stack.push(frame),
                    }
                }
                None => {
                    let value = stack.pop().expect("not empty").finish();
                    let Some(parent) = stack.last_mut() else {
                        return Ok(value);
                    };
                    let key = self.below.pop().expect("a child has a segment");
                    parent.put(key, value);
                }
            }
        }
    }

    /// A leaf or finished value, or a container frame to fill.
    fn start(&self, obj: &Bound<'py, PyAny>, zone: Zone) -> PyResult<Step<'py>> {
        let py = self.py;
        if zone == Zone::Heavy && views::is_view(obj) {
            return Err(context_error(
                py,
                format!(
                    "cannot store a view at '{}': heavy values are kept by reference and a view \
                     is a window on a transaction; write view.to_dict() / view.to_list() instead",
                    self.where_()
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
            return Ok(Step::Done(Value::Leaf(Leaf::new(obj.clone().unbind()))));
        }
        if let Some(value) = views::view_value(py, obj, self.tx)? {
            if views::view_depth(obj).is_none_or(|origin| origin < self.depth()) {
                check_height(py, &value, &self.segments(self.below.len()))?;
            }
            return Ok(Step::Done(value));
        }
        let ptr = obj.as_ptr() as usize;
        let map_frame = |items: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>| {
            Ok(Step::Open(Frame {
                ptr,
                zone,
                kind: FrameKind::Map {
                    out: PMap::new(),
                    items: items.into_iter(),
                },
            }))
        };
        if let Ok(dict) = obj.cast::<PyDict>() {
            return map_frame(dict.iter().collect());
        }
        if obj.is_instance_of::<PyList>() {
            let list = obj.cast::<PyList>()?;
            let items: Vec<_> = list.iter().collect();
            return Ok(Step::Open(Frame {
                ptr,
                zone,
                kind: FrameKind::List {
                    out: Vec::with_capacity(items.len()),
                    items: items.into_iter(),
                },
            }));
        }
        if obj.is_instance_of::<PySet>() {
            let frozen = api(py).frozenset.bind(py).call1((obj,))?;
            return Ok(Step::Done(Value::Leaf(Leaf::new(frozen.unbind()))));
        }
        if obj.is_instance(api(py).mapping_abc.bind(py))? {
            let mut items = Vec::new();
            for pair in obj.call_method0("items")?.try_iter()? {
                let (key, item): (Bound<'py, PyAny>, Bound<'py, PyAny>) = pair?.extract()?;
                items.push((key, item));
            }
            return map_frame(items);
        }
        Ok(Step::Done(Value::Leaf(Leaf::new(obj.clone().unbind()))))
    }

    /// A validated key of the map being frozen and the zone of its value.
    fn key(&self, key: &Bound<'py, PyAny>, zone: Zone) -> PyResult<(Arc<str>, Zone)> {
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
                     '*' and '**', and valid Unicode (no lone surrogates)",
                    key.repr().map_or_else(|_| "?".into(), |r| r.to_string()),
                    self.where_()
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
                        self.where_()
                    ),
                ));
            }
        }
        Ok((text.into(), inner))
    }
}

/// `DepthLimitError` if the stored `value` does not fit at `at` (its deepest item would sit
/// below [`MAX_DEPTH`] segments). Iterative.
pub(crate) fn check_height(py: Python<'_>, value: &Value<Leaf>, at: &[Arc<str>]) -> PyResult<()> {
    let Some(room) = MAX_DEPTH.checked_sub(at.len()) else {
        return Err(depth_limit(
            py,
            format!(
                "cannot store a value at '{}': more than {MAX_DEPTH} segments (the depth limit)",
                show_segments(&at[..MAX_DEPTH + 1])
            ),
        ));
    };
    // The segment of each container visited (and of the item over the limit), with the index
    // of its parent's entry (`usize::MAX` for `value` itself).
    let mut names: Vec<(usize, Arc<str>)> = Vec::new();
    let mut stack: Vec<(&Value<Leaf>, usize, usize)> = vec![(value, 0, usize::MAX)];
    while let Some((node, depth, name)) = stack.pop() {
        let children: Vec<(Arc<str>, &Value<Leaf>)> = match node {
            Value::Map(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::List(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (Arc::<str>::from(i.to_string()), v))
                .collect(),
            Value::Leaf(_) => continue,
        };
        for (key, item) in children {
            if depth + 1 > room {
                let mut tail = vec![key];
                let mut at_name = name;
                while at_name != usize::MAX {
                    let (parent, key) = &names[at_name];
                    tail.push(key.clone());
                    at_name = *parent;
                }
                tail.reverse();
                let full: Vec<Arc<str>> = at.iter().cloned().chain(tail).collect();
                return Err(depth_limit(
                    py,
                    format!(
                        "cannot store the value at '{}': its item '{}' would have more than \
                         {MAX_DEPTH} segments (the depth limit)",
                        show_segments(at),
                        show_segments(&full[..full.len().min(MAX_DEPTH + 1)])
                    ),
                ));
            }
            if item.is_container() {
                names.push((name, key));
                stack.push((item, depth + 1, names.len() - 1));
            }
        }
    }
    Ok(())
}

/// A deep, plain, mutable copy of a stored value (dicts in key order, lists, leaves as stored).
/// Iterative: the native stack does not grow with the value's depth.
pub(crate) fn thaw<'a, 'py>(py: Python<'py>, value: &'a Value<Leaf>) -> PyResult<Py<PyAny>> {
    if let Value::Leaf(leaf) = value {
        return Ok(leaf.get(py));
    }
    // A leaf as it is; a container as a new empty dict/list, filled when popped from `stack`.
    let plain =
        |item: &'a Value<Leaf>, stack: &mut Vec<(&'a Value<Leaf>, Bound<'py, PyAny>)>| match item {
            Value::Leaf(leaf) => leaf.bind(py).clone(),
            _ => {
                let inner = empty_like(py, item);
                stack.push((item, inner.clone()));
                inner
            }
        };
    let top = empty_like(py, value);
    let mut stack = vec![(value, top.clone())];
    while let Some((node, target)) = stack.pop() {
        match node {
            Value::Map(map) => {
                let dict = target.cast::<PyDict>()?;
                for (key, item) in map.iter() {
                    dict.set_item(PyString::new(py, key), plain(item, &mut stack))?;
                }
            }
            Value::List(list) => {
                let out = target.cast::<PyList>()?;
                for item in list.iter() {
                    out.append(plain(item, &mut stack))?;
                }
            }
            Value::Leaf(_) => {}
        }
    }
    Ok(top.unbind())
}

/// An empty dict for a map, an empty list otherwise.
fn empty_like<'py>(py: Python<'py>, value: &Value<Leaf>) -> Bound<'py, PyAny> {
    match value {
        Value::Map(_) => PyDict::new(py).into_any(),
        _ => PyList::empty(py).into_any(),
    }
}

/// What a snapshot read returns: a read-only view for containers, the leaf itself otherwise.
pub(crate) fn wrap(py: Python<'_>, value: &Value<Leaf>, path: Path) -> PyResult<Py<PyAny>> {
    match value {
        Value::Leaf(leaf) => Ok(leaf.get(py)),
        _ => views::snapshot_view(py, path, value.clone()),
    }
}
