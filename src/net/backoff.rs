//! Exponential pauses between attempts at something that failed, reset once
//! it has worked for a while.

use std::time::Duration;

/// Exponential pause between connection attempts.
pub struct Backoff {
    /// The pause before the next attempt.
    next: Duration,
    /// Where the pause starts, and returns to on `reset`.
    min: Duration,
    /// Where doubling stops.
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    /// The pause to take now; the following one is twice as long.
    pub fn step(&mut self) -> Duration {
        let pause = self.next;
        self.next = (pause * 2).min(self.max);
        pause
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let steps: Vec<_> = (0..4).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.step().as_millis(), 100);
    }
}
