//! How gantry talks to a network that fails: which failures of an idempotent request are worth
//! another attempt (connection errors and resets, 408, 429, 500, 502, 503, 504), how long to wait
//! before it (exponential backoff with full jitter, or the server's `Retry-After` up to a cap),
//! how many attempts and how much time in all, and what counts as a stalled body (fewer than
//! [`STALL_MIN_BYTES`] in a whole stall window, so a trickle is given up too). It owns the
//! schedule, not the requests: `registry` asks it what to do after each failure.

use std::time::{Duration, Instant};

/// A body that delivers fewer bytes than this in a whole stall window has stalled.
pub const STALL_MIN_BYTES: u64 = 1024;

/// The network settings of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// A response or body that makes no progress for this long fails.
    pub stall_timeout: Duration,
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// First backoff; each later one doubles, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a server asking for more is given up on.
    pub retry_after_cap: Duration,
    /// Total time one request may take over all its attempts (waits included).
    pub deadline: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            attempts: 5,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            retry_after_cap: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        }
    }
}

/// What went wrong with one attempt, as far as retrying goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made, was reset, or broke off.
    Connection(String),
    /// The server (or the body) went quiet.
    Stalled(String),
    /// An HTTP status, with the server's `Retry-After` when it sent one.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
}

/// Whether a status is a passing condition worth another attempt.
pub fn retryable_status(code: u16) -> bool {
    matches!(code, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The retry schedule of one request.
pub struct Attempts<'a> {
    cfg: &'a NetConfig,
    started: Instant,
    made: u32,
    seed: u64,
}

impl<'a> Attempts<'a> {
    /// A request about to make its first attempt.
    pub fn new(cfg: &'a NetConfig) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        Attempts {
            cfg,
            started: Instant::now(),
            made: 1,
            seed,
        }
    }

    /// Attempts made so far.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// After a failed attempt: how long to wait before the next one, or `None` to give up
    /// (not retryable, out of attempts, past the deadline, or a `Retry-After` beyond the cap).
    pub fn next_delay(&mut self, failure: &Failure) -> Option<Duration> {
        let asked = match failure {
            Failure::Connection(_) | Failure::Stalled(_) => None,
            Failure::Status { code, retry_after } if retryable_status(*code) => *retry_after,
            Failure::Status { .. } => return None,
        };
        if self.made >= self.cfg.attempts {
            return None;
        }
        let delay = match asked {
            Some(d) if d > self.cfg.retry_after_cap => return None,
            Some(d) => d,
            None => self.backoff(),
        };
        if self.started.elapsed().saturating_add(delay) > self.cfg.deadline {
            return None;
        }
        self.made = self.made.saturating_add(1);
        Some(delay)
    }

    /// Full jitter: uniform in [0, min(max, base · 2^(n-1))].
    fn backoff(&mut self) -> Duration {
        let exp = self.made.saturating_sub(1).min(16);
        let ceiling = self
            .cfg
            .base_backoff
            .saturating_mul(1u32 << exp)
            .min(self.cfg.max_backoff);
        // xorshift64*: enough to spread clients apart, no crate needed.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.seed.checked_rem(millis.saturating_add(1)).unwrap_or(0))
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.cfg.deadline.saturating_sub(self.started.elapsed())
    }
}

/// `Retry-After` as seconds or an HTTP date, as a wait from now.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Watches a body for stalls: fewer than [`STALL_MIN_BYTES`] in a whole window of `window`.
pub struct StallGuard {
    window: Duration,
    window_start: Instant,
    window_bytes: u64,
}

impl StallGuard {
    /// A guard whose first window starts now.
    pub fn new(window: Duration) -> Self {
        StallGuard {
            window,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    /// How long the next read may wait before the window closes.
    pub fn time_left(&self) -> Duration {
        self.window.saturating_sub(self.window_start.elapsed())
    }

    /// Counts `n` bytes; `false` when the window closed with too few bytes in it.
    pub fn progress(&mut self, n: u64) -> bool {
        self.window_bytes = self.window_bytes.saturating_add(n);
        if self.window_start.elapsed() < self.window {
            return true;
        }
        let ok = self.window_bytes >= STALL_MIN_BYTES;
        self.window_start = Instant::now();
        self.window_bytes = 0;
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NetConfig {
        NetConfig {
            attempts: 4,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            retry_after_cap: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
            ..Default::default()
        }
    }

    #[test]
    fn only_passing_conditions_are_retried() {
        let c = cfg();
        for code in [408, 429, 500, 502, 503, 504] {
            let mut a = Attempts::new(&c);
            assert!(a
                .next_delay(&Failure::Status {
                    code,
                    retry_after: None
                })
                .is_some());
        }
        // "No" is an answer: never retried.
        for code in [400, 401, 403, 404, 405, 416, 501] {
            let mut a = Attempts::new(&c);
            assert_eq!(
                a.next_delay(&Failure::Status {
                    code,
                    retry_after: None
                }),
                None,
                "{code}"
            );
        }
        let mut a = Attempts::new(&c);
        assert!(a.next_delay(&Failure::Connection("reset".into())).is_some());
        assert!(a.next_delay(&Failure::Stalled("quiet".into())).is_some());
    }

    #[test]
    fn attempts_are_bounded_and_backoff_is_jittered_under_its_ceiling() {
        let c = cfg();
        let mut a = Attempts::new(&c);
        let mut delays = Vec::new();
        while let Some(d) = a.next_delay(&Failure::Connection("x".into())) {
            delays.push(d);
        }
        assert_eq!(delays.len(), 3, "4 attempts = 3 retries");
        assert_eq!(a.made(), 4);
        for (i, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis(100 << i).min(Duration::from_millis(400));
            assert!(*d <= ceiling, "retry {i}: {d:?} > {ceiling:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let c = cfg();
        let mut a = Attempts::new(&c);
        let f = |s| Failure::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(s)),
        };
        assert_eq!(a.next_delay(&f(2)), Some(Duration::from_secs(2)));
        assert_eq!(a.next_delay(&f(6)), None, "beyond the cap: give up");
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_deadline_bounds_the_waits() {
        let c = NetConfig {
            deadline: Duration::from_secs(1),
            ..cfg()
        };
        let mut a = Attempts::new(&c);
        let f = Failure::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(a.next_delay(&f), None);
    }

    #[test]
    fn a_trickle_is_a_stall() {
        let mut g = StallGuard::new(Duration::from_millis(30));
        assert!(g.progress(10));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!g.progress(10), "20 bytes in a window is a stall");
        assert!(g.progress(STALL_MIN_BYTES));
        std::thread::sleep(Duration::from_millis(40));
        assert!(g.progress(0), "the window before held enough");
    }
}
