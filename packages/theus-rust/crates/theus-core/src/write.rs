//! Guarded writes of a [`Transaction`] (`spec/04` guarded writes, `03` zones, `07` deletes).
//!
//! Every operation checks, in this order: the contract (`outputs`), the semantic, the zone
//! rules, then the draft (missing keys, kinds, indices). Only then does it change the draft
//! and record the written path; a refused operation changes nothing.

use crate::error::{Error, Result};
use crate::path::{parse_index, Path};
use crate::transaction::Transaction;
use crate::tree::{self, ContainerMut, ContainerRef};
use crate::value::{PList, Value};
use crate::zone::{zone_position, Zone};

/// The kinds of write, for the zone rules and messages ([`Transaction::check_write`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteOp {
    /// Assignment (also a whole-list rewrite such as `sort`).
    Set,
    /// Removal of a key or item.
    Delete,
    /// `append`.
    Append,
    /// `extend`, `+=`.
    Extend,
    /// `insert`.
    Insert,
    /// `pop`, `remove`, `del lst[i]`.
    Pop,
    /// `clear`.
    Clear,
    /// `sort` (checked before the list is rewritten).
    Sort,
    /// `reverse` (checked before the list is rewritten).
    Reverse,
}

use WriteOp as Op;

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Set => "assign",
            Op::Delete => "delete",
            Op::Append => "append to",
            Op::Extend => "extend",
            Op::Insert => "insert into",
            Op::Pop => "pop from",
            Op::Clear => "clear",
            Op::Sort => "sort",
            Op::Reverse => "reverse",
        }
    }
}

