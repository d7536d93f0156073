//! Values of the context tree: opaque leaves, persistent maps and persistent lists.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use imbl::Vector;

use crate::error::{Error, Result};
use crate::map::PMap;
use crate::path::{parse_index, segment_error, Path};

/// A value in the context tree, generic over the opaque leaf type `L`.
///
/// The Python crate uses a reference-counted Python object as `L`; tests use `i64` or `String`.
/// Heavy-zone values, signal values and every non-container are leaves: the core never looks
/// inside them. Cloning is O(1) for every variant whose leaf clones in O(1).
#[derive(Clone)]
pub enum Value<L: Clone> {
    /// An opaque value, stored and returned as is.
    Leaf(L),
    /// A frozen mapping.
    Map(PMap<L>),
    /// A frozen list.
    List(PList<L>),
}

/// A persistent list of [`Value`]s (an RRB vector): O(1) clone, O(log n) update, insert and
/// remove, untouched chunks shared between versions.
pub struct PList<L: Clone>(Arc<Vector<Value<L>>>);

impl<L: Clone> Value<L> {
    /// An empty map value.
    pub fn empty_map() -> Self {
        Value::Map(PMap::new())
    }

    /// An empty list value.
    pub fn empty_list() -> Self {
        Value::List(PList::new())
    }

    /// Whether this is a map or a list.
    #[inline]
    pub fn is_container(&self) -> bool {
        !matches!(self, Value::Leaf(_))
    }

    /// The leaf, if this is one.
    pub fn as_leaf(&self) -> Option<&L> {
        match self {
            Value::Leaf(l) => Some(l),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&PMap<L>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&PList<L>> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// A short name of the variant (`"map"`, `"list"`, `"leaf"`), for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Leaf(_) => "leaf",
            Value::Map(_) => "map",
            Value::List(_) => "list",
        }
    }

    /// The value one key below: a map key, or a list index given as a decimal segment.
    #[inline]
    pub fn child(&self, key: &str) -> Option<&Value<L>> {
        match self {
            Value::Map(m) => m.get(key),
            Value::List(l) => l.get(parse_index(key)?),
            Value::Leaf(_) => None,
        }
    }

    /// The value at a sequence of keys below this one (no zone rules; see
    /// [`crate::Snapshot::get`] for the heavy-aware lookup).
    pub fn at<S: AsRef<str>>(&self, segments: &[S]) -> Option<&Value<L>> {
        segments.iter().try_fold(self, |v, s| v.child(s.as_ref()))
    }

