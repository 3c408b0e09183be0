//! Results: one [`Record`] per (workload, case, threads, library), written as
//! `results.json` and as Markdown tables (`results.md`) with ratios.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Value, json};

/// The libraries in table order.
pub const LIBS: [&str; 7] = [
    "train-station",
    "gemm",
    "matrixmultiply",
    "candle",
    "pytorch",
    "libtorch",
    "plain-rust",
];

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Record {
    /// Workload group ("sgemm", "mlp-shapes", "elementwise", ...).
    pub group: String,
    /// The case within the group ("N=512", "add 1e5", "batch 64", ...).
    pub case: String,
    /// Threads the library was allowed.
    pub threads: usize,
    /// Library name (see [`LIBS`]).
    pub lib: String,
    /// Best seconds per call.
    pub secs: f64,
    /// The figure shown in tables.
    pub value: f64,
    /// Unit of `value` ("GFLOP/s", "steps/s", "us", "x copy").
    pub unit: String,
    /// FLOPs per call, when the workload has an FMA-bound limit.
    pub flops: Option<f64>,
    /// Fraction of the measured FMA peak (filled by [`fill_fractions`]).
    pub frac_peak: Option<f64>,
}

impl Record {
    /// A record without FLOP count.
    pub fn new(
        group: &str,
        case: String,
        threads: usize,
        lib: &str,
        secs: f64,
        value: f64,
        unit: &str,
    ) -> Record {
        Record {
            group: group.to_string(),
            case,
            threads,
            lib: lib.to_string(),
            secs,
            value,
            unit: unit.to_string(),
            flops: None,
            frac_peak: None,
        }
    }

    /// The record with `flops` FLOPs per call.
    pub fn with_flops(mut self, flops: f64) -> Record {
        self.flops = Some(flops);
        self
    }

    /// The record as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "group": self.group, "case": self.case, "threads": self.threads,
            "lib": self.lib, "secs": self.secs, "value": self.value,
            "unit": self.unit, "flops": self.flops, "frac_peak": self.frac_peak,
        })
    }

    /// A record from JSON (as `torch_bench.py` and the child process write).
    pub fn from_json(v: &Value) -> Option<Record> {
        Some(Record {
            group: v["group"].as_str()?.to_string(),
            case: v["case"].as_str()?.to_string(),
            threads: v["threads"].as_u64()? as usize,
            lib: v["lib"].as_str()?.to_string(),
            secs: v["secs"].as_f64()?,
            value: v["value"].as_f64()?,
            unit: v["unit"].as_str()?.to_string(),
            flops: v["flops"].as_f64(),
            frac_peak: None,
        })
    }
}

/// Sets `frac_peak` of every record with a FLOP count: FLOPs per second over
/// `peak(threads)` (GFLOP/s).
pub fn fill_fractions(records: &mut [Record], peak: impl Fn(usize) -> f64) {
    for r in records {
        if let Some(f) = r.flops {
            r.frac_peak = Some(f / r.secs * 1e-9 / peak(r.threads));
        }
    }
}

/// One record per (group, case, threads, library): the fastest of the
/// passes (least seconds per call), in order of first appearance.
pub fn best_of_passes(records: Vec<Record>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for r in records {
        let same = out.iter_mut().find(|o| {
            o.group == r.group && o.case == r.case && o.threads == r.threads && o.lib == r.lib
        });
        match same {
            Some(o) if r.secs < o.secs => *o = r,
            Some(_) => {}
            None => out.push(r),
        }
    }
    out
}

/// Speed of train-station relative to `other` in the same table (> 1: faster).
pub fn speed_ratio(ours: &Record, other: &Record) -> f64 {
    other.secs / ours.secs
}

fn fmt_value(r: &Record) -> String {
    let v = if r.value >= 100.0 {
        format!("{:.0}", r.value)
    } else if r.value >= 10.0 {
        format!("{:.1}", r.value)
    } else {
        format!("{:.2}", r.value)
    };
    match r.frac_peak {
        Some(f) => format!("{v} ({f:.2})"),
        None => v,
    }
}

