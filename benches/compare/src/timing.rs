//! Clocks, repetition and interleaving, and deterministic test data.
//!
//! One-thread figures use the calling thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`): time the thread spends descheduled on a shared
//! machine does not count. Multi-thread figures use wall time (CPU time would
//! miss the other threads' work). Every figure is the best of several
//! repetitions, and the libraries of one case are interleaved repetition by
//! repetition so that machine noise hits all of them alike.

use std::time::Instant;

/// How long and how often to measure (`--quick` shortens both).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Minimum duration of one repetition, in seconds.
    pub rep_secs: f64,
    /// Repetitions per library; the best is kept.
    pub reps: usize,
}

impl Budget {
    /// The budget of a full run (`quick = false`) or of `--quick`.
    pub fn new(quick: bool) -> Budget {
        if quick {
            Budget {
                rep_secs: 0.01,
                reps: 3,
            }
        } else {
            Budget {
                rep_secs: 0.1,
                reps: 7,
            }
        }
    }
}

/// CPU time consumed so far by the calling thread, in seconds.
pub fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // that Linux and the BSDs define.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Seconds taken by `iters` calls of `f`: thread CPU time when `threads == 1`,
/// wall time otherwise.
pub fn time_iters(threads: usize, iters: usize, f: &mut dyn FnMut()) -> f64 {
    if threads == 1 {
        let t0 = thread_cpu_secs();
        for _ in 0..iters {
            f();
        }
        thread_cpu_secs() - t0
    } else {
        let t0 = Instant::now();
        for _ in 0..iters {
            f();
        }
        t0.elapsed().as_secs_f64()
    }
}

/// One library's entry in an interleaved measurement: `run(iters)` performs
/// `iters` calls and returns the seconds they took (normally through
/// [`time_iters`]; a library with its own thread pool times inside it).
pub struct Contender<'a> {
    /// The library's name.
    pub lib: &'static str,
    /// Runs the workload `iters` times and returns the time taken.
    pub run: Box<dyn FnMut(usize) -> f64 + 'a>,
}

impl<'a> Contender<'a> {
    /// A contender timed with [`time_iters`] on `threads` threads.
    pub fn new(lib: &'static str, threads: usize, mut f: impl FnMut() + 'a) -> Contender<'a> {
        Contender {
            lib,
            run: Box::new(move |iters| time_iters(threads, iters, &mut f)),
        }
    }
}

/// Best seconds per call for each contender: each is warmed up and given an
/// iteration count that fills `budget.rep_secs`, then the repetitions run
/// round-robin (one repetition of each library in turn).
pub fn interleaved(budget: Budget, contenders: &mut [Contender<'_>]) -> Vec<f64> {
    let iters: Vec<usize> = contenders
        .iter_mut()
        .map(|c| {
            // Warm-up (caches, pools, lazy initialisation), then calibrate.
            (c.run)(1);
            let mut n = 1usize;
            loop {
                let t = (c.run)(n);
                if t >= budget.rep_secs * 0.5 || n >= 1 << 24 {
                    let per = (t / n as f64).max(1e-9);
                    break ((budget.rep_secs / per).ceil() as usize).clamp(1, 1 << 26);
                }
                n *= 4;
            }
        })
        .collect();
    let mut best = vec![f64::INFINITY; contenders.len()];
    for _ in 0..budget.reps {
        for (i, c) in contenders.iter_mut().enumerate() {
            let t = (c.run)(iters[i]) / iters[i] as f64;
            best[i] = best[i].min(t);
        }
    }
    best
}

/// Deterministic pseudo-random values uniform in `[-1, 1)` (xorshift64*).
pub fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (r as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Deterministic class labels in `0..classes`.
pub fn labels(len: usize, classes: usize, seed: u64) -> Vec<usize> {
    data(len, seed)
        .iter()
        .map(|&v| (((v + 1.0) * 0.5 * classes as f32) as usize).min(classes - 1))
        .collect()
}

/// Panics with a message naming `what` unless every `got[i]` is within
/// `abs + rel * scale[i]` of `want[i]` (`scale` defaults to `|want|`).
pub fn check_close(
    what: &str,
    got: &[f32],
    want: &[f64],
    scale: Option<&[f64]>,
    rel: f64,
    abs: f64,
) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    let mut worst = (0.0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let s = scale.map_or(w.abs(), |s| s[i]);
        let excess = (g as f64 - w).abs() / (abs + rel * s);
        if excess.is_nan() || excess > worst.0 {
            worst = (
                if excess.is_nan() {
                    f64::INFINITY
                } else {
                    excess
                },
                i,
            );
        }
    }
    if worst.0 > 1.0 {
        let i = worst.1;
        eprintln!(
            "WRONG RESULT: {what}: element {i} is {}, the f64 reference is {} (bound: {abs:e} + {rel:e} x scale)",
            got[i], want[i]
        );
        std::process::exit(3);
    }
}
