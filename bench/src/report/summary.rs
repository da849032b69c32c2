//! What the report shows, computed from the results' lines: per load case (and transport) the
//! median and range over rounds of req/s and p99, and the ratio of its median req/s to its
//! baseline case's; the propagation rounds and their medians; memory and binary sizes.

use super::input::{Line, Load, Propagation};

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Median, least and greatest of some rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` if empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        Some(Self {
            median: median(values)?,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// One load case over its rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadRow {
    pub case: String,
    pub transport: String,
    pub rounds: usize,
    pub rps: Spread,
    pub p99_ms: Option<Spread>,
    /// Set when this is a baseline case: its name.
    pub baseline_name: Option<String>,
    /// Median req/s over the median req/s of its baseline case (or of the case it is compared
    /// with), when it has one.
    pub ratio: Option<f64>,
}

impl LoadRow {
    /// Whether this row is a baseline case.
    pub fn is_baseline(&self) -> bool {
        self.baseline_name.is_some()
    }
}

/// The propagation rounds and their medians.
#[derive(Debug, Clone, PartialEq)]
pub struct PropagationSummary {
    pub rounds: Vec<Propagation>,
    pub samples: u64,
    pub lost: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The memory of one service, median over its lines, in MiB.
#[derive(Debug, Clone, PartialEq)]
pub struct RssRow {
    pub service: String,
    pub idle_mib: f64,
    pub after_mib: f64,
}

/// The stripped size of one binary, in MiB.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeRow {
    pub binary: String,
    pub mib: f64,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub meta: Vec<(String, String)>,
    pub load: Vec<LoadRow>,
    pub propagation: Option<PropagationSummary>,
    pub rss: Vec<RssRow>,
    pub sizes: Vec<SizeRow>,
    /// The reconciliation runs, in order.
    pub reconcile: Vec<super::input::Reconcile>,
}

/// Groups `items` by `key`, in the order each key first appears.
fn group_by<T, K: PartialEq>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> K,
) -> Vec<(K, Vec<T>)> {
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for item in items {
        let k = key(&item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    groups
}

/// The summary of the results' lines.
pub fn summarize(lines: &[Line]) -> Summary {
    let mut summary = Summary::default();
    let mut loads = Vec::new();
    let mut propagation = Vec::new();
    let mut rss = Vec::new();
    let mut sizes = Vec::new();
    for line in lines {
        match line {
            Line::Load(load) => loads.push(load),
            Line::Propagation(p) => propagation.push(p.clone()),
            Line::Rss(r) => rss.push(r),
            Line::Size(s) => sizes.push(s),
            Line::Reconcile(r) => summary.reconcile.push(r.clone()),
            Line::Meta(m) => summary.meta.push((m.key.clone(), m.value.clone())),
            Line::Other => {}
        }
    }
    summary.load = load_rows(&loads);
    summary.propagation = propagation_summary(propagation);
    summary.rss = group_by(rss, |r| r.service.clone())
        .into_iter()
        .map(|(service, rows)| RssRow {
            service,
            idle_mib: median_of(&rows, |r| r.idle_kb) / 1024.0,
            after_mib: median_of(&rows, |r| r.after_kb) / 1024.0,
        })
        .collect();
    summary.sizes = group_by(sizes, |s| s.binary.clone())
        .into_iter()
        .map(|(binary, rows)| SizeRow {
            binary,
            mib: median_of(&rows, |s| s.stripped_bytes) / (1024.0 * 1024.0),
        })
        .collect();
    summary
}

fn median_of<T>(rows: &[T], value: impl Fn(&T) -> f64) -> f64 {
    median(&rows.iter().map(value).collect::<Vec<_>>()).unwrap_or(f64::NAN)
}

/// One row per (case, transport), with the ratio to its baseline case.
pub fn load_rows(loads: &[&Load]) -> Vec<LoadRow> {
    let groups = group_by(loads.iter().copied(), |l| {
        (l.case.clone(), l.transport.clone())
    });
    let mut rows: Vec<(LoadRow, Option<String>)> = groups
        .into_iter()
        .map(|((case, transport), runs)| {
            let rps: Vec<f64> = runs.iter().map(|r| r.rps).collect();
            let p99: Vec<f64> = runs.iter().filter_map(|r| r.p99_ms).collect();
            let row = LoadRow {
                case,
                transport,
                rounds: runs.len(),
                rps: Spread::of(&rps).expect("a group has at least one run"),
                p99_ms: Spread::of(&p99),
                baseline_name: runs.iter().find_map(|r| r.baseline_name.clone()),
                ratio: None,
            };
            (row, runs.iter().find_map(|r| r.baseline.clone()))
        })
        .collect();
    // A case is compared with the baseline case of that name (on any transport) or with the
    // case of that name on its transport (a traced read with the same read untraced).
    let medians: Vec<(String, Option<String>, f64)> = rows
        .iter()
        .map(|(row, _)| match &row.baseline_name {
            Some(name) => (name.clone(), None, row.rps.median),
            None => (
                row.case.clone(),
                Some(row.transport.clone()),
                row.rps.median,
            ),
        })
        .collect();
    for (row, baseline) in &mut rows {
        if row.is_baseline() {
            continue;
        }
        row.ratio = baseline.as_ref().and_then(|name| {
            let base = medians
                .iter()
                .find(|(b, transport, _)| {
                    b == name && transport.as_ref().is_none_or(|t| *t == row.transport)
                })
                .map(|(_, _, rps)| *rps);
            if base.is_none() {
                eprintln!(
                    "bench-report: {}: no baseline case named {name:?}",
                    row.case
                );
            }
            base.filter(|rps| *rps > 0.0)
                .map(|rps| row.rps.median / rps)
        });
    }
    rows.into_iter().map(|(row, _)| row).collect()
}

fn propagation_summary(rounds: Vec<Propagation>) -> Option<PropagationSummary> {
    if rounds.is_empty() {
        return None;
    }
    let medians = |value: fn(&Propagation) -> Option<f64>| {
        median(&rounds.iter().filter_map(value).collect::<Vec<_>>())
    };
    Some(PropagationSummary {
        samples: rounds.iter().map(|r| r.samples).sum(),
        lost: rounds.iter().map(|r| r.lost).sum(),
        p50_ms: medians(|r| r.p50_ms),
        p99_ms: medians(|r| r.p99_ms),
        max_ms: medians(|r| r.max_ms),
        rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{input, tests::FIXTURE};
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn load_rows_keep_first_appearance_and_ratio_to_their_baseline() {
        let summary = summarize(&input::parse(FIXTURE).expect("fixture parses"));
        let names: Vec<_> = summary
            .load
            .iter()
            .map(|r| (r.case.as_str(), r.transport.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("baseline redis GET", "http"),
                ("students GET /{id} cached", "http"),
                ("students GET /{id} cached", "grpc"),
                ("baseline static", "http"),
                ("courses GET /{id} cached", "http"),
                ("students GET /{id} cached, traced", "http"),
            ]
        );
        let cached = &summary.load[1];
        assert_eq!(cached.rounds, 3);
        assert_eq!(
            cached.rps,
            Spread {
                median: 20_000.0,
                min: 19_000.0,
                max: 21_000.0
            }
        );
        let p99 = cached.p99_ms.expect("p99 given");
        assert_eq!((p99.median, p99.min, p99.max), (2.5, 2.0, 3.0));
        // 20,000 / median(40,000, 40,000, 50,000) = 0.5
        let ratio = cached.ratio.expect("has a baseline");
        assert!((ratio - 0.5).abs() < 1e-12, "{ratio}");
        assert_eq!(summary.load[0].ratio, None, "a baseline has no ratio");
        assert!(summary.load[0].is_baseline());
        assert_eq!(summary.load[2].ratio, None, "no baseline named");
        assert_eq!(summary.load[4].ratio, None, "its baseline case is missing");
        // Compared with the same read untraced: 19,500 / 20,000.
        let traced = summary.load[5].ratio.expect("the untraced case");
        assert!((traced - 0.975).abs() < 1e-12, "{traced}");
    }

    #[test]
    fn propagation_rss_sizes_and_meta() {
        let summary = summarize(&input::parse(FIXTURE).expect("fixture parses"));
        let p = summary.propagation.expect("two rounds");
        assert_eq!((p.rounds.len(), p.samples, p.lost), (2, 400, 3));
        assert_eq!(
            (p.p50_ms, p.p99_ms, p.max_ms),
            (Some(3.0), Some(9.0), Some(15.0))
        );
        assert_eq!(summary.rss.len(), 2);
        assert!((summary.rss[0].idle_mib - 10.0).abs() < 1e-9);
        assert!((summary.rss[0].after_mib - 20.0).abs() < 1e-9);
        assert!((summary.sizes[0].mib - 10.0).abs() < 1e-9);
        assert_eq!(
            summary.meta[0],
            ("machine".to_owned(), "2 cores".to_owned())
        );
    }
}