/// The Markdown report: the machine, the limits at start and end, then one
/// table per (group, threads) with a column per library and the ratio of
/// train-station's speed to the best peer's (> 1: train-station is faster).
pub fn markdown(meta: &Value, records: &[Record], notes: &[String]) -> String {
    let mut s = String::new();
    let m = &meta["machine"];
    let _ = writeln!(s, "# train-station vs peers\n");
    let _ = writeln!(
        s,
        "CPU: {} · ISA in force: {} (peers' GEMM: {}) · threads: {} · {}\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["isa"].as_str().unwrap_or("?"),
        m["peer_gemm"].as_str().unwrap_or("?"),
        m["threads"],
        m["date"].as_str().unwrap_or("?")
    );
    if let Some(c) = m["caches"].as_object() {
        let kib = |k: &str| c[k].as_u64().unwrap_or(0) / 1024;
        let _ = writeln!(
            s,
            "Caches (detected): L1d {} KiB, L2 {} KiB, L3 share per core {} KiB\n",
            kib("l1d_bytes"),
            kib("l2_bytes"),
            kib("l3_per_core_bytes")
        );
    }
    let limits = meta["limits"].as_array().cloned().unwrap_or_default();
    let mut head = String::from("| limit | start |");
    let mut rule = String::from("|---|---|");
    for k in 1..limits.len() {
        let _ = write!(head, " after pass {k} |");
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for (key, label) in [
        ("fma_peak_gflops_1t", "FMA peak, 1 thread (GFLOP/s)"),
        ("fma_peak_gflops_all", "FMA peak, all threads (GFLOP/s)"),
        ("copy_gbs", "copy bandwidth, 1 thread (GB/s, read+write)"),
    ] {
        let _ = write!(s, "| {label} |");
        for l in &limits {
            let _ = write!(s, " {:.1} |", l[key].as_f64().unwrap_or(0.0));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\nFigures: best of several repetitions; 1 thread timed by thread CPU time, more by wall time. \
         In parentheses: fraction of the FMA peak (the largest of the measurements above) for the thread count. \
         Last column: train-station's speed over the best peer's (> 1: train-station faster; \
         for tiny-mlp the peer is the hand-written loop, and 0.67 means 1.5x its time).\n"
    );
    let mut keys: Vec<(String, usize)> = Vec::new();
    for r in records {
        let k = (r.group.clone(), r.threads);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (group, threads) in keys {
        let rows: Vec<&Record> = records
            .iter()
            .filter(|r| r.group == group && r.threads == threads)
            .collect();
        let present: BTreeSet<&str> = rows.iter().map(|r| r.lib.as_str()).collect();
        let libs: Vec<&str> = LIBS
            .iter()
            .copied()
            .filter(|l| present.contains(l))
            .collect();
        let unit = rows.first().map_or("", |r| r.unit.as_str());
        let _ = writeln!(
            s,
            "\n## {group}, {threads} thread{} ({unit})\n",
            if threads == 1 { "" } else { "s" }
        );
        let _ = writeln!(s, "| case | {} | ts / best peer |", libs.join(" | "));
        let _ = writeln!(s, "|---|{}---|", "---|".repeat(libs.len()));
        let mut cases: Vec<&str> = Vec::new();
        for r in &rows {
            if !cases.contains(&r.case.as_str()) {
                cases.push(&r.case);
            }
        }
        for case in cases {
            let get = |lib: &str| rows.iter().find(|r| r.case == case && r.lib == lib);
            let cells: Vec<String> = libs
                .iter()
                .map(|l| get(l).map_or("-".to_string(), |r| fmt_value(r)))
                .collect();
            let ratio = get("train-station").and_then(|ours| {
                libs.iter()
                    .filter(|&&l| l != "train-station")
                    .filter_map(|l| get(l))
                    .map(|r| speed_ratio(ours, r))
                    .min_by(f64::total_cmp)
            });
            let _ = writeln!(
                s,
                "| {case} | {} | {} |",
                cells.join(" | "),
                ratio.map_or("-".to_string(), |x| format!("{x:.2}x"))
            );
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(case: &str, threads: usize, lib: &str, secs: f64) -> Record {
        Record::new(
            "g",
            case.to_string(),
            threads,
            lib,
            secs,
            1.0 / secs,
            "steps/s",
        )
    }

    /// Each (group, case, threads, library) keeps its fastest pass, in the
    /// order the keys first appeared; different keys never merge.
    #[test]
    fn best_of_passes_keeps_the_fastest_per_key() {
        let passes = vec![
            rec("a", 1, "x", 3.0),
            rec("a", 1, "y", 2.0),
            rec("a", 2, "x", 5.0),
            rec("a", 1, "x", 1.0),
            rec("b", 1, "x", 4.0),
            rec("a", 1, "y", 2.5),
            rec("a", 2, "x", 6.0),
        ];
        let got: Vec<(String, usize, String, f64)> = best_of_passes(passes)
            .into_iter()
            .map(|r| (r.case, r.threads, r.lib, r.secs))
            .collect();
        let want = [
            ("a", 1, "x", 1.0),
            ("a", 1, "y", 2.0),
            ("a", 2, "x", 5.0),
            ("b", 1, "x", 4.0),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1, g.2.as_str(), g.3), w);
        }
    }
}
