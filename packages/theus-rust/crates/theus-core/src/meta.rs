//! Meta values as a `pure` process sees them (spec `03`, meta): absent from its whole-container
//! reads, and never set, replaced, moved or deleted by its writes.
//!
//! Only keys in the data zone are looked at: below a key of another zone (`log_`, `heavy_`)
//! nothing is a meta value. Traversals are iterative (an explicit stack) or bounded.

use std::sync::Arc;

use crate::path::Path;
use crate::value::Value;
use crate::zone::{zone_of_key, Zone};

/// Nesting beyond which [`hide_meta`] stops descending (the tree's own depth limit is lower).
const MAX_NESTING: usize = 1024;

enum Seg<'a> {
    Key(&'a Arc<str>),
    Index(usize),
}

impl Seg<'_> {
    fn to_arc(&self) -> Arc<str> {
        match self {
            Seg::Key(k) => Arc::clone(k),
            Seg::Index(i) => i.to_string().into(),
        }
    }
}

type Children<'a, L> = Box<dyn Iterator<Item = (Seg<'a>, &'a Value<L>)> + 'a>;

fn children<L: Clone>(value: &Value<L>) -> Option<Children<'_, L>> {
    match value {
        Value::Map(m) => Some(Box::new(m.iter().map(|(k, v)| (Seg::Key(k), v)))),
        Value::List(l) => Some(Box::new(
            l.iter().enumerate().map(|(i, v)| (Seg::Index(i), v)),
        )),
        Value::Leaf(_) => None,
    }
}

/// The path (below `at`, where `value` is stored in the data zone) of the first meta-zone key
/// inside `value`, depth first in key order; `None` if it holds none.
pub(crate) fn find_meta<L: Clone>(value: &Value<L>, at: &Path) -> Option<Path> {
    let mut stack: Vec<(Option<Seg<'_>>, Children<'_, L>)> = vec![(None, children(value)?)];
    loop {
        let top = stack.last_mut()?;
        let Some((seg, child)) = top.1.next() else {
            stack.pop();
            continue;
        };
        if let Seg::Key(key) = seg {
            match zone_of_key(key) {
                Some(Zone::Meta) => {
                    let segments: Vec<Arc<str>> = at
                        .segments()
                        .iter()
                        .cloned()
                        .chain(
                            stack
                                .iter()
                                .filter_map(|(s, _)| s.as_ref().map(Seg::to_arc)),
                        )
                        .chain(std::iter::once(Arc::clone(key)))
                        .collect();
                    return Some(Path::from_trusted(&segments));
                }
                Some(_) => continue, // another zone decides below this key
                None => {}
            }
        }
        if let Some(grand) = children(child) {
            stack.push((Some(seg), grand));
        }
    }
}

/// `value` without the meta-zone keys of its own map (a list has none): what `len`, `keys`,
/// `in` and iteration see.
pub(crate) fn hide_meta_keys<L: Clone>(value: &Value<L>) -> Value<L> {
    match value {
        Value::Map(m) if m.keys().any(|k| zone_of_key(k) == Some(Zone::Meta)) => Value::Map(
            m.iter()
                .filter(|(k, _)| zone_of_key(k) != Some(Zone::Meta))
                .map(|(k, v)| (Arc::clone(k), v.clone()))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// `value` without its meta-zone keys at any depth (the same value, shared, when it holds
/// none): what `to_dict`, `==` and `repr` see.
pub(crate) fn hide_meta<L: Clone>(value: &Value<L>) -> Value<L> {
    if find_meta(value, &Path::root()).is_none() {
        return value.clone();
    }
    hide(value, 0)
}

fn hide<L: Clone>(value: &Value<L>, depth: usize) -> Value<L> {
    if depth > MAX_NESTING {
        return value.clone();
    }
    match value {
        Value::Map(m) => Value::Map(
            m.iter()
                .filter_map(|(k, v)| match zone_of_key(k) {
                    Some(Zone::Meta) => None,
                    Some(_) => Some((Arc::clone(k), v.clone())),
                    None => Some((Arc::clone(k), hide(v, depth + 1))),
                })
                .collect(),
        ),
        Value::List(l) => Value::List(l.iter().map(|v| hide(v, depth + 1)).collect()),
        Value::Leaf(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::PMap;

    fn map(pairs: Vec<(&str, Value<i64>)>) -> Value<i64> {
        Value::Map(pairs.into_iter().collect::<PMap<i64>>())
    }

    fn sample() -> Value<i64> {
        map(vec![
            ("a", Value::Leaf(1)),
            ("meta_x", Value::Leaf(2)),
            (
                "lst",
                Value::List(
                    vec![
                        map(vec![("v", Value::Leaf(1)), ("meta_t", Value::Leaf(0))]),
                        Value::Leaf(3),
                    ]
                    .into_iter()
                    .collect(),
                ),
            ),
            ("log_l", map(vec![("meta_in_log", Value::Leaf(1))])),
        ])
    }

    #[test]
    fn finds_the_first_meta_key_in_key_order() {
        let at = Path::parse("domain.m").unwrap();
        assert_eq!(
            find_meta(&sample(), &at).unwrap().to_string(),
            "domain.m.lst.0.meta_t"
        );
        let none = map(vec![
            ("a", Value::Leaf(1)),
            ("log_l", map(vec![("meta_y", Value::Leaf(1))])),
        ]);
        assert!(find_meta(&none, &at).is_none());
        assert!(find_meta(&Value::Leaf(1), &at).is_none());
    }

    #[test]
    fn hides_meta_at_every_depth_but_not_below_other_zones() {
        let shown = hide_meta(&sample());
        let expected = map(vec![
            ("a", Value::Leaf(1)),
            (
                "lst",
                Value::List(
                    vec![map(vec![("v", Value::Leaf(1))]), Value::Leaf(3)]
                        .into_iter()
                        .collect(),
                ),
            ),
            ("log_l", map(vec![("meta_in_log", Value::Leaf(1))])),
        ]);
        assert!(shown == expected);
        let shallow = hide_meta_keys(&sample());
        assert_eq!(shallow.as_map().unwrap().len(), 3);
        let plain = map(vec![("a", Value::Leaf(1))]);
        assert!(hide_meta(&plain).ptr_eq(&plain));
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut v = map(vec![("meta_deep", Value::Leaf(1))]);
        for _ in 0..20_000 {
            v = map(vec![("k", v)]);
        }
        let found = find_meta(&v, &Path::root()).unwrap();
        assert_eq!(found.len(), 20_001);
        std::mem::forget(v); // dropping 20 000 nested maps recurses in Drop: not under test here
    }
}
