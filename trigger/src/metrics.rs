//! The trigger's Prometheus metrics: process-wide counters bumped where messages are received,
//! checked, matched and submitted, gauges for the inbox and the discover pool, plus the outbox
//! depth read at scrape time. Rendered in
//! Prometheus' text format 0.0.4 by [`crate::health`] (`GET /metrics`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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
    /// Messages whose item did not fit its item type (no jobs made).
    items_refused: AtomicU64,
    /// Reactions that fired, by rule index (0-based position in trigger_rules.yml).
    rule_matches: Mutex<BTreeMap<usize, u64>>,
    jobs: AtomicU64,
    submitted: AtomicU64,
    /// Submissions that failed: `rejected` (4xx, dead-lettered) or `unavailable` (retried).
    submit_failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Messages stored in the inbox, dropped because it was full, and waiting in it now.
    inbox_received: AtomicU64,
    inbox_dropped: AtomicU64,
    inbox_depth: AtomicI64,
    /// Discovers running git now, messages waiting for a discover slot, and discover outcomes.
    discover_in_flight: AtomicI64,
    discover_queued: AtomicI64,
    discover_timeouts: AtomicU64,
    discover_failures: AtomicU64,
    /// The fedora-messaging input, rendered once it was started.
    amqp: AmqpMetrics,
}

#[derive(Default)]
struct AmqpMetrics {
    started: AtomicBool,
    connected: AtomicBool,
    deliveries: AtomicU64,
    redeliveries: AtomicU64,
    acks: AtomicU64,
    requeues: AtomicU64,
    ignored: AtomicU64,
    /// Unusable deliveries acked and dropped, by reason.
    poison: Mutex<BTreeMap<&'static str, u64>>,
}

