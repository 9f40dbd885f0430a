//! Why an install (or a verification) failed. Each variant keeps the error of the stage that
//! failed as its source, with the context a user needs (which reference, hook, file); the exit
//! code comes from the kind of that error, decided here once.

use crate::exit::ExitKind;
use crate::image::ImageError;
use crate::policy::hook::HookPoint;
use crate::source::SourceError;
use crate::store::StoreError;
use crate::unpack::UnpackError;
use crate::verify::GatherError;
use std::path::PathBuf;

/// Why an install failed; [`InstallError::kind`] maps each to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The request cannot be carried out as asked (another origin without `--replace`, a layout
    /// that holds no image).
    #[error("{0}")]
    Usage(String),
    /// A hook denied, in enforce mode.
    #[error("install of {reference} denied at the {hook} hook:\n{reasons}")]
    Denied {
        reference: String,
        hook: HookPoint,
        reasons: String,
    },
    /// The tag names another digest than this home's ledger holds it to.
    #[error("{0}")]
    TagMoved(Box<TagMoved>),
    /// The signers changed and the registry enforces signer continuity.
    #[error("the signers of {name} changed: the installed version is signed by {from}, the new one by {to}; registry '{registry}' enforces signer continuity: pass --accept-signer-change to accept the new signers")]
    SignerChanged {
        name: String,
        registry: String,
        from: String,
        to: String,
    },
    /// The registry and its mirrors do not agree on what the tag names.
    #[error("install of {reference} denied: registry '{registry}' needs {required} of its sources to name the same digest, and only {have} do: {answers}")]
    Disagreement {
        reference: String,
        registry: String,
        required: usize,
        have: usize,
        answers: String,
    },
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Open(#[from] crate::repo::OpenError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Trust(#[from] GatherError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The image has no entrypoint gantry can launch.
    #[error("cannot install {reference}: {source}")]
    Plan {
        reference: String,
        source: crate::shim::ShimError,
    },
    /// The decision record could not be appended; nothing was installed.
    #[error("{}: cannot record the decision: {source}; nothing was installed", path.display())]
    Record {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Local I/O outside the store's own operations.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A worker thread died (a bug).
    #[error("{what} worker failed: {source}")]
    Worker {
        what: &'static str,
        source: tokio::task::JoinError,
    },
}

impl InstallError {
    /// The exit code class of this error.
    pub fn kind(&self) -> ExitKind {
        match self {
            InstallError::Usage(_) | InstallError::Plan { .. } => ExitKind::Usage,
            InstallError::Denied { .. }
            | InstallError::TagMoved(_)
            | InstallError::SignerChanged { .. }
            | InstallError::Disagreement { .. } => ExitKind::Denied,
            InstallError::Ledger(_) => ExitKind::Io,
            InstallError::Source(e) => source_kind(e),
            InstallError::Open(crate::repo::OpenError::Source(e)) => source_kind(e),
            InstallError::Open(crate::repo::OpenError::Empty(_)) => ExitKind::Usage,
            InstallError::Image(ImageError::Source(e)) => source_kind(e),
            InstallError::Image(ImageError::NoPlatform { .. }) => ExitKind::Usage,
            InstallError::Image(_) => ExitKind::Registry,
            InstallError::Trust(GatherError::Config { .. }) => ExitKind::Usage,
            InstallError::Trust(GatherError::Source(_)) => ExitKind::Registry,
            // Bad content (wrong digest, hostile or corrupt tar, over the caps) is the image
            // failing our checks; a transfer that broke off is the registry's (or the network's)
            // failure; only local disk trouble is an I/O failure.
            InstallError::Unpack(UnpackError::Io { .. } | UnpackError::BadLayerDir { .. }) => {
                ExitKind::Io
            }
            InstallError::Unpack(UnpackError::Truncated { .. }) => ExitKind::Registry,
            InstallError::Unpack(_) => ExitKind::Verification,
            InstallError::Store(StoreError::BadName(_)) => ExitKind::Usage,
            InstallError::Store(_) | InstallError::Record { .. } | InstallError::Io { .. } => {
                ExitKind::Io
            }
            InstallError::Worker { .. } => ExitKind::Internal,
        }
    }
}

fn source_kind(e: &SourceError) -> ExitKind {
    match e {
        SourceError::DigestMismatch { .. } => ExitKind::Verification,
        SourceError::Io { .. } => ExitKind::Io,
        SourceError::Credentials(c) => c.kind(),
        _ => ExitKind::Registry,
    }
}

/// A tag that names another digest than this home's ledger holds it to.
#[derive(Debug, thiserror::Error)]
#[error("{reference} now names {now} (first seen {now_seen}), not {recorded} as this home recorded it (first seen {recorded_seen}); run `gantry update {name}` to see the change and accept it")]
pub struct TagMoved {
    pub reference: String,
    pub name: String,
    pub recorded: String,
    pub recorded_seen: String,
    pub now: String,
    pub now_seen: String,
}
