//! Dotted paths (`spec/02-paths-and-patterns.md`): parsing, validation, overlap.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The most segments a path in the tree may have (spec `01` depth limit; the namespace counts).
/// [`Path::parse`] and [`Path::from_segments`] refuse longer paths; the Python layer refuses
/// values that would reach below it.
pub const MAX_DEPTH: usize = 256;

/// One place in the context tree: a sequence of non-empty segments, the first a namespace.
///
/// Cloning is O(1) (the segments are shared). Every `Path` built through the public API is
/// valid; the only exception is [`Path::root`], the empty path above the namespaces, which
/// the transaction uses for navigation and which [`Path::parse`] never returns.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Path(Arc<[Arc<str>]>);

/// Why `segment` cannot be a path segment or a map key (spec `01`, `02`), or `None` if it can.
pub fn segment_error(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        Some("empty segment")
    } else if segment.contains('.') {
        Some("a key may not contain '.', the path separator")
    } else if segment == "*" || segment == "**" {
        Some("'*' and '**' are reserved for contract patterns")
    } else {
        None
    }
}

/// Whether `key` may be a key of a map in the context tree (spec `01`).
pub fn is_valid_key(key: &str) -> bool {
    segment_error(key).is_none()
}

/// The list index a segment denotes: a decimal integer without sign or leading zeros.
pub fn parse_index(segment: &str) -> Option<usize> {
    let bytes = segment.as_bytes();
    match bytes {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ if bytes.iter().all(u8::is_ascii_digit) => segment.parse().ok(),
        _ => None,
    }
}

impl Path {
    /// Parse a dotted path such as `domain.orders.3.status`.
    ///
    /// Errors with [`Error::InvalidPath`] for an empty path, an empty segment or a wildcard.
    pub fn parse(text: &str) -> Result<Path> {
        if text.is_empty() {
            return Err(invalid(text, SEGMENTS_RULE));
        }
        let count = text.bytes().filter(|b| *b == b'.').count() + 1;
        if count > MAX_DEPTH {
            return Err(too_long(text, count));
        }
        let mut segments = Vec::with_capacity(count);
        for segment in text.split('.') {
            if segment_error(segment).is_some() {
                return Err(invalid(text, SEGMENTS_RULE));
            }
            segments.push(Arc::<str>::from(segment));
        }
        Ok(Path(segments.into()))
    }

    /// Build a path from segments, validating each one like [`Path::parse`].
    pub fn from_segments<I, S>(segments: I) -> Result<Path>
    where
        I: IntoIterator<Item = S>,
        S: Into<Arc<str>>,
    {
        let segments: Vec<Arc<str>> = segments.into_iter().map(Into::into).collect();
        let bad = |why: &str| {
            let text = segments.iter().map(|s| &**s).collect::<Vec<_>>().join(".");
            invalid(&text, why)
        };
        if segments.is_empty() {
            return Err(bad("empty path"));
        }
        if segments.len() > MAX_DEPTH {
            let text = segments.iter().map(|s| &**s).collect::<Vec<_>>().join(".");
            return Err(too_long(&text, segments.len()));
        }
        if let Some(why) = segments.iter().find_map(|s| segment_error(s)) {
            return Err(bad(why));
        }
        Ok(Path(segments.into()))
    }

    /// The empty path above the namespaces (navigation only; never a read or write target).
    pub fn root() -> Path {
        Path(Arc::from(Vec::new()))
    }

    /// The path one segment below this one. Errors with [`Error::InvalidPath`] for a bad key.
    pub fn child(&self, key: impl Into<Arc<str>>) -> Result<Path> {
        let key = key.into();
        if let Some(why) = segment_error(&key) {
            let text = format!("{self}{}{key}", if self.is_root() { "" } else { "." });
            return Err(invalid(&text, why));
        }
        Ok(self.child_unchecked(key))
    }

    /// The child path, for a key already known to be valid (a key of a map in the tree).
    pub(crate) fn child_unchecked(&self, key: Arc<str>) -> Path {
        // Exact-size iterator: one allocation.
        Path(self.0.iter().cloned().chain(std::iter::once(key)).collect())
    }