/// Decrements a gauge when dropped (see [`Metrics::discover_started`]).
pub struct GaugeGuard(&'static AtomicI64);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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

    pub fn item_refused(&self) {
        self.items_refused.fetch_add(1, Ordering::Relaxed);
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

    pub fn inbox_received(&self, n: u64) {
        self.inbox_received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inbox_dropped(&self) {
        self.inbox_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_inbox_depth(&self, depth: i64) {
        self.inbox_depth.store(depth, Ordering::Relaxed);
    }

    /// Counts a discover as running until the guard is dropped.
    pub fn discover_started(&'static self) -> GaugeGuard {
        self.discover_in_flight.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(&self.discover_in_flight)
    }

    /// Counts a message as waiting for a discover slot until the guard is dropped.
    pub fn discover_queued(&'static self) -> GaugeGuard {
        self.discover_queued.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(&self.discover_queued)
    }

    pub fn discover_failed(&self, timeout: bool) {
        if timeout {
            self.discover_timeouts.fetch_add(1, Ordering::Relaxed);
        } else {
            self.discover_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn amqp_set_connected(&self, connected: bool) {
        self.amqp.started.store(true, Ordering::Relaxed);
        self.amqp.connected.store(connected, Ordering::Relaxed);
    }

    /// The AMQP input's state for `/healthz`: None when it is not configured.
    pub fn amqp_connected(&self) -> Option<bool> {
        self.amqp
            .started
            .load(Ordering::Relaxed)
            .then(|| self.amqp.connected.load(Ordering::Relaxed))
    }

    pub fn amqp_delivery(&self, redelivered: bool) {
        self.amqp.deliveries.fetch_add(1, Ordering::Relaxed);
        if redelivered {
            self.amqp.redeliveries.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn amqp_acks(&self, n: u64) {
        self.amqp.acks.fetch_add(n, Ordering::Relaxed);
    }

    pub fn amqp_requeue(&self) {
        self.amqp.requeues.fetch_add(1, Ordering::Relaxed);
    }

    pub fn amqp_ignored(&self) {
        self.amqp.ignored.fetch_add(1, Ordering::Relaxed);
    }

    pub fn amqp_poison(&self, reason: &'static str) {
        *lock(&self.amqp.poison).entry(reason).or_insert(0) += 1;
    }

    fn render_amqp(&self, e: &mut Encoder) {
        let a = &self.amqp;
        if !a.started.load(Ordering::Relaxed) {
            return;
        }
        let n = |v: &AtomicU64| v.load(Ordering::Relaxed);
        e.gauge(
            "taskotron_trigger_amqp_connected",
            "1 while the fedora-messaging (AMQP) input is connected and consuming.",
            i64::from(a.connected.load(Ordering::Relaxed)),
        );
        e.counter(
            "taskotron_trigger_amqp_deliveries_total",
            "AMQP deliveries received (redeliveries included).",
            n(&a.deliveries),
        );
        e.counter(
            "taskotron_trigger_amqp_redeliveries_total",
            "AMQP deliveries the broker marked as redelivered.",
            n(&a.redeliveries),
        );
        e.counter(
            "taskotron_trigger_amqp_acks_total",
            "AMQP deliveries acknowledged (stored in the inbox, duplicate, ignored or unusable).",
            n(&a.acks),
        );
        e.counter(
            "taskotron_trigger_amqp_requeued_total",
            "AMQP deliveries handed back to the broker because the inbox could not take them.",
            n(&a.requeues),
        );
        e.counter(
            "taskotron_trigger_amqp_ignored_total",
            "AMQP deliveries on topics no consumer handles (acked).",
            n(&a.ignored),
        );
        e.family(
            "taskotron_trigger_amqp_poison_total",
            "Unusable AMQP deliveries acked and dropped, by reason.",
            "counter",
        );
        for (reason, count) in lock(&a.poison).iter() {
            e.sample(
                "taskotron_trigger_amqp_poison_total",
                &[("reason", reason)],
                *count,
            );
        }
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
        e.counter(
            "taskotron_trigger_items_refused_total",
            "Messages whose rules matched but whose item does not fit its item type (no jobs).",
            self.items_refused.load(Ordering::Relaxed),
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
        e.counter(
            "taskotron_trigger_inbox_received_total",
            "Messages stored in the inbox on receipt (after de-duplication).",
            self.inbox_received.load(Ordering::Relaxed),
        );
        e.counter(
            "taskotron_trigger_inbox_dropped_total",
            "Messages dropped on receipt because the inbox held inbox_capacity messages.",
            self.inbox_dropped.load(Ordering::Relaxed),
        );
        let level = |v: &AtomicI64| v.load(Ordering::Relaxed).max(0);
        e.gauge(
            "taskotron_trigger_inbox_depth",
            "Messages received and not yet processed.",
            level(&self.inbox_depth),
        );
        e.gauge(
            "taskotron_trigger_discover_in_flight",
            "discover reactions running git now.",
            level(&self.discover_in_flight),
        );
        e.gauge(
            "taskotron_trigger_discover_queued",
            "Messages waiting for a free discover slot (discover_concurrency).",
            level(&self.discover_queued),
        );
        e.counter(
            "taskotron_trigger_discover_timeouts_total",
            "discover reactions whose git ran past discover_timeout_secs and was killed.",
            self.discover_timeouts.load(Ordering::Relaxed),
        );
        e.counter(
            "taskotron_trigger_discover_failures_total",
            "discover reactions that failed for another reason (git error, no such branch).",
            self.discover_failures.load(Ordering::Relaxed),
        );
        self.render_amqp(&mut e);
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
        m.set_inbox_depth(7);
        m.inbox_dropped();
        m.discover_failed(true);
        let text = m.render(None);
        assert!(text.contains("taskotron_trigger_inbox_depth 7\n"));
        assert!(text.contains("taskotron_trigger_inbox_dropped_total 1\n"));
        assert!(text.contains("taskotron_trigger_discover_timeouts_total 1\n"));
        assert!(text.contains("taskotron_trigger_discover_in_flight 0\n"));
        assert!(!text.contains("amqp"), "no AMQP metrics without the input");
        m.amqp_set_connected(true);
        m.amqp_delivery(true);
        m.amqp_poison("not_json");
        let text = m.render(None);
        assert!(text.contains("taskotron_trigger_amqp_connected 1\n"));
        assert!(text.contains("taskotron_trigger_amqp_redeliveries_total 1\n"));
        assert!(text.contains("taskotron_trigger_amqp_poison_total{reason=\"not_json\"} 1\n"));
    }
}
