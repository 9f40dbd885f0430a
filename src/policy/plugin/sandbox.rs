//! What one plugin call runs inside: the store's host state (the two host functions, the memory
//! limiter, the log buffer), the bounded shape in which a verdict is lifted out of the guest, and
//! the wording of a failed call. Nothing here may let guest data size drive host allocation:
//! every string and list crossing back to the host is length-checked before it is copied.

use super::bindings::gantry::policy::{host, types};
use super::PluginLimits;
use std::sync::Arc;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder, Trap, ValRaw};

/// Most deny (or warn) messages one call may return; more is treated as garbage.
pub const MAX_MESSAGES: usize = 256;
/// Longest message, in bytes of the guest's encoding.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Log lines kept per call; later ones are counted, not kept.
const MAX_LOG_LINES: usize = 64;
/// Longest log line kept, in bytes; longer ones are cut.
const MAX_LOG_BYTES: usize = 1024;

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// One line a plugin logged during a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// Per-call store data: the plugin's config, the memory limiter, the log buffer.
pub struct HostState {
    config: Arc<str>,
    pub(super) limiter: Limiter,
    pub(super) logs: Vec<LogLine>,
    dropped_logs: usize,
}

impl HostState {
    pub(super) fn new(config: Arc<str>, memory_bytes: usize) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .memories(4)
            .tables(64)
            .table_elements(100_000)
            .instances(64)
            .trap_on_grow_failure(true)
            .build();
        HostState {
            config,
            limiter: Limiter {
                inner: limits,
                memory_refused: false,
            },
            logs: Vec::new(),
            dropped_logs: 0,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, msg: String) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.dropped_logs += 1;
            return;
        }
        let level = match level {
            host::Level::Debug => LogLevel::Debug,
            host::Level::Info => LogLevel::Info,
            host::Level::Warn => LogLevel::Warn,
            host::Level::Error => LogLevel::Error,
        };
        self.logs.push(LogLine {
            level,
            message: truncate(msg, MAX_LOG_BYTES),
        });
    }

    fn config(&mut self) -> String {
        self.config.to_string()
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// [`StoreLimits`] that also remembers whether it refused a memory grow, so the deny can say so.
pub struct Limiter {
    inner: StoreLimits,
    memory_refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.memory_refused = true;
        }
        allowed
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// A granted host function refusing a plugin's request (too many random bytes, say): the call
/// ends, and the deny says what was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostRefusal(pub String);

/// Why a call failed, in words for the deny message.
pub fn failure_reason(error: &wasmtime::Error, state: &HostState, limits: &PluginLimits) -> String {
    if state.limiter.memory_refused {
        return format!(
            "plugin exceeded its memory limit of {} MiB",
            limits.memory_bytes >> 20
        );
    }
    if let Some(refusal) = error.downcast_ref::<HostRefusal>() {
        return format!("host refused the plugin's request: {refusal}");
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!("plugin exceeded its CPU budget of {} fuel", limits.fuel),
        Some(Trap::Interrupt) => format!(
            "plugin exceeded its time limit of {} ms",
            limits.deadline.as_millis()
        ),
        Some(trap) => format!("plugin trapped: {trap}"),
        None => format!("plugin returned a malformed result: {error:#}"),
    }
}

/// The verdict record as lifted from the guest: both lists bounded before anything is copied.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawVerdict {
    pub deny: BoundedList<BoundedString>,
    pub warn: BoundedList<BoundedString>,
}

/// A WIT `string` whose length is checked against [`MAX_MESSAGE_BYTES`] before it is copied.
pub struct BoundedString(pub String);

/// A WIT `list<T>` whose length is checked against [`MAX_MESSAGES`] before it is copied. Without
/// the bound, a guest could return a list of a million entries all pointing at the same 16 MiB of
/// its memory and make the host allocate terabytes.
pub struct BoundedList<T>(pub Vec<T>);

/// The length half of a canonical-ABI pointer pair, as found in flat values or in memory.
fn flat_len(src: &[ValRaw; 2]) -> usize {
    src[1].get_u32() as usize
}

fn memory_len(bytes: &[u8]) -> usize {
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[4..8]);
    u32::from_le_bytes(len) as usize
}

fn within(len: usize, max: usize, what: &str) -> wasmtime::Result<()> {
    if len > max {
        wasmtime::bail!("verdict holds {what} of {len} (limit {max})");
    }
    Ok(())
}

// SAFETY (all four impls): each type has exactly the ABI of the type it delegates to (a pointer
// pair), typechecks as that type, and lifts by checking the length and then calling that type's
// own lift on the very same flat values or bytes.
unsafe impl ComponentType for BoundedString {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = <String as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <String as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl Lift for BoundedString {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        within(flat_len(src), MAX_MESSAGE_BYTES, "a message with a length")?;
        <String as Lift>::linear_lift_from_flat(cx, ty, src).map(BoundedString)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        within(
            memory_len(bytes),
            MAX_MESSAGE_BYTES,
            "a message with a length",
        )?;
        <String as Lift>::linear_lift_from_memory(cx, ty, bytes).map(BoundedString)
    }
}

unsafe impl<T: ComponentType> ComponentType for BoundedList<T> {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = <Vec<T> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Vec<T> as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl<T: Lift> Lift for BoundedList<T> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        within(flat_len(src), MAX_MESSAGES, "a list with a length")?;
        <Vec<T> as Lift>::linear_lift_from_flat(cx, ty, src).map(BoundedList)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        within(memory_len(bytes), MAX_MESSAGES, "a list with a length")?;
        <Vec<T> as Lift>::linear_lift_from_memory(cx, ty, bytes).map(BoundedList)
    }
}