    /// A path from segments known to be valid (taken from other paths or from map keys).
    pub(crate) fn from_trusted(segments: &[Arc<str>]) -> Path {
        Path(segments.into())
    }

    /// Whether both handles share the same segments (O(1)).
    pub(crate) fn ptr_eq(&self, other: &Path) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The path without its last segment (`None` for the root).
    pub fn parent(&self) -> Option<Path> {
        let (_, init) = self.0.split_last()?;
        Some(Path(init.into()))
    }

    /// The first `len` segments as a path.
    pub fn prefix(&self, len: usize) -> Path {
        Path(self.0[..len.min(self.0.len())].into())
    }

    /// The segments.
    pub fn segments(&self) -> &[Arc<str>] {
        &self.0
    }

    /// The number of segments.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is the (empty) root path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this is the (empty) root path; same as [`Path::is_empty`].
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The first segment (the namespace), if any.
    pub fn namespace(&self) -> Option<&str> {
        self.0.first().map(|s| &**s)
    }

    /// The last segment, if any.
    pub fn last(&self) -> Option<&Arc<str>> {
        self.0.last()
    }

    /// Whether `prefix` is a prefix of this path, segment by segment (a path starts with itself).
    pub fn starts_with(&self, prefix: &Path) -> bool {
        prefix.0.len() <= self.0.len() && segments_equal(&self.0[..prefix.0.len()], &prefix.0)
    }

    /// Whether one of the two paths is a prefix of the other (spec `02`).
    pub fn overlaps(&self, other: &Path) -> bool {
        let n = self.0.len().min(other.0.len());
        segments_equal(&self.0[..n], &other.0[..n])
    }
}

fn segments_equal(a: &[Arc<str>], b: &[Arc<str>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y) || x == y)
}

/// What a dotted path's segments must be (the message of every malformed segment, spec `12`).
const SEGMENTS_RULE: &str = "segments must be non-empty and not '*' or '**'";

fn too_long(text: &str, count: usize) -> Error {
    Error::InvalidPath {
        path: text.to_owned(),
        detail: format!("{count} segments, more than the limit of {MAX_DEPTH}"),
    }
}

fn invalid(text: &str, why: &str) -> Error {
    Error::InvalidPath {
        path: text.to_owned(),
        detail: why.to_owned(),
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(segment)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

impl std::str::FromStr for Path {
    type Err = Error;

    fn from_str(text: &str) -> Result<Path> {
        Path::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_canonical_decimals() {
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("17"), Some(17));
        assert_eq!(parse_index("017"), None);
        assert_eq!(parse_index("-1"), None);
        assert_eq!(parse_index("+1"), None);
        assert_eq!(parse_index(""), None);
        assert_eq!(parse_index("1x"), None);
    }

    #[test]
    fn child_and_parent() {
        let p = Path::parse("domain.a").unwrap();
        let c = p.child("b").unwrap();
        assert_eq!(c.to_string(), "domain.a.b");
        assert_eq!(c.parent().unwrap(), p);
        assert!(p.child("x.y").is_err());
        assert!(p.child("*").is_err());
        assert_eq!(Path::root().child("domain").unwrap().to_string(), "domain");
        assert!(Path::root().parent().is_none());
    }

    #[test]
    fn paths_are_at_most_max_depth_segments() {
        let at_limit = vec!["a"; MAX_DEPTH].join(".");
        assert_eq!(Path::parse(&at_limit).unwrap().len(), MAX_DEPTH);
        let over = vec!["a"; MAX_DEPTH + 1].join(".");
        assert!(matches!(Path::parse(&over), Err(Error::InvalidPath { .. })));
        assert!(Path::from_segments(vec!["a"; MAX_DEPTH + 1]).is_err());
        assert!(Path::from_segments(vec!["a"; MAX_DEPTH]).is_ok());
    }

    #[test]
    fn from_segments_validates() {
        assert!(Path::from_segments(["domain", "x"]).is_ok());
        assert!(Path::from_segments(Vec::<&str>::new()).is_err());
        assert!(Path::from_segments(["domain", ""]).is_err());
        assert!(Path::from_segments(["domain", "**"]).is_err());
    }
}
