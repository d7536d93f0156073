//! Navigation in a tree root (a map of namespaces): heavy-aware lookups, parent resolution
//! with precise errors, and copy-on-write descent for writes.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::map::PMap;
use crate::path::{parse_index, Path};
use crate::value::{PList, Value};
use crate::zone::{zone_of_key, zone_step, Zone};

/// The value at `segments`, honouring the heavy zone (nothing exists below a heavy key).
pub(crate) fn lookup<'a, L: Clone>(
    root: &'a PMap<L>,
    segments: &[Arc<str>],
) -> Option<&'a Value<L>> {
    let (first, rest) = segments.split_first()?;
    let mut zone = zone_of_key(first);
    let mut value = root.get(first)?;
    for segment in rest {
        if zone == Some(Zone::Heavy) {
            return None;
        }
        zone = zone_step(zone, segment);
        value = value.child(segment)?;
    }
    Some(value)
}

/// A container reached read-only.
pub(crate) enum ContainerRef<'a, L: Clone> {
    Map(&'a PMap<L>),
    List(&'a PList<L>),
}

/// A container reached for writing (storage already unshared along the way).
pub(crate) enum ContainerMut<'a, L: Clone> {
    Map(&'a mut PMap<L>),
    List(&'a mut PList<L>),
}

/// A key below a list that is not one of its indices (decimal, no sign or leading zeros):
/// no such item, like an index out of range.
fn not_a_list_key(path: &Path, len: usize) -> Error {
    Error::IndexOutOfRange {
        path: path.clone(),
        len,
    }
}

/// The value one segment below a container, with the error a write path would report.
fn step<'a, L: Clone>(
    container: ContainerRef<'a, L>,
    key: &str,
    at: impl Fn() -> Path,
) -> Result<&'a Value<L>> {
    match container {
        ContainerRef::Map(m) => m.get(key).ok_or_else(|| Error::KeyMissing { path: at() }),
        ContainerRef::List(l) => {
            let index = parse_index(key).ok_or_else(|| not_a_list_key(&at(), l.len()))?;
            l.get(index).ok_or_else(|| Error::IndexOutOfRange {
                path: at(),
                len: l.len(),
            })
        }
    }
}

/// The container holding the value at `path` (`path.len() >= 1`), read-only, with the error a
/// write would report when an intermediate value is missing or not a container.
pub(crate) fn parent<'a, L: Clone>(root: &'a PMap<L>, path: &Path) -> Result<ContainerRef<'a, L>> {
    let segments = path.segments();
    let mut container = ContainerRef::Map(root);
    for (i, key) in segments[..segments.len() - 1].iter().enumerate() {
        let value = step(container, key, || path.prefix(i + 1))?;
        container = match value {
            Value::Map(m) => ContainerRef::Map(m),
            Value::List(l) => ContainerRef::List(l),
            Value::Leaf(_) => {
                return Err(Error::NotAContainer {
                    path: path.prefix(i + 1),
                    detail: format!(
                        "cannot reach '{path}' below a value that is not a map or list"
                    ),
                })
            }
        };
    }
    Ok(container)
}

/// The container holding the value at `segments` for writing. The caller has validated the
/// path with [`parent`]; a failure here is a bug.
pub(crate) fn parent_mut<'a, L: Clone>(
    root: &'a mut PMap<L>,
    segments: &[Arc<str>],
) -> ContainerMut<'a, L> {
    let mut container = ContainerMut::Map(root);
    for key in &segments[..segments.len() - 1] {
        let value = match container {
            ContainerMut::Map(m) => m.get_mut(key),
            ContainerMut::List(l) => parse_index(key).and_then(|i| l.get_mut(i)),
        };
        container = match value.expect("path validated before writing") {
            Value::Map(m) => ContainerMut::Map(m),
            Value::List(l) => ContainerMut::List(l),
            Value::Leaf(_) => unreachable!("path validated before writing"),
        };
    }
    container
}

/// Put `value` (or its absence) at `path` in `root`, for rebasing a commit onto a newer root.
/// Fails (as a conflict) if the parent does not exist there.
pub(crate) fn transplant<L: Clone>(
    root: &mut PMap<L>,
    path: &Path,
    value: Option<&Value<L>>,
) -> Result<()> {
    let lost = || Error::Conflict {
        path: Some(path.clone()),
        detail: format!("the container of '{path}' changed shape in a concurrent commit"),
    };
    let key = path.last().expect("written paths are not the root");
    match (parent(root, path).map_err(|_| lost())?, value) {
        (ContainerRef::Map(_), _) => {}
        (ContainerRef::List(l), _) => {
            let index = parse_index(key).ok_or_else(lost)?;
            if index >= l.len() || value.is_none() {
                return Err(lost()); // list items are replaced, never added or removed, by path
            }
        }
    }
    match (parent_mut(root, path.segments()), value) {
        (ContainerMut::Map(m), Some(v)) => {
            m.insert(key.clone(), v.clone());
        }
        (ContainerMut::Map(m), None) => {
            m.remove(key);
        }
        (ContainerMut::List(l), Some(v)) => {
            let index = parse_index(key).expect("checked above");
            l.set(index, v.clone());
        }
        (ContainerMut::List(_), None) => unreachable!("checked above"),
    }
    Ok(())
}
