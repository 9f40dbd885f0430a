//! A registry and its mirrors as one source. Before anything is pulled, the tag's manifest
//! digest is asked of every source in parallel; at least `agree` of them must name the same one
//! (multi-vantage agreement: one lying or compromised registry cannot hand out another image on
//! its own). An unreachable source counts as not agreeing. From then on the image is read by that
//! digest from whichever source has it, each manifest and blob digest-checked as always.

use crate::source::{
    BlobSource, Descriptor, FetchedManifest, ImageSource, ManifestRef, SourceError,
};
use serde::{Deserialize, Serialize};

/// What each source said a tag names, and whether enough of them agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementFacts {
    pub tag: String,
    /// How many sources must name the same digest.
    pub required: usize,
    pub sources: Vec<SourceAnswer>,
    /// The digest enough sources named, `null` when none did.
    pub agreed: Option<String>,
    /// How many named the agreed digest (or the most common one, when there is no agreement).
    pub have: usize,
}

/// One source's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceAnswer {
    /// `host/repository`.
    pub source: String,
    /// The digest of the manifest the tag names there, `null` when it could not be had.
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AgreementFacts {
    /// Each source and its answer, for a denial.
    pub fn describe(&self) -> String {
        self.sources
            .iter()
            .map(|s| match (&s.digest, &s.error) {
                (Some(d), _) => format!("{} says {d}", s.source),
                (None, Some(e)) => format!("{} could not be asked ({e})", s.source),
                (None, None) => format!("{} has no such tag", s.source),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Sources tried in order: the registry first, then its mirrors.
pub struct MultiSource<S> {
    sources: Vec<(String, S)>,
}

impl<S: ImageSource + Send + Sync> MultiSource<S> {
    /// The sources, each with the name it is shown by (`host/repository`).
    pub fn new(sources: Vec<(String, S)>) -> Self {
        MultiSource { sources }
    }

    /// Asks every source, in parallel, which manifest `tag` names, and decides whether at least
    /// `required` of them agree. A tie between two digests is no agreement.
    pub async fn agree(&self, tag: &str, required: usize) -> AgreementFacts {
        let wanted = ManifestRef::Tag(tag.to_string());
        let answers = futures_util::future::join_all(
            self.sources.iter().map(|(_, s)| s.fetch_manifest(&wanted)),
        )
        .await;
        let sources: Vec<SourceAnswer> = self
            .sources
            .iter()
            .zip(answers)
            .map(|((name, _), a)| match a {
                Ok(Some(m)) => SourceAnswer {
                    source: name.clone(),
                    digest: Some(m.digest),
                    error: None,
                },
                Ok(None) => SourceAnswer {
                    source: name.clone(),
                    digest: None,
                    error: None,
                },
                Err(e) => SourceAnswer {
                    source: name.clone(),
                    digest: None,
                    error: Some(e.to_string()),
                },
            })
            .collect();
        let mut counts: Vec<(String, usize)> = Vec::new();
        for d in sources.iter().filter_map(|s| s.digest.clone()) {
            match counts.iter_mut().find(|(x, _)| *x == d) {
                Some((_, n)) => *n = n.saturating_add(1),
                None => counts.push((d, 1)),
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        let top = counts.first().map_or(0, |(_, n)| *n);
        let tied = counts.get(1).is_some_and(|(_, n)| *n == top);
        let agreed = counts
            .first()
            .filter(|(_, n)| *n >= required && !tied)
            .map(|(d, _)| d.clone());
        AgreementFacts {
            tag: tag.to_string(),
            required,
            sources,
            agreed,
            have: top,
        }
    }
}

/// The first source's answer that is not "not found"; the last error when every source failed.
macro_rules! first_found {
    ($self:ident, |$s:ident| $call:expr) => {{
        let mut last: Option<SourceError> = None;
        for (_, $s) in &$self.sources {
            match $call.await {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }};
}

impl<S: ImageSource + Send + Sync> ImageSource for MultiSource<S> {
    async fn fetch_manifest(
        &self,
        r: &ManifestRef,
    ) -> Result<Option<FetchedManifest>, SourceError> {
        first_found!(self, |s| s.fetch_manifest(r))
    }

    async fn fetch_blob(&self, digest: &str, max_size: u64) -> Result<Vec<u8>, SourceError> {
        let mut last = None;
        for (_, s) in &self.sources {
            match s.fetch_blob(digest, max_size).await {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| SourceError::Registry {
            what: format!("blob {digest}"),
            message: "no source to fetch it from".into(),
        }))
    }

    async fn referrers(&self, digest: &str) -> Result<Vec<Descriptor>, SourceError> {
        let mut last = None;
        for (_, s) in &self.sources {
            match s.referrers(digest).await {
                Ok(r) if !r.is_empty() => return Ok(r),
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) if self.sources.len() == 1 => Err(e),
            _ => Ok(Vec::new()),
        }
    }
}

impl<S: BlobSource + Send + Sync> BlobSource for MultiSource<S> {
    async fn blob_reader(
        &self,
        desc: &Descriptor,
    ) -> Result<Box<dyn std::io::Read + Send>, SourceError> {
        // The first source that answers streams it; the unpacker checks the digest.
        let mut last = None;
        for (_, s) in &self.sources {
            match s.blob_reader(desc).await {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| SourceError::Registry {
            what: format!("blob {}", desc.digest),
            message: "no source to fetch it from".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::memory::MemorySource;

    fn source(manifest: Option<&[u8]>) -> MemorySource {
        let s = MemorySource::default();
        if let Some(m) = manifest {
            s.manifest(Some("1"), m);
        }
        s
    }

    #[tokio::test]
    async fn agreement_needs_k_sources_naming_one_digest() {
        let (a, b) = (
            br#"{"schemaVersion":2,"a":1}"#,
            br#"{"schemaVersion":2,"b":1}"#,
        );
        let m = |answers: Vec<Option<&[u8]>>| {
            MultiSource::new(
                answers
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| (format!("r{i}/x"), source(x)))
                    .collect(),
            )
        };
        let agree3 = m(vec![Some(a), Some(a), Some(a)]).agree("1", 3).await;
        assert_eq!(agree3.have, 3);
        assert_eq!(agree3.agreed, Some(crate::registry::sha256_digest(a)));
        // One lies: two of three still agree; three of three do not.
        let lying = m(vec![Some(a), Some(b), Some(a)]);
        assert!(lying.agree("1", 2).await.agreed.is_some());
        let refused = lying.agree("1", 3).await;
        assert_eq!((refused.agreed.clone(), refused.have), (None, 2));
        assert!(
            refused.describe().contains("r1/x says sha256:"),
            "{}",
            refused.describe()
        );
        // A source without the tag counts as not agreeing; a tie is no agreement.
        assert_eq!(m(vec![Some(a), None]).agree("1", 2).await.agreed, None);
        assert_eq!(m(vec![Some(a), Some(b)]).agree("1", 1).await.agreed, None);
        assert!(m(vec![Some(a)]).agree("1", 1).await.agreed.is_some());
    }
}
