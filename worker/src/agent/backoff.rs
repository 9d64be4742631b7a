//! Jittered exponential backoff between reconnect attempts: 0.5 s, 1 s, 2 s, ... capped at
//! `maxdelay`, each delay drawn uniformly from its upper half so a fleet of workers does not
//! reconnect in lockstep after a master restart.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: f64,
    cap: f64,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: f64, cap: f64) -> Backoff {
        Backoff {
            initial: initial.max(0.001),
            cap: cap.max(initial),
            attempt: 0,
        }
    }

    /// The upper bound of the next delay (before jitter).
    pub fn ceiling(&self) -> f64 {
        (self.initial * 2f64.powi(self.attempt.min(62) as i32)).min(self.cap)
    }

    /// The next delay, in [ceiling/2, ceiling].
    pub fn next_delay(&mut self) -> Duration {
        let top = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_secs_f64(rand::rng().random_range(top / 2.0..=top))
    }

    /// Back to the shortest delay (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_jitters_and_caps() {
        let mut b = Backoff::new(0.5, 30.0);
        let mut tops = Vec::new();
        for _ in 0..12 {
            let top = b.ceiling();
            let d = b.next_delay().as_secs_f64();
            assert!(
                d >= top / 2.0 - 1e-9 && d <= top + 1e-9,
                "{d} not in [{}, {top}]",
                top / 2.0
            );
            tops.push(top);
        }
        assert_eq!(&tops[..4], &[0.5, 1.0, 2.0, 4.0]);
        assert_eq!(*tops.last().unwrap(), 30.0);
        b.reset();
        assert_eq!(b.ceiling(), 0.5);
    }

    #[test]
    fn delays_are_not_all_equal() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let mut b = Backoff::new(10.0, 10.0);
            seen.insert(b.next_delay().as_micros());
        }
        assert!(seen.len() > 1, "jitter produced identical delays");
    }
}
