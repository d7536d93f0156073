//! [`PathSet`]: a trie of paths answering "does any member overlap this path?" and giving the
//! minimal members (those without a member ancestor). Used by commit (conflicts, rebase).

use std::collections::HashMap;
use std::sync::Arc;

use crate::path::Path;

#[derive(Default)]
struct Node {
    member: bool,
    children: HashMap<Arc<str>, Node, foldhash::fast::RandomState>,
}

/// A set of paths stored as a trie.
#[derive(Default)]
pub struct PathSet {
    root: Node,
    len: usize,
}

impl PathSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a path (the root path is allowed: it overlaps everything).
    pub fn insert(&mut self, path: &Path) {
        self.insert_segments(path.segments().iter());
    }

    /// Add the path made of these segments.
    pub fn insert_segments<'a>(&mut self, segments: impl Iterator<Item = &'a Arc<str>>) {
        let node = segments.fold(&mut self.root, |node, s| {
            node.children.entry(s.clone()).or_default()
        });
        if !node.member {
            node.member = true;
            self.len += 1;
        }
    }

    /// The number of distinct paths inserted.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether some member is a prefix of `path` or has `path` as a prefix.
    pub fn overlaps(&self, path: &Path) -> bool {
        let mut node = &self.root;
        for segment in path.segments() {
            if node.member {
                return true;
            }
            match node.children.get(segment) {
                Some(next) => node = next,
                None => return false,
            }
        }
        node.member || !node.children.is_empty()
    }

    /// The members that have no member ancestor.
    pub fn minimal(&self) -> Vec<Path> {
        fn walk(node: &Node, prefix: &mut Vec<Arc<str>>, out: &mut Vec<Path>) {
            if node.member {
                out.push(Path::from_trusted(prefix));
                return;
            }
            for (key, child) in &node.children {
                prefix.push(key.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut Vec::new(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn overlap_and_minimal() {
        let mut set = PathSet::new();
        for s in ["domain.a.b", "domain.a", "domain.c.d", "domain.a.x"] {
            set.insert(&p(s));
        }
        assert_eq!(set.len(), 4);
        assert!(set.overlaps(&p("domain")));
        assert!(set.overlaps(&p("domain.a.z")));
        assert!(set.overlaps(&p("domain.c")));
        assert!(!set.overlaps(&p("domain.c.e")));
        assert!(!set.overlaps(&p("global")));
        let mut minimal: Vec<String> = set.minimal().iter().map(|p| p.to_string()).collect();
        minimal.sort();
        assert_eq!(minimal, ["domain.a", "domain.c.d"]);
    }

    #[test]
    fn root_overlaps_everything() {
        let mut set = PathSet::new();
        set.insert(&Path::root());
        assert!(set.overlaps(&p("global.x")));
    }
}
