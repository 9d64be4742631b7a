//! A writer for Prometheus' text exposition format 0.0.4 (what `promtool check metrics` reads).
//!
//! The master and the trigger both serve `/metrics`; they share this encoder so escaping and
//! number formatting are identical. (The `prometheus-client` crate writes OpenMetrics instead.)

use std::fmt::Write as _;

/// A sample value: integers are written exactly, floats without a needless `.0`.
pub trait SampleValue {
    fn render(self) -> String;
}

impl SampleValue for f64 {
    fn render(self) -> String {
        fmt_f64(self)
    }
}

impl SampleValue for u64 {
    fn render(self) -> String {
        self.to_string()
    }
}

impl SampleValue for i64 {
    fn render(self) -> String {
        self.to_string()
    }
}

/// Formats a float the way Prometheus clients do for whole numbers (`3`, not `3.0`).
pub fn fmt_f64(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Accumulates metric families into `out`.
#[derive(Default)]
pub struct Encoder {
    pub out: String,
}

impl Encoder {
    /// `# HELP` and `# TYPE` lines of one family (`kind`: counter, gauge, histogram).
    pub fn family(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample line, with label values escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl SampleValue) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let val = val
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{val}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", v.render());
    }

    /// A gauge family with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, v: impl SampleValue) {
        self.family(name, help, "gauge");
        self.sample(name, &[], v);
    }

    /// A counter family with one unlabelled sample.
    pub fn counter(&mut self, name: &str, help: &str, v: impl SampleValue) {
        self.family(name, help, "counter");
        self.sample(name, &[], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        let mut e = Encoder::default();
        e.family("x_total", "a \\ b\nc", "counter");
        e.sample("x_total", &[("topic", "a\"b\\c\n")], 3u64);
        e.gauge("y", "y", 1.5);
        e.gauge("z", "z", 2.0);
        assert_eq!(
            e.out,
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n\
             x_total{topic=\"a\\\"b\\\\c\\n\"} 3\n\
             # HELP y y\n# TYPE y gauge\ny 1.5\n# HELP z z\n# TYPE z gauge\nz 2\n"
        );
        assert_eq!(fmt_f64(f64::INFINITY), "+Inf");
    }
}
