//! [`PMap`]: the persistent, key-ordered map of the context tree.

use std::fmt;
use std::sync::Arc;

use imbl::shared_ptr::ArcK;
use imbl::{GenericHashMap, GenericOrdSet};

use crate::value::Value;

type Hasher = foldhash::fast::RandomState;

/// How many recently overwritten keys live beside the trie (see [`Inner::delta`]).
const DELTA: usize = 8;

#[derive(Clone)]
struct Inner<L: Clone> {
    /// Lookups: a hash array mapped trie (one hash lookup per key). Holds every key that is
    /// not in `delta`.
    entries: GenericHashMap<Arc<str>, Value<L>, Hasher, ArcK>,
    /// Keys overwritten recently (at most [`DELTA`]), kept beside the trie so that a small
    /// map whose values change often (a counter, a status) does not copy a path of the trie
    /// on every overwrite: a commit's cost does not grow with the size of the map (spec `05`,
    /// structural sharing). A key is in `delta` or in `entries`, never in both: a replaced
    /// value is never shadowed (kept alive) by the shared trie, so a value no live version
    /// can reach is freed with the last version that held it (spec `05`, release).
    delta: Vec<Slot<L>>,
    /// Every key, in order (spec `01`: sorted by code point, i.e. by UTF-8 bytes). Touched only
    /// when a key is added or removed, never when a value is overwritten.
    order: GenericOrdSet<Arc<str>, ArcK>,
}

/// One key of [`Inner::delta`] and its value.
#[derive(Clone)]
struct Slot<L: Clone> {
    key: Arc<str>,
    value: Value<L>,
    /// Overwritten since the last eviction round (second chance: such a key stays).
    recent: bool,
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
        self.delta.iter().position(|s| *s.key == *key)
    }

    /// Make room in `delta` for one more key: `true` if there is (after moving a key that was
    /// not overwritten since the last round back into the trie), `false` if every key in it
    /// is in use (then all get a second chance and the caller writes the trie directly).
    fn make_room(&mut self) -> bool {
        if self.delta.len() < DELTA {
            return true;
        }
        match self.delta.iter().position(|s| !s.recent) {
            Some(i) => {
                let evicted = self.delta.swap_remove(i);
                self.entries.insert(evicted.key, evicted.value);
                for slot in &mut self.delta {
                    slot.recent = false;
                }
                true
            }
            None => {
                for slot in &mut self.delta {
                    slot.recent = false;
                }
                false
            }
        }
    }

    /// Move `key` (present in `entries`) into `delta` with `value`, or overwrite it in the
    /// trie when `delta` has no room; returns the previous value.
    fn overwrite_trie_key(&mut self, key: Arc<str>, value: Value<L>) -> Option<Value<L>> {
        if self.make_room() {
            let old = self.entries.remove(&*key);
            self.delta.push(Slot {
                key,
                value,
                recent: true,
            });
            old
        } else {
            self.entries.insert(key, value)
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
            let slot = &inner.delta[i];
            return Some((&slot.key, &slot.value));
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
            let slot = &mut Arc::make_mut(&mut self.0).delta[i];
            slot.recent = true;
            return Some(&mut slot.value);
        }
        if !self.0.entries.contains_key(key) {
            return None; // keep the storage shared
        }
        let inner = Arc::make_mut(&mut self.0);
        if !inner.make_room() {
            return inner.entries.get_mut(key);
        }
        let (key, value) = inner.entries.remove_with_key(key)?;
        inner.delta.push(Slot {
            key,
            value,
            recent: true,
        });
        inner.delta.last_mut().map(|s| &mut s.value)
    }

    /// Insert or overwrite; returns the previous value.
    /// The key is not validated here (see [`crate::path::is_valid_key`]).
    pub fn insert(&mut self, key: Arc<str>, value: Value<L>) -> Option<Value<L>> {
        let inner = Arc::make_mut(&mut self.0);
        if let Some(i) = inner.find_delta(&key) {
            let slot = &mut inner.delta[i];
            slot.recent = true;
            return Some(std::mem::replace(&mut slot.value, value));
        }
        if inner.entries.contains_key(&*key) {
            return inner.overwrite_trie_key(key, value);
        }
        inner.order.insert(key.clone());
        inner.entries.insert(key, value)
    }

    /// Remove `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value<L>> {
        if !self.contains_key(key) {
            return None; // keep the storage shared
        }
        let inner = Arc::make_mut(&mut self.0);
        inner.order.remove(key);
        match inner.find_delta(key) {
            Some(i) => Some(inner.delta.swap_remove(i).value),
            None => inner.entries.remove(key),
        }
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
            out.extend(inner.delta.into_iter().map(|slot| slot.value));
            out.extend(inner.entries.into_iter().map(|(_, v)| v));
        }
    }
}

