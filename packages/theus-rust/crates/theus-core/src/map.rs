//! [`PMap`]: the persistent, key-ordered map of the context tree.

use std::fmt;
use std::sync::Arc;

use imbl::hashmap::Entry;
use imbl::shared_ptr::ArcK;
use imbl::{GenericHashMap, GenericOrdSet};

use crate::value::Value;

type Hasher = foldhash::fast::RandomState;

/// Overwrites of existing keys kept beside the trie before they are merged into it: a small
/// map whose values change often (a counter, a status) then never copies a path of the trie,
/// so a commit's cost does not grow with the size of the map (spec `05`, structural sharing).
const DELTA: usize = 8;

#[derive(Clone)]
struct Inner<L: Clone> {
    /// Lookups: a hash array mapped trie (one hash lookup per key).
    entries: GenericHashMap<Arc<str>, Value<L>, Hasher, ArcK>,
    /// Recent overwrites of keys, newer than `entries` (at most [`DELTA`]; each key once).
    delta: Vec<(Arc<str>, Value<L>)>,
    /// Every key, in order (spec `01`: sorted by code point, i.e. by UTF-8 bytes). Touched only
    /// when a key is added or removed, never when a value is overwritten.
    order: GenericOrdSet<Arc<str>, ArcK>,
}

impl<L: Clone> Default for Inner<L> {
    fn default() -> Self {
        Inner {
            entries: GenericHashMap::default(),
            delta: Vec::new(),
            order: GenericOrdSet::new(),
        }
    }
}

impl<L: Clone> Inner<L> {
    #[inline]
    fn find_delta(&self, key: &str) -> Option<usize> {
        self.delta.iter().position(|(k, _)| **k == *key)
    }

    fn flush(&mut self) {
        for (k, v) in self.delta.drain(..) {
            self.entries.insert(k, v);
        }
    }
}

/// A persistent map from `Arc<str>` keys to [`Value`]s.
///
/// - Cloning is O(1); [`insert`](PMap::insert) and [`remove`](PMap::remove) are O(log n) and
///   share every untouched part with the map they were cloned from. Overwriting the value of an
///   existing key is O(1) amortised: the newest few overwrites live beside the trie.
/// - Iteration is in key order: sorted by Unicode code point (spec `01`), independent of
///   hashing and of insertion order.
/// - [`PMap::ptr_eq`] tells in O(1) whether two maps share their storage (structural sharing).
pub struct PMap<L: Clone>(Arc<Inner<L>>);

impl<L: Clone> Clone for PMap<L> {
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
            delta: Vec::new(),
            order: GenericOrdSet::new(),
        }))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.order.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.order.is_empty()
    }

    /// The value at `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value<L>> {
        self.get_key_value(key).map(|(_, v)| v)
    }

    /// The stored key (shared, no allocation) and value at `key`.
    #[inline]
    pub fn get_key_value(&self, key: &str) -> Option<(&Arc<str>, &Value<L>)> {
        let inner = &*self.0;
        if let Some(i) = inner.find_delta(key) {
            let (k, v) = &inner.delta[i];
            return Some((k, v));
        }
        inner.entries.get_key_value(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.find_delta(key).is_some() || self.0.entries.contains_key(key)
    }

    /// A mutable reference to the value at `key`, copying shared storage along the way only.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<L>> {
        if let Some(i) = self.0.find_delta(key) {
            return Some(&mut Arc::make_mut(&mut self.0).delta[i].1);
        }
        let (k, v) = self.0.entries.get_key_value(key)?;
        let (k, v) = (k.clone(), v.clone());
        let inner = Arc::make_mut(&mut self.0);
        if inner.delta.len() >= DELTA {
            inner.flush();
        }
        inner.delta.push((k, v));
        inner.delta.last_mut().map(|(_, v)| v)
    }

    /// Insert or overwrite; returns the previous value.
    /// The key is not validated here (see [`crate::path::is_valid_key`]).
    pub fn insert(&mut self, key: Arc<str>, value: Value<L>) -> Option<Value<L>> {
        let inner = Arc::make_mut(&mut self.0);
        if let Some(i) = inner.find_delta(&key) {
            return Some(std::mem::replace(&mut inner.delta[i].1, value));
        }
        if let Some(old) = inner.entries.get(&*key) {
            let old = old.clone();
            if inner.delta.len() >= DELTA {
                inner.flush();
            }
            inner.delta.push((key, value));
            return Some(old);
        }
        match inner.entries.entry(key) {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), value)),
            Entry::Vacant(e) => {
                inner.order.insert(e.key().clone());
                e.insert(value);
                None
            }
        }
    }

    /// Remove `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value<L>> {
        if !self.contains_key(key) {
            return None; // keep the storage shared
        }
        let inner = Arc::make_mut(&mut self.0);
        let newer = inner.find_delta(key).map(|i| inner.delta.remove(i).1);
        let older = inner.entries.remove(key);
        inner.order.remove(key);
        newer.or(older)
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Value<L>)> + '_ {
        self.0
            .order
            .iter()
            .filter_map(move |k| self.get_key_value(k))
    }

    /// The keys in key order.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.0.order.iter()
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &Value<L>> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The last entry in key order.
    pub fn last(&self) -> Option<(&Arc<str>, &Value<L>)> {
        let key = self.0.order.get_max()?;
        self.get_key_value(key)
    }

    /// Whether the two maps share their storage (O(1); `true` implies equal contents).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.delta.is_empty()
                && other.0.delta.is_empty()
                && self.0.entries.ptr_eq(&other.0.entries))
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

