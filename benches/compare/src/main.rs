//! `compare`: train-station against candle, `gemm`, `matrixmultiply` and
//! PyTorch in one run, with the machine's limits measured at the start and the
//! end. Writes `results.json`, `results.md` and PNG plots into `--out`
//! (default `target/compare`). `--quick` runs fewer sizes with short timing
//! (for testing the harness, not for figures).
//!
//! A run is `--passes` passes (default 3, `--quick` 1) over every workload,
//! each with a share of the repetitions; a figure is the best over all
//! passes. On a host whose speed drifts (a shared cloud machine: its FMA peak
//! can move by a third within minutes) that spreads each library's
//! repetitions over the whole run instead of one stretch of it: in pass `k`
//! the three segments (the Rust libraries, PyTorch, LibTorch) run in an
//! order rotated by `k`, and the machine's limits are measured before the
//! first pass and after each.
//!
//! Run: `cargo run --release --manifest-path benches/compare/Cargo.toml -- [--quick] [--passes P] [--out DIR]`
//! PyTorch is measured by `torch_bench.py` through `$TORCH_PYTHON` (default
//! `python3`), LibTorch by `libtorch_bench.cpp` compiled against that torch's
//! headers and libraries; both are skipped, with a note, when `import torch`
//! fails (and LibTorch alone when the C++ compiler fails).

mod elementwise;
mod gemm;
mod limits;
mod mlp;
mod plain;
mod plots;
mod report;
mod timing;
mod torch;

use std::cell::Cell;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use report::Record;
use timing::Budget;

/// Rayon pools of one and of all threads: candle's parallel operations run
/// inside the pool of the thread count being measured, and its matrix product
/// (which reads `RAYON_NUM_THREADS` on every call) sees that count.
pub struct Pools {
    pools: Vec<(usize, rayon::ThreadPool)>,
    env: Cell<usize>,
}

impl Pools {
    fn new(counts: &[usize]) -> Pools {
        let pools = counts
            .iter()
            .map(|&t| {
                let p = rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("rayon pool");
                (t, p)
            })
            .collect();
        Pools {
            pools,
            env: Cell::new(0),
        }
    }

    /// Runs `f` on the pool of `threads` threads (on one of its workers:
    /// one-thread timing must happen inside `f`).
    pub fn install<R: Send>(&self, threads: usize, f: impl FnOnce() -> R + Send) -> R {
        if self.env.get() != threads {
            // SAFETY: called from the main thread only, while no other thread
            // of this process runs candle code (the pools' workers are idle
            // between installs) and so none reads the environment.
            unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
            self.env.set(threads);
        }
        let pool = &self
            .pools
            .iter()
            .find(|p| p.0 == threads)
            .expect("a pool for this thread count")
            .1;
        pool.install(f)
    }
}

struct Args {
    quick: bool,
    out: PathBuf,
    child: bool,
    torch: bool,
    passes: Option<usize>,
    reps: Option<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        quick: false,
        out: PathBuf::from("target/compare"),
        child: false,
        torch: true,
        passes: None,
        reps: None,
    };
    let count = |v: Option<String>, what: &str| -> usize {
        match v.and_then(|s| s.parse().ok()) {
            Some(n) if n > 0 => n,
            _ => {
                eprintln!("{what} needs a positive integer (try --help)");
                std::process::exit(2);
            }
        }
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--out" => a.out = PathBuf::from(it.next().expect("--out needs a directory")),
            "--no-torch" => a.torch = false,
            "--passes" => a.passes = Some(count(it.next(), "--passes")),
            "--reps" => a.reps = Some(count(it.next(), "--reps")),
            "--matrixmultiply-child" => a.child = true,
            "-h" | "--help" => {
                println!(
                    "compare [--quick] [--passes P] [--reps N] [--out DIR] [--no-torch]\n\
                     Times train-station against candle, gemm, matrixmultiply, PyTorch\n\
                     ($TORCH_PYTHON, default python3) and LibTorch (C++, built with $CXX,\n\
                     default c++) and writes DIR/results.json, DIR/results.md and PNG\n\
                     plots (default DIR: target/compare). Each figure is the best over\n\
                     P passes (default 3, --quick 1) that share its repetitions\n\
                     (--reps N, default 7, --quick 3)."
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other} (try --help)");
                std::process::exit(2);
            }
        }
    }
    a
}

