//! The trigger's Prometheus metrics: process-wide counters bumped where messages are received,
//! checked, matched and submitted, plus the outbox depth read at scrape time. Rendered in
//! Prometheus' text format 0.0.4 by [`crate::health`] (`GET /metrics`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use taskotron_common::prometheus_text::Encoder;

/// Distinct topics counted one by one; later new topics are counted as `other`, so a bus full
/// of odd topics cannot grow the label set without bound.
const MAX_TOPICS: usize = 500;

#[derive(Default)]
pub struct Metrics {
    messages: Mutex<BTreeMap<String, u64>>,
    malformed: AtomicU64,
    duplicates: AtomicU64,
    signature_failures: AtomicU64,
    /// Reactions that fired, by rule index (0-based position in trigger_rules.yml).
    rule_matches: Mutex<BTreeMap<usize, u64>>,
    jobs: AtomicU64,
    submitted: AtomicU64,
    /// Submissions that failed: `rejected` (4xx, dead-lettered) or `unavailable` (retried).
    submit_failures: Mutex<BTreeMap<&'static str, u64>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    &METRICS
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn message(&self, topic: &str) {
        let mut m = lock(&self.messages);
        if m.contains_key(topic) || m.len() < MAX_TOPICS {
            *m.entry(topic.to_string()).or_insert(0) += 1;
        } else {
            *m.entry("other".to_string()).or_insert(0) += 1;
        }
    }

    pub fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub fn signature_failure(&self) {
        self.signature_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the rules behind a message's jobs (one per rule and message data, however many
    /// jobs the rule made).
    pub fn jobs_made<J>(&self, made: &[(usize, J)]) {
        let mut rules: Vec<usize> = made.iter().map(|(r, _)| *r).collect();
        rules.dedup();
        let mut m = lock(&self.rule_matches);
        for r in rules {
            *m.entry(r).or_insert(0) += 1;
        }
        self.jobs.fetch_add(made.len() as u64, Ordering::Relaxed);
    }

    pub fn submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn submit_failure(&self, kind: &'static str) {
        *lock(&self.submit_failures).entry(kind).or_insert(0) += 1;
    }

    /// The exposition text; `outbox` is (jobs waiting, dead letters) when readable.
    pub fn render(&self, outbox: Option<(i64, i64)>) -> String {
        let mut e = Encoder::default();
        e.family(
            "taskotron_trigger_messages_total",
            "Bus messages received, by topic.",
            "counter",
        );
        for (t, n) in lock(&self.messages).iter() {
            e.sample("taskotron_trigger_messages_total", &[("topic", t)], *n);
        }
        e.counter(
            "taskotron_trigger_messages_malformed_total",
            "Messages dropped because their envelope or body could not be parsed.",
            self.malformed.load(Ordering::Relaxed),
        );
        e.counter(
            "taskotron_trigger_messages_duplicate_total",
            "Messages ignored because their msg_id was already handled.",
            self.duplicates.load(Ordering::Relaxed),
        );
        e.counter(
            "taskotron_trigger_signature_failures_total",
            "Messages dropped because their fedmsg signature did not verify.",
            self.signature_failures.load(Ordering::Relaxed),
        );
        e.family(
            "taskotron_trigger_rule_matches_total",
            "Trigger rules that fired, by rule index in trigger_rules.yml.",
            "counter",
        );
        for (r, n) in lock(&self.rule_matches).iter() {
            e.sample(
                "taskotron_trigger_rule_matches_total",
                &[("rule", &r.to_string())],
                *n,
            );
        }
        e.counter(
            "taskotron_trigger_jobs_total",
            "Jobs the rules produced (recorded in the outbox).",
            self.jobs.load(Ordering::Relaxed),
        );
        e.counter(
            "taskotron_trigger_submitted_total",
            "Jobs the master accepted.",
            self.submitted.load(Ordering::Relaxed),
        );
        e.family(
            "taskotron_trigger_submit_failures_total",
            "Failed submissions: rejected (the master refused, dead-lettered) or unavailable (retried).",
            "counter",
        );
        let fails = lock(&self.submit_failures).clone();
        for kind in ["rejected", "unavailable"] {
            e.sample(
                "taskotron_trigger_submit_failures_total",
                &[("reason", kind)],
                fails.get(kind).copied().unwrap_or(0),
            );
        }
        if let Some((pending, dead)) = outbox {
            e.family(
                "taskotron_trigger_outbox_depth",
                "Jobs in the outbox waiting to be submitted.",
                "gauge",
            );
            e.sample("taskotron_trigger_outbox_depth", &[], pending.max(0) as u64);
            e.family(
                "taskotron_trigger_outbox_dead_letters",
                "Jobs the master refused, kept in the dead-letter table.",
                "gauge",
            );
            e.sample(
                "taskotron_trigger_outbox_dead_letters",
                &[],
                dead.max(0) as u64,
            );
        }
        e.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_and_bounds_topics() {
        let m = Metrics::default();
        for i in 0..MAX_TOPICS + 3 {
            m.message(&format!("t{i}"));
        }
        m.message("t0");
        m.jobs_made(&[(2, ()), (2, ()), (5, ())]);
        m.submit_failure("rejected");
        let text = m.render(Some((4, 1)));
        assert!(text.contains("taskotron_trigger_messages_total{topic=\"t0\"} 2\n"));
        assert!(text.contains("taskotron_trigger_messages_total{topic=\"other\"} 3\n"));
        assert!(text.contains("taskotron_trigger_rule_matches_total{rule=\"2\"} 1\n"));
        assert!(text.contains("taskotron_trigger_jobs_total 3\n"));
        assert!(text.contains("taskotron_trigger_submit_failures_total{reason=\"rejected\"} 1\n"));
        assert!(
            text.contains("taskotron_trigger_submit_failures_total{reason=\"unavailable\"} 0\n")
        );
        assert!(text.contains("taskotron_trigger_outbox_depth 4\n"));
    }
}
