//! Zones by key prefix (`spec/03-zones.md`).

use std::fmt;

use crate::path::Path;

/// The zone of a path: decided by the first segment, from the root, that starts with a zone
/// prefix; a path with none is in [`Zone::Data`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Zone {
    /// Ordinary frozen values.
    Data,
    /// `sig_`, `cmd_`: transient, attached to one snapshot and published after commit.
    Signal,
    /// `meta_`: diagnostics, out of reach of `pure` processes.
    Meta,
    /// `heavy_`: stored by reference, an opaque leaf.
    Heavy,
    /// `log_`: append-only.
    Log,
}

impl Zone {
    /// The zone's name as used by the spec and the vectors (`"data"`, `"signal"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Zone::Data => "data",
            Zone::Signal => "signal",
            Zone::Meta => "meta",
            Zone::Heavy => "heavy",
            Zone::Log => "log",
        }
    }

    /// The zone named `name` (the inverse of [`Zone::name`]).
    pub fn from_name(name: &str) -> Option<Zone> {
        Some(match name {
            "data" => Zone::Data,
            "signal" => Zone::Signal,
            "meta" => Zone::Meta,
            "heavy" => Zone::Heavy,
            "log" => Zone::Log,
            _ => return None,
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The zone a single key's prefix selects, or `None` for a key without a zone prefix.
#[inline]
pub fn zone_of_key(key: &str) -> Option<Zone> {
    let bytes = key.as_bytes();
    // Cheap first-byte filter: every prefix starts with one of c, h, l, m, s.
    match bytes.first()? {
        b's' if bytes.starts_with(b"sig_") => Some(Zone::Signal),
        b'c' if bytes.starts_with(b"cmd_") => Some(Zone::Signal),
        b'm' if bytes.starts_with(b"meta_") => Some(Zone::Meta),
        b'h' if bytes.starts_with(b"heavy_") => Some(Zone::Heavy),
        b'l' if bytes.starts_with(b"log_") => Some(Zone::Log),
        _ => None,
    }
}

/// Extend an incremental zone decision by one key: the first prefix along the path decides.
#[inline]
pub fn zone_step(decided: Option<Zone>, key: &str) -> Option<Zone> {
    decided.or_else(|| zone_of_key(key))
}

/// The deciding segment of a sequence of segments: its index and zone, or `None` (data).
pub fn zone_position<S: AsRef<str>>(segments: &[S]) -> Option<(usize, Zone)> {
    segments
        .iter()
        .enumerate()
        .find_map(|(i, s)| zone_of_key(s.as_ref()).map(|z| (i, z)))
}

/// The zone of a path.
pub fn zone_of(path: &Path) -> Zone {
    zone_position(path.segments()).map_or(Zone::Data, |(_, z)| z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_need_the_underscore() {
        assert_eq!(zone_of_key("sig"), None);
        assert_eq!(zone_of_key("signal"), None);
        assert_eq!(zone_of_key("sig_"), Some(Zone::Signal));
        assert_eq!(zone_of_key("logbook"), None);
        assert_eq!(zone_of_key(""), None);
    }

    #[test]
    fn names_round_trip() {
        for z in [Zone::Data, Zone::Signal, Zone::Meta, Zone::Heavy, Zone::Log] {
            assert_eq!(Zone::from_name(z.name()), Some(z));
        }
    }
}