fn shapes(quick: bool) -> Vec<gemm::Shape> {
    let mut v: Vec<gemm::Shape> = gemm::sizes(quick)
        .into_iter()
        .map(gemm::Shape::square)
        .collect();
    v.extend(gemm::mlp_shapes());
    v
}

/// Child mode: `matrixmultiply` on one thread (the parent sets
/// `MATMUL_NUM_THREADS=1`); prints the records as JSON on stdout.
/// The timing budget of `--quick` or a full run, with `--reps` if given.
fn budget(args: &Args) -> Budget {
    let b = Budget::new(args.quick);
    Budget {
        reps: args.reps.unwrap_or(b.reps),
        ..b
    }
}

fn child(args: &Args) {
    let budget = budget(args);
    let pools = Pools::new(&[1]);
    let mut out = Vec::new();
    for s in shapes(args.quick) {
        gemm::run_shape(&s, 1, 1, true, &pools, budget, &mut out);
    }
    let v: Vec<Value> = out.iter().map(Record::to_json).collect();
    println!("{}", Value::Array(v));
}

/// Runs the child process for matrixmultiply's one-thread figures.
fn matrixmultiply_1t(args: &Args, reps: usize, notes: &mut Vec<String>) -> Vec<Record> {
    let exe = std::env::current_exe().expect("current executable");
    let mut cmd = Command::new(exe);
    cmd.arg("--matrixmultiply-child")
        .arg("--reps")
        .arg(reps.to_string())
        .env("MATMUL_NUM_THREADS", "1");
    if args.quick {
        cmd.arg("--quick");
    }
    match cmd.output() {
        Ok(o) if o.status.success() => {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            v.as_array()
                .map(|a| a.iter().filter_map(Record::from_json).collect())
                .unwrap_or_default()
        }
        Ok(o) => {
            eprint!("{}", String::from_utf8_lossy(&o.stderr));
            eprintln!("the matrixmultiply child process failed ({})", o.status);
            std::process::exit(3);
        }
        Err(e) => {
            notes.push(format!(
                "matrixmultiply on 1 thread skipped: cannot start the child process ({e})"
            ));
            Vec::new()
        }
    }
}

/// A part of one pass: the in-process Rust libraries, or a torch child.
#[derive(Clone, Copy, Debug)]
enum Segment {
    Rust,
    PyTorch,
    LibTorch,
}

/// The Rust libraries' workloads (with matrixmultiply's one-thread child).
fn rust_segment(
    args: &Args,
    threads: &[usize],
    mm_threads: usize,
    pools: &Pools,
    budget: Budget,
    rec: &mut Vec<Record>,
    notes: &mut Vec<String>,
) {
    for s in shapes(args.quick) {
        for &t in threads {
            eprintln!("== {} {} on {t} thread(s)", s.group, s.case());
            gemm::run_shape(&s, t, mm_threads, false, pools, budget, rec);
        }
    }
    if mm_threads != 1 {
        eprintln!("== matrixmultiply on 1 thread (child process)");
        rec.extend(matrixmultiply_1t(args, budget.reps, notes));
        notes.push(format!(
            "matrixmultiply reads its thread count once per process: its {mm_threads}-thread figures come from this process, \
             its 1-thread figures from a child process run right after the sgemm section"
        ));
    }
    for &t in threads {
        eprintln!("== element-wise on {t} thread(s)");
        elementwise::binary(t, args.quick, pools, budget, rec);
        eprintln!("== reductions on {t} thread(s)");
        elementwise::reductions(t, pools, budget, rec);
        eprintln!("== transcendentals on {t} thread(s)");
        elementwise::transcendental(t, pools, budget, rec);
    }
    for batch in [4, 64, 256] {
        for &t in threads {
            eprintln!("== MLP step batch {batch} on {t} thread(s)");
            mlp::train_step(batch, t, args.quick, pools, budget, rec);
        }
    }
    for batch in [1, 16] {
        eprintln!("== tiny MLP step batch {batch}");
        mlp::tiny_step(batch, budget, rec);
    }
}