    /// Whether two containers share their storage (O(1)). Leaves are never `ptr_eq`.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Map(a), Value::Map(b)) => a.ptr_eq(b),
            (Value::List(a), Value::List(b)) => a.ptr_eq(b),
            _ => false,
        }
    }

    /// Check that every map key in this value is a valid key (spec `01`); `at` is where the
    /// value is (or will be) stored, used to name the offending path in [`Error::Context`].
    pub fn validate_keys(&self, at: &Path) -> Result<()> {
        // Iterative: the native stack does not grow with the value's depth.
        let mut stack: Vec<(&Value<L>, Path)> = vec![(self, at.clone())];
        while let Some((value, at)) = stack.pop() {
            match value {
                Value::Leaf(_) => {}
                Value::Map(m) => {
                    for (k, v) in m.iter() {
                        if let Some(why) = segment_error(k) {
                            return Err(Error::Context {
                                path: at.clone(),
                                detail: format!("invalid key {k:?} under '{at}': {why}"),
                            });
                        }
                        if v.is_container() {
                            stack.push((v, at.child_unchecked(k.clone())));
                        }
                    }
                }
                Value::List(l) => {
                    for (i, v) in l.iter().enumerate() {
                        if v.is_container() {
                            stack.push((v, at.child_unchecked(i.to_string().into())));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<L: Clone + PartialEq> PartialEq for Value<L> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Leaf(a), Value::Leaf(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            _ => false,
        }
    }
}

impl<L: Clone + fmt::Debug> fmt::Debug for Value<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Leaf(l) => l.fmt(f),
            Value::Map(m) => m.fmt(f),
            Value::List(l) => l.fmt(f),
        }
    }
}

impl<L: Clone> From<PMap<L>> for Value<L> {
    fn from(m: PMap<L>) -> Self {
        Value::Map(m)
    }
}

impl<L: Clone> From<PList<L>> for Value<L> {
    fn from(l: PList<L>) -> Self {
        Value::List(l)
    }
}

impl<L: Clone> Clone for PList<L> {
    fn clone(&self) -> Self {
        PList(Arc::clone(&self.0))
    }
}

/// How many nested container drops may recurse on one thread before the rest of a value is
/// taken apart iteratively: dropping a deep value must not need a deep native stack (spec `01`:
/// a tree at the depth limit is dropped on a thread with a 256 KiB stack).
const DROP_RECURSION: usize = 16;

thread_local! {
    static DROP_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Drop the contents `taken` of a container nobody else holds. Near the top of a value this
/// is the ordinary (recursive, O(1) for shared parts) drop; below [`DROP_RECURSION`] nested
/// containers, the values are moved onto a heap stack and containers held only here are
/// emptied one by one, so the native stack does not grow with the depth.
pub(crate) fn drop_container<L: Clone, C>(
    taken: C,
    into_values: impl FnOnce(C, &mut Vec<Value<L>>),
) {
    let depth = DROP_DEPTH.with(Cell::get);
    if depth < DROP_RECURSION {
        DROP_DEPTH.with(|d| d.set(depth + 1));
        drop(taken);
        DROP_DEPTH.with(|d| d.set(depth));
        return;
    }
    let mut pending = Vec::new();
    into_values(taken, &mut pending);
    while let Some(value) = pending.pop() {
        match value {
            Value::Map(mut map) => map.take_values(&mut pending),
            Value::List(mut list) => list.take_values(&mut pending),
            Value::Leaf(_) => {}
        }
        // the emptied container (or a shared one, whose count just drops) ends here
    }
}

impl<L: Clone> Drop for PList<L> {
    fn drop(&mut self) {
        if let Some(items) = Arc::get_mut(&mut self.0) {
            if !items.is_empty() {
                drop_container(std::mem::take(items), |items, out| out.extend(items));
            }
        }
    }
}

impl<L: Clone> Default for PList<L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Clone> PList<L> {
    /// An empty list.
    pub fn new() -> Self {
        PList(Arc::new(Vector::new()))
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The item at `index`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&Value<L>> {
        self.0.get(index)
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &Value<L>> + '_ {
        self.0.iter()
    }

    fn vec_mut(&mut self) -> &mut Vector<Value<L>> {
        Arc::make_mut(&mut self.0)
    }

    /// A mutable reference to the item at `index`.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Value<L>> {
        if index >= self.len() {
            return None;
        }
        self.vec_mut().get_mut(index)
    }

    /// Append an item.
    pub fn push(&mut self, value: Value<L>) {
        self.vec_mut().push_back(value);
    }

    /// Replace the item at `index` (which must be in range); returns the old one.
    pub fn set(&mut self, index: usize, value: Value<L>) -> Value<L> {
        self.vec_mut().set(index, value)
    }

    /// Insert at `index` (`index <= len`).
    pub fn insert(&mut self, index: usize, value: Value<L>) {
        self.vec_mut().insert(index, value);
    }

    /// Remove and return the item at `index` (`index < len`).
    pub fn remove(&mut self, index: usize) -> Value<L> {
        self.vec_mut().remove(index)
    }

    /// Move the items out of a list nobody else holds (for [`drop_container`]).
    pub(crate) fn take_values(&mut self, out: &mut Vec<Value<L>>) {
        if let Some(items) = Arc::get_mut(&mut self.0) {
            out.extend(std::mem::take(items));
        }
    }

    /// Whether the two lists share their storage (O(1); `true` implies equal contents).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.ptr_eq(&other.0)
    }
}

impl<L: Clone> FromIterator<Value<L>> for PList<L> {
    fn from_iter<T: IntoIterator<Item = Value<L>>>(iter: T) -> Self {
        PList(Arc::new(iter.into_iter().collect()))
    }
}

impl<L: Clone> Extend<Value<L>> for PList<L> {
    fn extend<T: IntoIterator<Item = Value<L>>>(&mut self, iter: T) {
        self.vec_mut().extend(iter);
    }
}

impl<L: Clone + PartialEq> PartialEq for PList<L> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || (self.len() == other.len() && self.iter().eq(other.iter()))
    }
}

impl<L: Clone + fmt::Debug> fmt::Debug for PList<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep(levels: usize, list: bool) -> Value<i64> {
        let mut value = Value::Leaf(1);
        for _ in 0..levels {
            value = if list {
                Value::List(std::iter::once(value).collect())
            } else {
                let mut map = PMap::new();
                map.insert("a".into(), value);
                Value::Map(map)
            };
        }
        value
    }

    #[test]
    fn deep_values_drop_on_a_small_stack() {
        for list in [false, true] {
            let handle = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let value = deep(100_000, list);
                    let shared = value.clone(); // a second owner: the first drop only counts down
                    drop(value);
                    drop(shared);
                    let mut wide = PMap::new();
                    for i in 0..100 {
                        wide.insert(i.to_string().into(), deep(1_000, !list));
                    }
                    drop(wide);
                })
                .expect("spawn");
            handle.join().expect("no stack overflow");
        }
    }
}
