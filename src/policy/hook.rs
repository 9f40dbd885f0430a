//! Hook points and verdicts: the closed vocabulary every policy source (Rego module, Wasm plugin,
//! built-in) speaks. Hook names are parsed into [`HookPoint`] once, at config load; nothing deeper
//! in the engine matches on strings.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A named point in the install pipeline where policies decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookPoint {
    Resolve,
    Manifest,
    Signatures,
    Attestations,
    Contents,
    Install,
}

impl HookPoint {
    /// All hooks, in pipeline order.
    pub const ALL: [HookPoint; 6] = [
        HookPoint::Resolve,
        HookPoint::Manifest,
        HookPoint::Signatures,
        HookPoint::Attestations,
        HookPoint::Contents,
        HookPoint::Install,
    ];

    /// The name used in `input.hook`, in WIT and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::Resolve => "resolve",
            HookPoint::Manifest => "manifest",
            HookPoint::Signatures => "signatures",
            HookPoint::Attestations => "attestations",
            HookPoint::Contents => "contents",
            HookPoint::Install => "install",
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HookPoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HookPoint::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown hook '{s}' (expected one of: resolve, manifest, signatures, attestations, contents, install)"
                )
            })
    }
}

/// One deny or warn message and the source that produced it (`policy FILE rule deny`,
/// `plugin NAME export signatures`, `builtin …`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub source: String,
}

/// The outcome of one hook: all deny and warn messages of all sources. No deny means allow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub deny: Vec<Message>,
    pub warn: Vec<Message>,
}

impl Verdict {
    /// True when no source denied.
    pub fn allowed(&self) -> bool {
        self.deny.is_empty()
    }

    /// Adds a deny message.
    pub fn deny(&mut self, source: impl Into<String>, text: impl Into<String>) {
        self.deny.push(Message {
            text: text.into(),
            source: source.into(),
        });
    }

    /// Adds a warn message.
    pub fn warn(&mut self, source: impl Into<String>, text: impl Into<String>) {
        self.warn.push(Message {
            text: text.into(),
            source: source.into(),
        });
    }

    /// Union of two verdicts (deny sets and warn sets), as layers and sources combine.
    pub fn merge(&mut self, other: Verdict) {
        self.deny.extend(other.deny);
        self.warn.extend(other.warn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_round_trip_and_unknown_is_rejected() {
        for h in HookPoint::ALL {
            assert_eq!(h.as_str().parse::<HookPoint>().unwrap(), h);
        }
        assert!("Resolve".parse::<HookPoint>().is_err());
        assert!("".parse::<HookPoint>().is_err());
    }

    #[test]
    fn verdict_allows_only_without_deny() {
        let mut v = Verdict::default();
        v.warn("x", "careful");
        assert!(v.allowed());
        v.deny("y", "no");
        assert!(!v.allowed());
    }
}
