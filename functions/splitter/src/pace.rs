//! Whether another step of a long read fits before the invocation's
//! deadline: a read stops where it stands, recorded, rather than be cut off
//! mid-step.

use std::time::{Duration, Instant};

/// Time kept in hand besides twice the last step's length: to record where
/// the read stands, hand the rest to the queue and return.
pub const SAFETY: Duration = Duration::from_millis(500);

/// The steps of one read, measured against its deadline.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    deadline: Instant,
    /// When the last step (or the read) began.
    since: Instant,
}

impl Pace {
    /// A read starting now.
    pub fn new(deadline: Instant) -> Self {
        Pace {
            deadline,
            since: Instant::now(),
        }
    }

    /// Whether another step as long as the one just ended surely fits
    /// before the deadline; the next step starts now.
    pub fn another_fits(&mut self) -> bool {
        let step = self.since.elapsed();
        self.since = Instant::now();
        let left = self.deadline.saturating_duration_since(Instant::now());
        left >= step * 2 + SAFETY
    }
}
