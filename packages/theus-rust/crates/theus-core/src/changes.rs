//! A transaction's write set with its values, as the commit pipeline receives it (spec `15`).

use crate::commit::minimal;
use crate::path::Path;
use crate::transaction::Transaction;
use crate::tree;
use crate::value::Value;

/// One entry of a commit's write set.
#[derive(Clone, Debug)]
pub enum Change<L: Clone> {
    /// `path` holds the value after the commit.
    Set(Path, Value<L>),
    /// `path` is removed by the commit.
    Delete(Path),
    /// The list at `path` existed in the base and was only appended to: the items appended.
    Append(Path, Vec<Value<L>>),
}

impl<L: Clone + Send + Sync + 'static> Transaction<L> {
    /// The changes of this transaction's tree writes: one per minimal written path, sorted by
    /// path (segment by segment). Signals are not included (see [`Transaction::signals`]).
    /// Cost: the number of written paths (and of appended items), not the size of the state.
    pub fn changes(&self) -> Vec<Change<L>> {
        let mut paths: Vec<Path> = minimal(&self.writes).iter().cloned().collect();
        paths.sort_by(|a, b| a.segments().cmp(b.segments()));
        paths
            .into_iter()
            .map(|path| match tree::lookup(&self.draft, path.segments()) {
                None => Change::Delete(path),
                Some(value) => {
                    let start = self.appends.iter().find(|(p, _)| *p == path).map(|e| e.1);
                    match (start, value) {
                        (Some(start), Value::List(list)) => {
                            let items = list.iter().skip(start).cloned().collect();
                            Change::Append(path, items)
                        }
                        _ => Change::Set(path, value.clone()),
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Contract, PMap, Store};

    type V = Value<i64>;

    fn store() -> Store<i64> {
        let mut domain = PMap::new();
        domain.insert("x".into(), V::Leaf(1));
        let mut log = crate::PList::new();
        log.push(V::Leaf(1));
        domain.insert("items".into(), V::List(log));
        let mut root = PMap::new();
        root.insert("domain".into(), V::Map(domain));
        Store::new(root).unwrap()
    }

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn appends_sets_and_deletes_sorted() {
        let store = store();
        let mut tx = store.begin(std::sync::Arc::new(Contract::unrestricted()), true);
        tx.append(&path("domain.items"), V::Leaf(2)).unwrap();
        tx.append(&path("domain.items"), V::Leaf(3)).unwrap();
        tx.set(&path("domain.y"), V::Leaf(5)).unwrap();
        tx.delete(&path("domain.x")).unwrap();
        let changes = tx.changes();
        assert_eq!(changes.len(), 3);
        match &changes[0] {
            Change::Append(p, items) => {
                assert_eq!(p.to_string(), "domain.items");
                assert_eq!(items.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&changes[1], Change::Delete(p) if p.to_string() == "domain.x"));
        assert!(matches!(&changes[2], Change::Set(p, V::Leaf(5)) if p.to_string() == "domain.y"));
    }

    #[test]
    fn a_write_below_or_before_makes_an_append_a_set() {
        let store = store();
        let mut tx = store.begin(std::sync::Arc::new(Contract::unrestricted()), true);
        tx.append(&path("domain.items"), V::Leaf(2)).unwrap();
        tx.set(&path("domain.items.0"), V::Leaf(9)).unwrap();
        assert!(matches!(&tx.changes()[0], Change::Set(..)));
        let mut tx = store.begin(std::sync::Arc::new(Contract::unrestricted()), true);
        tx.set(&path("domain.items.0"), V::Leaf(9)).unwrap();
        tx.append(&path("domain.items"), V::Leaf(2)).unwrap();
        assert!(matches!(&tx.changes()[0], Change::Set(..)));
    }
}
