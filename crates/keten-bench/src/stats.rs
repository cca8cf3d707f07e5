//! Measurements and the tables they are printed in.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are kept in nanoseconds up to a minute: an fsync on a shared VM disk can stall for
/// seconds, and such a stall must land in p99 rather than be clipped.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds")
}

pub fn record(hist: &mut Histogram<u64>, took: Duration) {
    hist.saturating_record(took.as_nanos().min(u128::from(u64::MAX)) as u64);
}

/// One case of a write benchmark: `writers` concurrent writers, each making `ops` calls of
/// `batch` events in total (summed over writers) within `elapsed`.
pub struct Measured {
    pub system: String,
    pub writers: usize,
    pub batch: usize,
    pub ops: u64,
    pub elapsed: Duration,
    pub hist: Histogram<u64>,
    /// What the system says about the case (keten: appends per fsync).
    pub note: String,
    /// Events/s of each round, in run order.
    pub rounds: Vec<f64>,
    /// p99 latency (µs) of each round, in run order (filled by `median_round`).
    pub rounds_p99: Vec<f64>,
}

impl Measured {
    pub fn new(system: impl Into<String>, writers: usize, batch: usize) -> Self {
        Self {
            system: system.into(),
            writers,
            batch,
            ops: 0,
            elapsed: Duration::ZERO,
            hist: histogram(),
            note: String::new(),
            rounds: Vec::new(),
            rounds_p99: Vec::new(),
        }
    }

    /// Folds one writer's share in; the case lasts as long as its slowest writer.
    pub fn add_writer(&mut self, ops: u64, elapsed: Duration, hist: &Histogram<u64>) {
        self.ops += ops;
        self.elapsed = self.elapsed.max(elapsed);
        self.hist.add(hist).expect("same histogram bounds");
    }

    /// The round with the median rate (the lower middle for an even count), with its own
    /// latencies, carrying every round's rate in run order.
    pub fn median_round(runs: Vec<Measured>) -> Self {
        assert!(!runs.is_empty(), "at least one round");
        let rates: Vec<f64> = runs.iter().map(Measured::events_per_sec).collect();
        let p99s: Vec<f64> = runs.iter().map(Measured::p99_us).collect();
        let notes: Vec<String> = runs.iter().map(|m| m.note.clone()).collect();
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| rates[a].total_cmp(&rates[b]));
        let pick = order[(runs.len() - 1) / 2];
        let mut m = runs.into_iter().nth(pick).expect("picked round exists");
        m.rounds = rates;
        m.rounds_p99 = p99s;
        if notes.iter().any(|n| !n.is_empty()) {
            m.note = notes.join(" / ");
        }
        m
    }

    /// This measurement as the first of several rounds.
    pub fn first_round(mut self) -> Self {
        self.rounds = vec![self.events_per_sec()];
        self
    }

    /// Adds another round of the same case: rates over the summed time, latencies merged.
    pub fn pool(&mut self, other: Measured) {
        self.rounds.push(other.events_per_sec());
        self.ops += other.ops;
        self.elapsed += other.elapsed;
        self.hist.add(&other.hist).expect("same histogram bounds");
        if !other.note.is_empty() {
            self.note = format!("{} / {}", self.note, other.note);
        }
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn events_per_sec(&self) -> f64 {
        self.ops_per_sec() * self.batch as f64
    }

    pub fn p50_us(&self) -> f64 {
        self.hist.value_at_quantile(0.50) as f64 / 1e3
    }

    pub fn p99_us(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1e3
    }
}

/// A plain table that prints aligned for a terminal or as Markdown.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, markdown: bool) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = (0..cols)
                .map(|i| {
                    let cell = cells.get(i).map(String::as_str).unwrap_or("");
                    // Figures read best right-aligned; the first column is a name.
                    if i == 0 {
                        format!("{cell:<w$}", w = widths[i])
                    } else {
                        format!("{cell:>w$}", w = widths[i])
                    }
                })
                .collect();
            if markdown {
                format!("| {} |", padded.join(" | "))
            } else {
                padded.join("  ").trim_end().to_string()
            }
        };
        let mut out = vec![line(&self.header)];
        if markdown {
            let rule: Vec<String> = (0..cols)
                .map(|i| {
                    if i == 0 {
                        "-".repeat(widths[i])
                    } else {
                        format!("{}:", "-".repeat(widths[i] - 1))
                    }
                })
                .collect();
            out.push(format!("| {} |", rule.join(" | ")));
        } else {
            out.push(
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  "),
            );
        }
        out.extend(self.rows.iter().map(|r| line(r)));
        out.join("\n")
    }
}

/// The median of some figures (the mean of the middle two for an even count), with their
/// minimum and maximum.
pub fn median_range(mut xs: Vec<f64>) -> Option<(f64, f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    Some((median, xs[0], xs[n - 1]))
}

pub fn fmt_rate(per_sec: f64) -> String {
    let n = per_sec.round() as u64;
    // Thousands separators: rates span 10^3..10^7 and are compared by eye.
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn fmt_us(us: f64) -> String {
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}