impl<L: Clone + Send + Sync + 'static> Transaction<L> {
    /// Assign `value` at `path` (`view.k = v`, `view[k] = v`, `lst[i] = v`, `data=`; also the
    /// whole-list replacement after `sort`/`reverse`). The parent must exist; nothing is created
    /// implicitly. A signal path stores a leaf in the transaction's signals instead of the tree.
    ///
    /// Map keys inside `value` are not re-validated here: the code that builds values from
    /// host objects checks them ([`Value::validate_keys`]).
    pub fn set(&mut self, path: &Path, value: Value<L>) -> Result<()> {
        let zone = self.check_write(path, Op::Set)?;
        if zone == Zone::Signal {
            let Value::Leaf(leaf) = value else {
                return Err(Error::Context {
                    path: path.clone(),
                    detail: format!(
                        "cannot assign '{path}': a signal value is stored as given: pass it as \
                         a leaf"
                    ),
                });
            };
            self.put_signal(path, leaf);
            return Ok(());
        }
        if path.len() == 1 && !matches!(value, Value::Map(_)) {
            return Err(Error::Type {
                detail: format!(
                    "namespace '{path}' must be a mapping, not a {}",
                    value.kind()
                ),
            });
        }
        let key = path.last().expect("checked: not the root");
        let existing = match tree::parent(&self.draft, path)? {
            ContainerRef::Map(m) => m.get(key).is_some(),
            ContainerRef::List(l) => {
                self.list_index(path, l, key)?;
                true
            }
        };
        if zone == Zone::Log && (existing || !matches!(value, Value::List(_))) {
            return Err(self.zone_violation(path, Zone::Log, Op::Set));
        }
        if self.pure_data(path) {
            self.no_meta(path, tree::lookup(&self.draft, path.segments()), "replace")?;
            self.no_meta(path, Some(&value), "set")?;
        }
        match tree::parent_mut(&mut self.draft, path.segments()) {
            ContainerMut::Map(m) => {
                m.insert(key.clone(), value);
            }
            ContainerMut::List(l) => {
                l.set(parse_index(key).expect("checked"), value);
            }
        }
        self.record_write(path.clone());
        Ok(())
    }

    /// Delete the key or list item at `path` (`del`, `pop(k)`, `delete=`); returns the removed
    /// value. A list item's removal shifts the others, so it needs (and records) the list's
    /// path. Missing → [`Error::KeyMissing`] / [`Error::IndexOutOfRange`].
    pub fn delete(&mut self, path: &Path) -> Result<Value<L>> {
        // An item of a list: the write is the list's (its items shift, spec `04`), checked
        // below; else the key's.
        let in_list = path.len() > 1
            && matches!(
                tree::lookup(&self.draft, &path.segments()[..path.len() - 1]),
                Some(Value::List(_))
            );
        if !in_list {
            self.check_write(path, Op::Delete)?;
        }
        let key = path.last().expect("checked: not the root");
        let index = match tree::parent(&self.draft, path)? {
            ContainerRef::Map(m) => {
                let Some(old) = m.get(key) else {
                    return Err(Error::KeyMissing { path: path.clone() });
                };
                if self.pure_data(path) {
                    self.no_meta(path, Some(old), "delete")?;
                }
                None
            }
            ContainerRef::List(l) => {
                let list_path = path.parent().expect("a list item has a parent");
                self.check_write(&list_path, Op::Pop)?;
                let index = self.list_index(path, l, key)?;
                if self.pure_data(&list_path) {
                    let mut kept = l.clone();
                    kept.remove(index);
                    self.list_change(&list_path, l, &kept, index)?;
                }
                Some((index, list_path))
            }
        };
        let removed = match (tree::parent_mut(&mut self.draft, path.segments()), &index) {
            (ContainerMut::Map(m), _) => m.remove(key).expect("checked"),
            (ContainerMut::List(l), Some((i, _))) => l.remove(*i),
            (ContainerMut::List(_), None) => unreachable!("kind checked above"),
        };
        self.record_write(index.map_or_else(|| path.clone(), |(_, list_path)| list_path));
        Ok(removed)
    }

    /// Append one item to the list at `path`.
    pub fn append(&mut self, path: &Path, value: Value<L>) -> Result<()> {
        self.with_list(path, Op::Append, None, |l| l.push(value))
    }

    /// Append items to the list at `path` (`extend`, `+=`).
    pub fn extend<I: IntoIterator<Item = Value<L>>>(
        &mut self,
        path: &Path,
        values: I,
    ) -> Result<()> {
        self.with_list(path, Op::Extend, None, |l| l.extend(values))
    }

    /// Insert an item before `index` in the list at `path`; `index` may equal the length.
    /// (Python's clamping and negative indices are the caller's business.)
    pub fn insert(&mut self, path: &Path, index: usize, value: Value<L>) -> Result<()> {
        self.check_list(path, Op::Insert, |len| index <= len)?;
        self.with_list(path, Op::Insert, Some(index), |l| l.insert(index, value))
    }

    /// Remove and return the item at `index` of the list at `path` (`pop`, `remove`, `del l[i]`).
    pub fn pop(&mut self, path: &Path, index: usize) -> Result<Value<L>> {
        self.check_list(path, Op::Pop, |len| index < len)?;
        let mut removed = None;
        self.with_list(path, Op::Pop, Some(index), |l| {
            removed = Some(l.remove(index))
        })?;
        Ok(removed.expect("removed above"))
    }

    /// Empty the map or list at `path` (`clear()`).
    pub fn clear(&mut self, path: &Path) -> Result<()> {
        self.check_write(path, Op::Clear)?;
        let old = self.target(path)?;
        let empty = match old {
            Value::Map(_) => Value::empty_map(),
            Value::List(_) => Value::empty_list(),
            Value::Leaf(_) => return Err(not_a_container(path, "clear", "a map or list")),
        };
        self.no_meta(path, Some(old), "clear")?;
        self.replace(path, empty);
        Ok(())
    }

    /// Checks shared by every write, in this order: namespaces are fixed (spec `01`), the
    /// contract, the semantic, heavy and zone rules. Returns the zone. Every write operation
    /// runs it; it is public so that a caller can check before converting a value.
    pub fn check_write(&self, path: &Path, op: Op) -> Result<Zone> {
        if path.is_root() {
            return Err(Error::Context {
                path: path.clone(),
                detail: "the root of the tree cannot be written; write a namespace or a key".into(),
            });
        }
        if path.len() == 1 && (op != Op::Set || !self.draft.contains_key(&path.segments()[0])) {
            return Err(Error::Context {
                path: path.clone(),
                detail: format!(
                    "cannot {} namespace '{path}': the namespaces are fixed by \
                     TheusEngine(context=...) when the engine is made; write keys inside a \
                     namespace instead",
                    op.verb()
                ),
            });
        }
        let contract = &self.contract;
        if !contract.writable(contract.cursor_at(path.segments())) {
            return Err(Error::ContractViolation {
                path: path.clone(),
                detail: format!(
                    "process '{}' may not {} '{path}': it is not covered by its outputs {}; \
                     declare it in outputs=[...]",
                    contract.name(),
                    op.verb(),
                    contract.describe_outputs()
                ),
            });
        }
        let decided = zone_position(path.segments());
        let zone = decided.map_or(Zone::Data, |(_, z)| z);
        let semantic = contract.semantic();
        if !semantic.may_write(zone) {
            let rule = match semantic {
                crate::Semantic::Guide => "a guide process may write only signal and meta paths",
                _ => "a pure process may not write meta or signal paths",
            };
            return Err(Error::ContractViolation {
                path: path.clone(),
                detail: format!(
                    "{} process '{}' may not {} {zone} path '{path}': {rule}",
                    semantic.name(),
                    contract.name(),
                    op.verb()
                ),
            });
        }
        if let Some((at, Zone::Heavy)) = decided {
            if at + 1 < path.len() {
                return Err(Error::Context {
                    path: path.clone(),
                    detail: format!(
                        "cannot {} '{path}': '{}' is a heavy value, opaque to the engine; write \
                         the heavy value as a whole",
                        op.verb(),
                        path.prefix(at + 1)
                    ),
                });
            }
        }
        if let Some((at, Zone::Signal)) = decided {
            if at + 1 < path.len() {
                return Err(Error::ContractViolation {
                    path: path.clone(),
                    detail: format!(
                        "cannot {} '{path}': '{}' is a signal path, a transient value; \
                         assign the signal path itself",
                        op.verb(),
                        path.prefix(at + 1)
                    ),
                });
            }
        }
        let at_root = decided.is_some_and(|(at, _)| at + 1 == path.len());
        let allowed = match zone {
            Zone::Signal => op == Op::Set,
            // Set: only to create the log itself (checked by `set`)
            Zone::Log => at_root && matches!(op, Op::Set | Op::Append | Op::Extend),
            _ => true,
        };
        if !allowed {
            return Err(self.zone_violation(path, zone, op));
        }
        Ok(zone)
    }

    fn zone_violation(&self, path: &Path, zone: Zone, op: Op) -> Error {
        let verb = op.verb();
        let detail = match zone {
            Zone::Signal => format!(
                "cannot {verb} signal path '{path}': signals are transient values; they can \
                 only be assigned"
            ),
            _ => {
                let at = zone_position(path.segments()).map_or(path.len() - 1, |(at, _)| at);
                format!(
                    "cannot {verb} '{path}': the log zone is append-only; create '{}' with a \
                     list, then only append to or extend it",
                    path.prefix(at + 1)
                )
            }
        };
        Error::ContractViolation {
            path: path.clone(),
            detail,
        }
    }

    /// The index a list-item key denotes, checked against the list's length.
    fn list_index(&self, path: &Path, list: &PList<L>, key: &str) -> Result<usize> {
        let index = parse_index(key).ok_or_else(|| Error::IndexOutOfRange {
            path: path.clone(),
            len: list.len(),
        })?;
        if index >= list.len() {
            return Err(Error::IndexOutOfRange {
                path: path.clone(),
                len: list.len(),
            });
        }
        Ok(index)
    }

    /// The current draft value at `path` (for writes: the errors of a write path).
    fn target(&self, path: &Path) -> Result<&Value<L>> {
        let key = path.last().expect("checked: not the root");
        match tree::parent(&self.draft, path)? {
            ContainerRef::Map(m) => m
                .get(key)
                .ok_or_else(|| Error::KeyMissing { path: path.clone() }),
            ContainerRef::List(l) => {
                let index = self.list_index(path, l, key)?;
                Ok(l.get(index).expect("checked"))
            }
        }
    }

    /// Check that `path` holds a list whose length satisfies `ok` (else index out of range).
    fn check_list(&self, path: &Path, op: Op, ok: impl Fn(usize) -> bool) -> Result<()> {
        self.check_write(path, op)?;
        match self.target(path)? {
            Value::List(l) if ok(l.len()) => Ok(()),
            Value::List(l) => Err(Error::IndexOutOfRange {
                path: path.clone(),
                len: l.len(),
            }),
            _ => Err(not_a_container(path, op.verb(), "a list")),
        }
    }

    /// Replace the list at `path` by `list`, a rearrangement computed by the caller (`sort`,
    /// `reverse`, `del lst[a:b]`): checked like an assignment of the list, except that a `pure`
    /// process is refused only when an item holding meta keys changes position (spec `03`).
    pub fn rewrite_list(&mut self, path: &Path, list: PList<L>) -> Result<()> {
        self.check_write(path, Op::Set)?;
        let Value::List(old) = self.target(path)? else {
            return Err(not_a_container(path, "rewrite", "a list"));
        };
        self.list_change(path, old, &list, 0)?;
        self.replace(path, Value::List(list));
        Ok(())
    }

    /// Run a mutation on the list at `path` after the checks, and record the list as written.
    /// `start`: the first position the mutation may change (`None`: the old length, for
    /// appends), from which a `pure` process's change is checked for meta items.
    fn with_list(
        &mut self,
        path: &Path,
        op: Op,
        start: Option<usize>,
        mutate: impl FnOnce(&mut PList<L>),
    ) -> Result<()> {
        self.check_write(path, op)?;
        let Value::List(old) = self.target(path)? else {
            return Err(not_a_container(path, op.verb(), "a list"));
        };
        let appending = matches!(op, Op::Append | Op::Extend);
        let len = old.len();
        if self.pure_data(path) {
            let old = old.clone();
            let mut new = old.clone();
            mutate(&mut new);
            self.list_change(path, &old, &new, start.unwrap_or(old.len()))?;
            self.place(path, Value::List(new));
            match appending {
                true => self.record_append(path.clone(), len),
                false => self.record_write(path.clone()),
            }
            return Ok(());
        }
        let key = path.last().expect("checked: not the root");
        let slot = match tree::parent_mut(&mut self.draft, path.segments()) {
            ContainerMut::Map(m) => m.get_mut(key),
            ContainerMut::List(l) => l.get_mut(parse_index(key).expect("checked")),
        };
        match slot {
            Some(Value::List(l)) => mutate(l),
            _ => unreachable!("checked above"),
        }
        match appending {
            true => self.record_append(path.clone(), len),
            false => self.record_write(path.clone()),
        }
        Ok(())
    }

    /// Whether `path` is written by a `pure` process in the data zone (where meta values are
    /// guarded, spec `03`).
    fn pure_data(&self, path: &Path) -> bool {
        self.contract.semantic() == crate::Semantic::Pure
            && zone_position(path.segments()).is_none()
    }

    /// For a `pure` process writing the data-zone `path`: refuse if `value` holds a meta key.
    pub(crate) fn no_meta(&self, path: &Path, value: Option<&Value<L>>, what: &str) -> Result<()> {
        if !self.pure_data(path) {
            return Ok(());
        }
        let Some(hit) = value.and_then(|v| crate::meta::find_meta(v, path)) else {
            return Ok(());
        };
        Err(Error::ContractViolation {
            detail: format!(
                "pure process '{}' may not {what} '{path}': that would {what} meta path '{hit}', \
                 and a pure process may not write meta values",
                self.contract.name()
            ),
            path: hit,
        })
    }

    /// For a `pure` process: refuse a list change from `old` to `new` that changes the item at
    /// a position (from `start` on) whose old or new item holds meta keys.
    fn list_change(&self, path: &Path, old: &PList<L>, new: &PList<L>, start: usize) -> Result<()> {
        if !self.pure_data(path) {
            return Ok(());
        }
        for i in start..old.len().max(new.len()) {
            let (a, b) = (old.get(i), new.get(i));
            if let (Some(x), Some(y)) = (a, b) {
                if x.ptr_eq(y) {
                    continue;
                }
            }
            if a.is_some_and(Value::is_container) || b.is_some_and(Value::is_container) {
                let at = path.child_unchecked(i.to_string().into());
                self.no_meta(&at, a, "move or delete")?;
                self.no_meta(&at, b, "set")?;
            }
        }
        Ok(())
    }

    /// Replace the value at an existing, checked `path`.
    fn replace(&mut self, path: &Path, value: Value<L>) {
        self.place(path, value);
        self.record_write(path.clone());
    }

    /// Put `value` at an existing, checked `path` without recording the write.
    fn place(&mut self, path: &Path, value: Value<L>) {
        let key = path.last().expect("checked: not the root");
        match tree::parent_mut(&mut self.draft, path.segments()) {
            ContainerMut::Map(m) => {
                m.insert(key.clone(), value);
            }
            ContainerMut::List(l) => {
                l.set(parse_index(key).expect("checked"), value);
            }
        }
    }

    fn put_signal(&mut self, path: &Path, value: L) {
        match self.signals.iter_mut().find(|(p, _)| p == path) {
            Some(slot) => slot.1 = value,
            None => self.signals.push((path.clone(), value)),
        }
        self.wrote = true;
    }

    fn record_write(&mut self, path: Path) {
        if !self.appends.is_empty() {
            // lists at or above `path` are no longer only appended to
            self.appends.retain(|(p, _)| !path.starts_with(p));
        }
        self.writes.push(path);
        self.wrote = true;
        self.generation += 1;
    }

    /// Record an append to the list at `path`, `start` items long before it: still "only
    /// appended to" (spec `15`) if nothing at or below `path` was written before.
    fn record_append(&mut self, path: Path, start: usize) {
        if !self.appends.iter().any(|(p, _)| *p == path)
            && !self.writes.iter().any(|w| w.starts_with(&path))
        {
            self.appends.push((path.clone(), start));
        }
        self.writes.push(path);
        self.wrote = true;
        self.generation += 1;
    }
}

fn not_a_container(path: &Path, verb: &str, needed: &str) -> Error {
    Error::NotAContainer {
        path: path.clone(),
        detail: format!("cannot {verb} it: it is not {needed}"),
    }
}
