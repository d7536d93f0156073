//! Contract patterns (`spec/02-paths-and-patterns.md`): parsing, matching, coverage.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::path::{parse_index, Path};
use crate::zone::{zone_of_key, Zone};

/// One segment of a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PatternSegment {
    /// A key or list index, matched literally.
    Literal(Arc<str>),
    /// `*`: exactly one segment.
    Star,
    /// `**`: zero or more segments.
    DoubleStar,
}

/// A validated contract pattern such as `domain.users.*.name` or `domain.**`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: Arc<str>,
    segments: Arc<[PatternSegment]>,
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn segment_problem(segment: &str) -> Option<String> {
    if segment.is_empty() {
        Some("empty segment".to_owned())
    } else if segment == "*"
        || segment == "**"
        || is_identifier(segment)
        || parse_index(segment).is_some()
    {
        None
    } else {
        Some(format!(
            "segment {segment:?} must be an identifier ([A-Za-z_][A-Za-z0-9_]*), \
             a decimal index without leading zeros, '*' or '**'"
        ))
    }
}

impl Pattern {
    /// Parse and validate a pattern. Errors with [`Error::InvalidContract`] (without naming a
    /// process; [`crate::Contract::compile`] adds that).
    pub fn parse(text: &str) -> Result<Pattern> {
        let bad = |detail: String| Error::InvalidContract {
            pattern: text.to_owned(),
            detail,
        };
        if text.is_empty() {
            return Err(bad("empty pattern".to_owned()));
        }
        let mut segments = Vec::new();
        for (i, segment) in text.split('.').enumerate() {
            if let Some(problem) = segment_problem(segment) {
                return Err(bad(problem));
            }
            segments.push(match segment {
                "*" | "**" if i == 0 => {
                    return Err(bad(
                        "the first segment must name a namespace, not a wildcard".to_owned(),
                    ))
                }
                "*" => PatternSegment::Star,
                "**" => PatternSegment::DoubleStar,
                literal => PatternSegment::Literal(literal.into()),
            });
        }
        Ok(Pattern {
            text: text.into(),
            segments: segments.into(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The segments.
    pub fn segments(&self) -> &[PatternSegment] {
        &self.segments
    }

    /// The namespace the pattern is about (its first segment, always a literal).
    pub fn namespace(&self) -> &str {
        match &self.segments[0] {
            PatternSegment::Literal(s) => s,
            _ => unreachable!("validated: the first segment is a literal"),
        }
    }

    /// Whether the pattern has no wildcard.
    pub fn is_literal(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, PatternSegment::Literal(_)))
    }

    /// The zone of every path this pattern matches, when its literal segments before the first
    /// wildcard already decide it (`None` when a wildcard comes first and could select a zone).
    pub fn fixed_zone(&self) -> Option<Zone> {
        for segment in self.segments.iter() {
            match segment {
                PatternSegment::Literal(s) => {
                    if let Some(zone) = zone_of_key(s) {
                        return Some(zone);
                    }
                }
                _ => return None,
            }
        }
        Some(Zone::Data)
    }

    /// Whether the pattern matches exactly this path.
    pub fn matches(&self, path: &Path) -> bool {
        self.run(path).1[self.segments.len()]
    }

    /// Whether the pattern matches the path or one of its prefixes (a parent covers children).
    pub fn covers(&self, path: &Path) -> bool {
        self.run(path).0
    }

    /// Whether the path can be extended into a path the pattern matches.
    pub fn leads_to(&self, path: &Path) -> bool {
        self.run(path).1.iter().any(|b| *b)
    }

    /// Simulate the pattern over the path: (some prefix matched, positions alive at the end).
    fn run(&self, path: &Path) -> (bool, Vec<bool>) {
        let n = self.segments.len();
        let mut positions = vec![false; n + 1];
        positions[0] = true;
        self.close(&mut positions);
        let mut covered = false;
        for key in path.segments() {
            let mut next = vec![false; n + 1];
            for i in (0..n).filter(|&i| positions[i]) {
                match &self.segments[i] {
                    PatternSegment::Literal(l) if **l == **key => next[i + 1] = true,
                    PatternSegment::Literal(_) => {}
                    PatternSegment::Star => next[i + 1] = true,
                    PatternSegment::DoubleStar => next[i] = true,
                }
            }
            self.close(&mut next);
            positions = next;
            covered |= positions[n];
        }
        (covered, positions)
    }

    /// Epsilon closure: `**` may match nothing.
    fn close(&self, positions: &mut [bool]) {
        for i in 0..self.segments.len() {
            if positions[i] && self.segments[i] == PatternSegment::DoubleStar {
                positions[i + 1] = true;
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn fixed_zone() {
        assert_eq!(p("domain.x").fixed_zone(), Some(Zone::Data));
        assert_eq!(p("domain.meta_x.*").fixed_zone(), Some(Zone::Meta));
        assert_eq!(p("domain.*.meta_x").fixed_zone(), None);
        assert_eq!(p("domain.sig_go").fixed_zone(), Some(Zone::Signal));
    }

    #[test]
    fn consecutive_double_stars() {
        let pat = p("domain.**.**.x");
        assert!(pat.covers(&Path::parse("domain.x").unwrap()));
        assert!(pat.covers(&Path::parse("domain.a.b.x.c").unwrap()));
        assert!(pat.leads_to(&Path::parse("domain.a").unwrap()));
    }
}
