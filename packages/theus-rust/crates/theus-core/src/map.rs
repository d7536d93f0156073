//! [`PMap`]: the persistent, insertion-ordered map of the context tree.

use std::fmt;
use std::sync::Arc;

use imbl::hashmap::Entry;
use imbl::shared_ptr::ArcK;
use imbl::{GenericHashMap, OrdMap};

use crate::value::Value;

type Hasher = foldhash::fast::RandomState;

#[derive(Clone)]
struct Slot<L> {
    seq: u64,
    value: Value<L>,
}

#[derive(Clone)]
struct Inner<L> {
    entries: GenericHashMap<Arc<str>, Slot<L>, Hasher, ArcK>,
    order: OrdMap<u64, Arc<str>>,
    next: u64,
}

/// A persistent map from `Arc<str>` keys to [`Value`]s.
///
/// - Cloning is O(1); [`insert`](PMap::insert) and [`remove`](PMap::remove) are O(log n) and
///   share every untouched part with the map they were cloned from (hash array mapped trie).
/// - Iteration follows insertion order, like a Python `dict`: overwriting a key keeps its
///   position, removing and re-inserting moves it to the end.
/// - [`PMap::ptr_eq`] tells in O(1) whether two maps share their storage (structural sharing).
pub struct PMap<L>(Arc<Inner<L>>);

impl<L> Clone for PMap<L> {
    fn clone(&self) -> Self {
        PMap(Arc::clone(&self.0))
    }
}

impl<L: Clone> Default for PMap<L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Clone> PMap<L> {
    /// An empty map.
    pub fn new() -> Self {
        PMap(Arc::new(Inner {
            entries: GenericHashMap::default(),
            order: OrdMap::new(),
            next: 0,
        }))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// The value at `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value<L>> {
        self.0.entries.get(key).map(|s| &s.value)
    }

    /// The stored key (shared, no allocation) and value at `key`.
    #[inline]
    pub fn get_key_value(&self, key: &str) -> Option<(&Arc<str>, &Value<L>)> {
        self.0
            .entries
            .get_key_value(key)
            .map(|(k, s)| (k, &s.value))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.entries.contains_key(key)
    }

    /// A mutable reference to the value at `key`, copying shared storage along the way only.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<L>> {
        Arc::make_mut(&mut self.0)
            .entries
            .get_mut(key)
            .map(|s| &mut s.value)
    }

    /// Insert or overwrite; returns the previous value. An overwritten key keeps its position.
    /// The key is not validated here (see [`crate::path::is_valid_key`]).
    pub fn insert(&mut self, key: Arc<str>, value: Value<L>) -> Option<Value<L>> {
        let inner = Arc::make_mut(&mut self.0);
        match inner.entries.entry(key) {
            Entry::Occupied(mut e) => Some(std::mem::replace(&mut e.get_mut().value, value)),
            Entry::Vacant(e) => {
                let seq = inner.next;
                inner.next += 1;
                inner.order.insert(seq, e.key().clone());
                e.insert(Slot { seq, value });
                None
            }
        }
    }

    /// Remove `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value<L>> {
        if !self.0.entries.contains_key(key) {
            return None; // keep the storage shared
        }
        let inner = Arc::make_mut(&mut self.0);
        let slot = inner.entries.remove(key)?;
        inner.order.remove(&slot.seq);
        Some(slot.value)
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Value<L>)> + '_ {
        self.0.order.values().map(move |k| {
            let slot = self.0.entries.get(&**k).expect("order and entries agree");
            (k, &slot.value)
        })
    }

    /// The keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.0.order.values()
    }

    /// The values in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &Value<L>> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Whether the two maps share their storage (O(1); `true` implies equal contents).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.entries.ptr_eq(&other.0.entries)
    }
}

impl<L: Clone> FromIterator<(Arc<str>, Value<L>)> for PMap<L> {
    fn from_iter<T: IntoIterator<Item = (Arc<str>, Value<L>)>>(iter: T) -> Self {
        let mut map = PMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<'a, L: Clone> FromIterator<(&'a str, Value<L>)> for PMap<L> {
    fn from_iter<T: IntoIterator<Item = (&'a str, Value<L>)>>(iter: T) -> Self {
        iter.into_iter().map(|(k, v)| (Arc::from(k), v)).collect()
    }
}

impl<L: Clone + PartialEq> PartialEq for PMap<L> {
    /// Equal keys with equal values, order ignored (like `dict`).
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
            || (self.len() == other.len()
                && self
                    .iter()
                    .all(|(k, v)| other.get(k).is_some_and(|w| v == w)))
    }
}

impl<L: Clone + fmt::Debug> fmt::Debug for PMap<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_order_like_a_dict() {
        let mut m: PMap<i64> = PMap::new();
        for k in ["b", "a", "c"] {
            m.insert(k.into(), Value::Leaf(1));
        }
        m.insert("a".into(), Value::Leaf(2));
        assert_eq!(m.keys().map(|k| &**k).collect::<Vec<_>>(), ["b", "a", "c"]);
        m.remove("b");
        m.insert("b".into(), Value::Leaf(3));
        assert_eq!(m.keys().map(|k| &**k).collect::<Vec<_>>(), ["a", "c", "b"]);
        assert_eq!(m.get("a"), Some(&Value::Leaf(2)));
    }

    #[test]
    fn clones_share_until_written() {
        let mut a: PMap<i64> = [("x", Value::Leaf(1))].into_iter().collect();
        let b = a.clone();
        assert!(a.ptr_eq(&b));
        assert_eq!(a.remove("missing"), None);
        assert!(a.ptr_eq(&b));
        a.insert("y".into(), Value::Leaf(2));
        assert!(!a.ptr_eq(&b));
        assert_eq!(b.len(), 1);
    }
}