impl<L: Clone> Drop for PMap<L> {
    fn drop(&mut self) {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            if !inner.order.is_empty() || !inner.delta.is_empty() {
                crate::value::drop_container(std::mem::take(inner), |inner, out| {
                    out.extend(inner.delta.into_iter().map(|slot| slot.value));
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

    /// A leaf whose liveness a test can watch.
    fn watched(n: i64) -> (Value<Arc<i64>>, std::sync::Weak<i64>) {
        let leaf = Arc::new(n);
        let weak = Arc::downgrade(&leaf);
        (Value::Leaf(leaf), weak)
    }

    fn big_map(n: usize) -> PMap<Arc<i64>> {
        (0..n)
            .map(|i| (Arc::from(format!("k{i}")), Value::Leaf(Arc::new(i as i64))))
            .collect()
    }

    #[test]
    fn a_replaced_value_dies_with_the_last_version_holding_it() {
        for size in [1, 10, 1000] {
            let mut current = big_map(size);
            let (value, weak) = watched(-1);
            current.insert("heavy_x".into(), value);
            // Overwrite it while the old version is alive, then drop the old version.
            let old = current.clone();
            current.insert("heavy_x".into(), Value::Leaf(Arc::new(0)));
            assert!(weak.upgrade().is_some(), "the old version still holds it");
            drop(old);
            assert!(
                weak.upgrade().is_none(),
                "size {size}: shadowed by the trie"
            );
        }
    }

    #[test]
    fn no_overwrite_pattern_keeps_a_replaced_value() {
        // Many keys overwritten in turn (filling and cycling the overwrite buffer), hot keys,
        // get_mut descents and removals: every replaced value is freed as soon as no version
        // that held it is alive.
        let mut current = big_map(200);
        let mut watched_values = Vec::new();
        for step in 0..3000usize {
            let key: Arc<str> = match step % 4 {
                0 => "k0".into(),
                1 => format!("k{}", step % 3).into(),
                _ => format!("k{}", (step * 7919) % 200).into(),
            };
            let previous = current.clone();
            if step % 13 == 0 {
                if let Some(v) = current.get_mut(&key) {
                    *v = Value::Leaf(Arc::new(-2));
                }
            } else if step % 17 == 0 {
                current.remove(&key);
            } else {
                let (value, weak) = watched(step as i64);
                current.insert(key, value);
                watched_values.push(weak);
            }
            drop(previous);
            let stored: Vec<*const i64> = current
                .values()
                .filter_map(|v| v.as_leaf())
                .map(Arc::as_ptr)
                .collect();
            watched_values.retain(|w| w.strong_count() > 0);
            for w in &watched_values {
                assert!(
                    stored.contains(&w.as_ptr()),
                    "step {step}: a replaced value is still alive"
                );
            }
        }
    }

    #[test]
    fn overwrites_of_a_large_map_share_the_trie() {
        let mut current = big_map(10_000);
        for i in 0..100i64 {
            let before = current.clone();
            current.insert("k7".into(), Value::Leaf(Arc::new(i)));
            // After the first overwrite the hot key lives beside the trie: the trie is shared.
            if i > 0 {
                assert!(current.0.entries.ptr_eq(&before.0.entries));
            }
            assert_eq!(before.len(), current.len());
        }
        assert_eq!(
            current.get("k7").and_then(|v| v.as_leaf()).map(|l| **l),
            Some(99)
        );
    }
}