fn main() {
    let args = parse_args();
    if args.child {
        child(&args);
        return;
    }
    let all = limits::threads_all();
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", all.min(4).to_string()) };
    }
    let mm_threads: usize = std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(all);
    if let Err(e) = plots::load_font() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    std::fs::create_dir_all(&args.out).expect("create the output directory");
    let budget = budget(&args);
    let mut threads = vec![1, all];
    threads.dedup();
    let pools = Pools::new(&threads);
    let mut notes: Vec<String> = Vec::new();
    if args.quick {
        notes.push("--quick run: few sizes, short timing; not for publication".to_string());
    }

    let machine = limits::machine();
    eprintln!("== machine: {machine}");
    let passes = args.passes.unwrap_or(if args.quick { 1 } else { 3 });
    // Each pass gets an equal share of the repetitions (at least 2).
    let pass_budget = Budget {
        reps: budget.reps.div_ceil(passes).max(2).min(budget.reps),
        ..budget
    };
    let libtorch = if args.torch {
        torch::build_libtorch(&args.out, &mut notes)
    } else {
        notes.push("PyTorch and LibTorch skipped (--no-torch)".to_string());
        None
    };
    let mut limits = vec![limits::measure(budget)];
    eprintln!("== limits at start: {:?}", limits[0]);

    let mut rec: Vec<Record> = Vec::new();
    for pass in 0..passes {
        let run = torch::Run {
            out: &args.out,
            pass,
            quick: args.quick,
            threads: &threads,
            reps: pass_budget.reps,
        };
        let mut segments = vec![Segment::Rust];
        if args.torch {
            segments.extend([Segment::PyTorch, Segment::LibTorch]);
        }
        let len = segments.len();
        segments.rotate_left(pass % len);
        for seg in segments {
            eprintln!("== pass {} of {passes}: {seg:?}", pass + 1);
            match seg {
                Segment::Rust => rust_segment(
                    &args,
                    &threads,
                    mm_threads,
                    &pools,
                    pass_budget,
                    &mut rec,
                    &mut notes,
                ),
                Segment::PyTorch => rec.extend(torch::pytorch(run, &mut notes)),
                Segment::LibTorch => {
                    if let Some(lt) = &libtorch {
                        rec.extend(torch::libtorch(lt, run, &mut notes));
                    }
                }
            }
        }
        limits.push(limits::measure(budget));
        eprintln!("== limits after pass {}: {:?}", pass + 1, limits[pass + 1]);
    }
    let mut rec = report::best_of_passes(rec);
    if passes > 1 {
        notes.push(format!(
            "Each figure is the best over {passes} passes of {} repetitions; in pass k the Rust libraries, \
             PyTorch and LibTorch run in an order rotated by k",
            pass_budget.reps
        ));
    }
    let mut seen = std::collections::HashSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    let peak = |t: usize| limits.iter().map(|l| l.peak(t)).fold(0.0, f64::max);
    report::fill_fractions(&mut rec, peak);
    notes.push(
        "Element-wise and transcendental figures go through each library's tensor API (allocation of the result included); \
         sgemm through train-station's sgemm_with into a preallocated output, gemm/matrixmultiply likewise, candle's matmul allocates"
            .to_string(),
    );

    let meta = json!({
        "machine": machine,
        "limits": limits.iter().map(|l| l.to_json()).collect::<Vec<Value>>(),
        "quick": args.quick,
        "notes": notes,
    });
    let mut full = meta.clone();
    full["records"] = Value::Array(rec.iter().map(Record::to_json).collect());
    let write = |name: &str, text: String| {
        let p = args.out.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    };
    write(
        "results.json",
        serde_json::to_string_pretty(&full).expect("JSON"),
    );
    write("results.md", report::markdown(&meta, &rec, &notes));
    match plots::draw_all(&args.out, &rec, peak) {
        Ok(files) => eprintln!(
            "== wrote results.json, results.md, {} in {}",
            files.join(", "),
            args.out.display()
        ),
        Err(e) => {
            eprintln!("error: drawing the plots failed: {e}");
            std::process::exit(1);
        }
    }
}