impl<L: Clone> PMap<L> {
    /// Move the values out of a map nobody else holds (for the iterative drop of deep values,
    /// [`crate::value::drop_container`]).
    pub(crate) fn take_values(&mut self, out: &mut Vec<Value<L>>) {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            let inner = std::mem::take(inner);
            out.extend(inner.delta.into_iter().map(|(_, v)| v));
            out.extend(inner.entries.into_iter().map(|(_, v)| v));
        }
    }
}

impl<L: Clone> Drop for PMap<L> {
    fn drop(&mut self) {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            if !inner.order.is_empty() || !inner.delta.is_empty() {
                crate::value::drop_container(std::mem::take(inner), |inner, out| {
                    out.extend(inner.delta.into_iter().map(|(_, v)| v));
                    out.extend(inner.entries.into_iter().map(|(_, v)| v));
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_by_code_point() {
        let mut m: PMap<i64> = PMap::new();
        for k in ["b", "a", "c", "B", "é", "aa"] {
            m.insert(k.into(), Value::Leaf(1));
        }
        m.insert("a".into(), Value::Leaf(2));
        assert_eq!(
            m.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["B", "a", "aa", "b", "c", "é"]
        );
        m.remove("b");
        m.insert("b".into(), Value::Leaf(3));
        assert_eq!(
            m.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["B", "a", "aa", "b", "c", "é"]
        );
        assert_eq!(m.get("a"), Some(&Value::Leaf(2)));
        assert_eq!(m.last().map(|(k, _)| &**k), Some("é"));
        assert_eq!(m.iter().count(), 6);
    }

    #[test]
    fn overwrite_keeps_the_order_shared() {
        let mut a: PMap<i64> = [("x", Value::Leaf(1)), ("y", Value::Leaf(2))]
            .into_iter()
            .collect();
        let b = a.clone();
        a.insert("x".into(), Value::Leaf(5));
        assert!(a.0.order.ptr_eq(&b.0.order));
        assert_eq!(b.get("x"), Some(&Value::Leaf(1)));
    }

    #[test]
    fn many_overwrites_and_removes_agree_with_a_model() {
        let mut m: PMap<i64> = PMap::new();
        let mut model = std::collections::BTreeMap::new();
        let mut versions = Vec::new();
        for step in 0..2000i64 {
            let key = format!("k{}", (step * 7919) % 37);
            match step % 5 {
                0..=2 => {
                    assert_eq!(
                        m.insert(key.as_str().into(), Value::Leaf(step)),
                        model.insert(key.clone(), step).map(Value::Leaf)
                    );
                }
                3 => {
                    if let Some(Value::Leaf(v)) = m.get_mut(&key) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&key) {
                        *v += 1;
                    }
                }
                _ => assert_eq!(m.remove(&key), model.remove(&key).map(Value::Leaf)),
            }
            versions.push((m.clone(), model.clone()));
            assert_eq!(m.len(), model.len());
        }
        for (map, model) in versions.iter().step_by(97) {
            let got: Vec<(String, i64)> = map
                .iter()
                .map(|(k, v)| (k.to_string(), *v.as_leaf().unwrap()))
                .collect();
            let want: Vec<(String, i64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
            assert_eq!(got, want, "old versions keep their contents");
        }
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
