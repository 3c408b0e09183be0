//! The library's worker pool (`std` only; without `std` everything runs on the
//! calling thread).
//!
//! One persistent pool, started lazily on the first parallel call. Its size is
//! [`num_threads`]: the available cores by default, `TRAIN_STATION_NUM_THREADS`
//! if set, or whatever [`set_num_threads`] chose. Kernels split work with
//! [`parallel_for`], which runs on the calling thread plus `num_threads() - 1`
//! workers.
//!
//! Why not rayon: a call here makes no allocator calls (the job lives on the
//! caller's stack and is handed to each worker through its own slot), which the
//! training loop needs after warm-up, and a worker that just finished a job spins
//! briefly before sleeping, so back-to-back kernel calls start without a
//! wake-up. A worker's slot carries its first task and the closure to call, so
//! it starts on the cache line it polls, without first reading the job and
//! claiming a task from the shared counter (with two threads and two tasks it
//! never touches the counter at all).
//!
//! Rules:
//! - one job at a time: a call made while the pool is busy (from inside a task,
//!   or from another thread meanwhile) runs its tasks on the calling thread, so
//!   nesting never deadlocks;
//! - a panic in a task is re-raised on the calling thread after every worker
//!   has left the job.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::marker::PhantomData;
use core::ptr::null_mut;
// Statics keep `core`'s atomics (loom's cannot be built in a `const`); the
// slots and jobs, made at run time, use the `crate::sync` seam.
use core::sync::atomic::AtomicUsize as StaticUsize;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::sync::Mutex;
use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Requested number of threads; 0 = not decided yet.
static REQUESTED: StaticUsize = StaticUsize::new(0);

/// The workers; holding this lock is what makes a caller the pool's one job.
static POOL: Mutex<Vec<Worker>> = Mutex::new(Vec::new());

/// How long an idle worker polls for the next job before sleeping.
const SPIN: Duration = Duration::from_micros(200);

/// Times a worker woke up, and times it went back to sleep less than
/// [`SPIN`] after waking (tests only).
#[cfg(test)]
static WAKES: StaticUsize = StaticUsize::new(0);
#[cfg(test)]
static QUICK_SLEEPS: StaticUsize = StaticUsize::new(0);

/// Number of threads kernels may use (including the calling thread).
///
/// Default: `TRAIN_STATION_NUM_THREADS` if it is set to a positive integer,
/// otherwise the number of available cores.
pub fn num_threads() -> usize {
    let n = REQUESTED.load(Ordering::Relaxed);
    if n != 0 {
        return n;
    }
    let d = default_threads();
    match REQUESTED.compare_exchange(0, d, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => d,
        Err(v) => v,
    }
}

/// Sets the number of threads kernels may use; `0` restores the default (see
/// [`num_threads`]). Takes effect from the next parallel call; workers are
/// started when first needed and kept.
pub fn set_num_threads(n: usize) {
    REQUESTED.store(
        if n == 0 { default_threads() } else { n },
        Ordering::Relaxed,
    );
}

fn default_threads() -> usize {
    if let Some(n) = std::env::var("TRAIN_STATION_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return n;
    }
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f(task)` once for every `task < n_tasks`, spread over up to
/// [`num_threads`] threads (the calling thread included). Returns when all
/// tasks are done. With `t` threads, tasks `0..t` start at once (task 0 on the
/// calling thread, one each on the workers); the rest are handed out in
/// increasing order, one at a time, to whichever thread is free. A task should
/// be worth at least some microseconds of work; for less, call with
/// `n_tasks == 1` (it then runs inline).
///
/// # Panics
/// Re-raises the first panic of a task, after all running tasks finished.
pub fn parallel_for<F: Fn(usize) + Sync>(n_tasks: usize, f: F) {
    parallel_for_with(num_threads(), n_tasks, f)
}

/// [`parallel_for`] on at most `max_threads` threads (still bounded by
/// [`num_threads`]).
///
/// # Panics
/// As [`parallel_for`].
pub fn parallel_for_with<F: Fn(usize) + Sync>(max_threads: usize, n_tasks: usize, f: F) {
    let threads = max_threads.min(num_threads()).min(n_tasks);
    if threads <= 1 {
        (0..n_tasks).for_each(f);
        return;
    }
    let Some(mut pool) = POOL.try_lock() else {
        // Busy: nested call or another thread's job. Run here.
        (0..n_tasks).for_each(f);
        return;
    };
    let helpers = spawn_workers(&mut pool, threads - 1);
    if helpers == 0 {
        drop(pool);
        (0..n_tasks).for_each(f);
        return;
    }
    // Task 0 is the caller's and task `w` worker `w`'s, taken without
    // touching `next`: every thread starts working at once, and the first
    // atomic read-modify-write on the counter (only when there are more
    // tasks than threads) comes after them.
    let call = Call::of(&f);
    let job = Job {
        n: n_tasks,
        next: AtomicUsize::new(helpers + 1),
        panic: Mutex::new(None),
        _f: PhantomData,
    };
    let more = n_tasks > helpers + 1;
    // The workers see the job through a lifetime-erased pointer; it stays valid
    // because this function does not return (or unwind) before every helper
    // has either been withdrawn before taking the job, or cleared its slot
    // after its last access to the job.
    let ptr = (&job as *const Job<'_>).cast::<Job<'static>>().cast_mut();
    for (i, w) in pool[..helpers].iter().enumerate() {
        w.slot.post(ptr, i + 1, call, more);
        // A worker that is spinning sees the post without a wake-up. The
        // flag may be stale (a worker falling asleep just now): it then
        // sleeps through this job, which the caller finishes alone (it
        // withdraws the post), and the next post wakes it.
        if w.slot.asleep.load(Ordering::Relaxed) != 0 {
            w.thread.unpark();
        }
    }
    let mut mine = catch_unwind(AssertUnwindSafe(|| {
        f(0);
        job.work(call)
    }));
    if mine.is_err() {
        job.stop();
    }
    for (i, w) in pool[..helpers].iter().enumerate() {
        // A worker that has not taken the job yet (busy machine, still waking
        // up) is withdrawn and its first task runs here (unless a task has
        // panicked: the call then ends as soon as it can); the other tasks
        // it would have run were claimed here already.
        if w.slot.withdraw(ptr) {
            if mine.is_ok() && job.panic.lock().is_none() {
                mine = catch_unwind(AssertUnwindSafe(|| f(i + 1)));
                if mine.is_err() {
                    job.stop();
                }
            }
            continue;
        }
        wait_until(|| w.slot.is_idle());
    }
    drop(pool);
    if let Err(e) = mine {
        resume_unwind(e);
    }
    if let Some(e) = job.panic.lock().take() {
        resume_unwind(e);
    }
}

/// Checks of a spin loop between two reads of the clock: a read costs more
/// than a check (a `clock_gettime` against a load and a pause), and it
/// delayed seeing the awaited store, the hand-off's critical path.
const CLOCK_EVERY: u32 = 64;

/// The clock of a spin loop: [`SPIN`] counted from its first reading, taken
/// at the [`CLOCK_EVERY`]th check and read again once per as many checks.
struct Spin {
    start: Option<Instant>,
    checks: u32,
}

impl Spin {
    fn new() -> Spin {
        Spin {
            start: None,
            checks: 0,
        }
    }

    /// Counts one check; true once [`SPIN`] has passed (seen at a reading).
    fn over(&mut self) -> bool {
        self.checks = self.checks.wrapping_add(1);
        self.checks.is_multiple_of(CLOCK_EVERY)
            && self.start.get_or_insert_with(Instant::now).elapsed() >= SPIN
    }
}

/// Returns once `done()`: spins for up to [`SPIN`], then yields between
/// checks.
fn wait_until(done: impl Fn() -> bool) {
    let mut spin = Spin::new();
    let mut spinning = true;
    while !done() {
        if spinning && spin.over() {
            spinning = false;
        }
        if spinning {
            core::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// A running `parallel_for`: tasks past the threads' first ones are claimed
/// from `next`. The closure, of lifetime `'a`, travels as a [`Call`].
struct Job<'a> {
    n: usize,
    next: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    _f: PhantomData<&'a ()>,
}

/// A `parallel_for` closure as two thin pointers (so that a slot can carry it
/// in atomics): the closure's address and a function that calls it.
#[derive(Clone, Copy)]
struct Call {
    data: *const (),
    run: unsafe fn(*const (), usize),
}

impl Call {
    /// `f` as a call; valid while `f` is.
    fn of<F: Fn(usize) + Sync>(f: &F) -> Call {
        /// # Safety
        /// `data` is the address of a live `F`.
        unsafe fn run<F: Fn(usize) + Sync>(data: *const (), t: usize) {
            // SAFETY: the caller's promise.
            unsafe { (*data.cast::<F>())(t) }
        }
        Call {
            data: (f as *const F).cast(),
            run: run::<F>,
        }
    }

    /// Runs task `t`.
    ///
    /// # Safety
    /// The closure this call was made of is alive (and, on another thread
    /// than its owner's, `Sync`, as `parallel_for_with` requires).
    unsafe fn task(self, t: usize) {
        // SAFETY: the caller's promise; `run` was made for this `data`.
        unsafe { (self.run)(self.data, t) }
    }
}

impl Job<'_> {
    /// Claims and runs tasks from `next` until none is left.
    fn work(&self, call: Call) {
        loop {
            // Look before claiming: when every task is taken (how most
            // calls end), a plain load shares the counter's cache line where
            // a read-modify-write would pull it away from the other thread,
            // which then waits for it on its own last look.
            if self.next.load(Ordering::Relaxed) >= self.n {
                return;
            }
            let t = self.next.fetch_add(1, Ordering::Relaxed);
            if t >= self.n {
                return;
            }
            // SAFETY: the job, and so its closure, is alive while a thread
            // works on it (see `parallel_for_with`).
            unsafe { call.task(t) };
        }
    }

    /// Lets no further task start.
    fn stop(&self) {
        self.next.store(self.n, Ordering::Relaxed);
    }
}

/// A worker's mailbox: null when idle; the job's address when a job is posted;
/// the address with its low bit set once the worker has taken it (from then on
/// only the worker clears it, when it is done with the job). The posted job's
/// first task for this worker and its closure sit beside it, on the line the
/// worker polls (the slot is aligned to a cache line of its own).
#[repr(align(64))]
struct Slot {
    job: AtomicPtr<Job<'static>>,
    /// The worker's first task.
    first: AtomicUsize,
    /// The closure ([`Call`]): its address and its caller function's.
    data: AtomicPtr<()>,
    run: AtomicPtr<()>,
    /// 1 if the job has tasks past the threads' first ones.
    more: AtomicUsize,
    /// 1 while the worker sleeps (or is about to): posts must unpark it.
    asleep: AtomicUsize,
}

/// What a worker takes from its slot: the job, its first task, the closure,
/// and whether to claim more tasks after the first.
#[derive(Clone, Copy)]
struct Taken {
    job: *mut Job<'static>,
    first: usize,
    call: Call,
    more: bool,
}

/// The hand-off protocol of one worker's slot (the loom models drive these
/// same functions). Null: idle; a job pointer: posted, not taken; the pointer
/// with its low bit set: taken (jobs are at least 2-aligned).
impl Slot {
    fn new() -> Slot {
        Slot {
            job: AtomicPtr::new(null_mut()),
            first: AtomicUsize::new(0),
            data: AtomicPtr::new(null_mut()),
            run: AtomicPtr::new(null_mut()),
            more: AtomicUsize::new(0),
            asleep: AtomicUsize::new(0),
        }
    }

    /// The caller posts `job`, whose task `first` is this worker's; the slot
    /// must be idle. The fields are written before the job is published (the
    /// release store), and read only by a worker that took it.
    fn post(&self, job: *mut Job<'static>, first: usize, call: Call, more: bool) {
        self.first.store(first, Ordering::Relaxed);
        self.data.store(call.data.cast_mut(), Ordering::Relaxed);
        self.run
            .store(call.run as *const () as *mut (), Ordering::Relaxed);
        self.more.store(usize::from(more), Ordering::Relaxed);
        self.job.store(job, Ordering::Release);
    }

    /// The worker takes the posted job, if any: marks it taken so that the
    /// caller waits for [`Slot::finish`] instead of withdrawing it.
    fn take(&self) -> Option<Taken> {
        let p = self.job.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        self.job
            .compare_exchange(
                p,
                p.map_addr(|a| a | 1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()?;
        let run = self.run.load(Ordering::Relaxed);
        Some(Taken {
            job: p,
            first: self.first.load(Ordering::Relaxed),
            call: Call {
                data: self.data.load(Ordering::Relaxed),
                // SAFETY: `post` stored a `Call::run` function pointer here,
                // before publishing the job this worker took (acquire above).
                run: unsafe { core::mem::transmute::<*mut (), unsafe fn(*const (), usize)>(run) },
            },
            more: self.more.load(Ordering::Relaxed) != 0,
        })
    }

    /// The worker is done with the job it took: after this it never touches
    /// the job again, and the caller may let it go.
    fn finish(&self) {
        self.job.store(null_mut(), Ordering::Release);
    }

    /// The caller withdraws `job` if no worker took it; true if withdrawn.
    fn withdraw(&self, job: *mut Job<'static>) -> bool {
        self.job
            .compare_exchange(job, null_mut(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether the slot is idle: the worker finished (every access it made to
    /// the job happens before this returns true).
    fn is_idle(&self) -> bool {
        self.job.load(Ordering::Acquire).is_null()
    }
}

struct Worker {
    thread: Thread,
    slot: Arc<Slot>,
}

/// Starts workers until there are `want`; returns how many exist (fewer if the
/// OS refuses to start more).
fn spawn_workers(pool: &mut Vec<Worker>, want: usize) -> usize {
    while pool.len() < want {
        let slot = Arc::new(Slot::new());
        let mine = slot.clone();
        let spawned = thread::Builder::new()
            .name(alloc::format!("train-station-{}", pool.len() + 1))
            .spawn(move || worker_main(&mine));
        match spawned {
            Ok(handle) => pool.push(Worker {
                thread: handle.thread().clone(),
                slot,
            }),
            Err(_) => break,
        }
    }
    pool.len().min(want)
}

fn worker_main(slot: &Slot) -> ! {
    #[cfg(test)]
    let mut woke: Option<Instant> = None;
    loop {
        let mut spin = Spin::new();
        let job = loop {
            if let Some(p) = slot.take() {
                break p;
            }
            if !spin.over() {
                core::hint::spin_loop();
            } else {
                slot.asleep.store(1, Ordering::Relaxed);
                if let Some(p) = slot.take() {
                    slot.asleep.store(0, Ordering::Relaxed);
                    break p;
                }
                // `unpark` before `park` makes `park` return at once, so a job
                // posted between the check and here is not missed.
                #[cfg(test)]
                if woke.is_some_and(|w| w.elapsed() < SPIN) {
                    QUICK_SLEEPS.fetch_add(1, Ordering::Relaxed);
                }
                thread::park();
                slot.asleep.store(0, Ordering::Relaxed);
                #[cfg(test)]
                {
                    woke = Some(Instant::now());
                    WAKES.fetch_add(1, Ordering::Relaxed);
                }
                // Woken: jobs are being posted again. The one that woke us
                // may be finished already (a small job is over before a
                // sleeping thread is scheduled), so spin again for the next
                // one instead of going straight back to sleep, which would
                // leave the caller alone for every job shorter than a
                // wake-up.
                spin = Spin::new();
            }
        };
        let Taken {
            job,
            first,
            call,
            more,
        } = job;
        // SAFETY: the caller of `parallel_for_with` keeps the job (and its
        // closure) alive until this slot is cleared below, after the last use
        // of either.
        let job = unsafe { &*job };
        let run = || {
            // SAFETY: as for `job` above.
            unsafe { call.task(first) };
            if more {
                job.work(call);
            }
        };
        if let Err(e) = catch_unwind(AssertUnwindSafe(run)) {
            job.stop();
            let mut first = job.panic.lock();
            if first.is_none() {
                *first = Some(e);
            }
        }
        slot.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;

    #[test]
    fn every_task_runs_once() {
        for threads in [1, 2, 3, 8] {
            for n in [0, 1, 2, 5, 100] {
                let hits: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
                parallel_for_with(threads, n, |t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn nested_calls_complete() {
        let total = AtomicU64::new(0);
        parallel_for_with(2, 4, |_| {
            parallel_for_with(2, 4, |_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 16);
    }

    #[test]
    fn panics_reach_the_caller_and_the_pool_survives() {
        let r = catch_unwind(|| {
            parallel_for_with(2, 64, |t| {
                if t == 33 {
                    panic!("task 33");
                }
            })
        });
        assert!(r.is_err());
        let total = AtomicU64::new(0);
        parallel_for_with(2, 64, |_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 64);
    }

    /// A worker woken by a job that is over before it runs (any job shorter
    /// than a wake-up) spins for the next one instead of going back to
    /// sleep: a burst of small jobs after an idle spell wakes it once, not
    /// once per job (which left every job of the burst to the caller).
    /// Checked without timing the machine: the worker counts the times it
    /// went back to sleep within [`SPIN`] of a wake-up, which the spin makes
    /// impossible; the loop waits until a wake-up has happened (other tests
    /// may keep the worker busy, and so awake, for a while).
    #[test]
    #[cfg_attr(
        miri,
        ignore = "sleeps in real time to let the worker fall asleep, which miri's pace outruns"
    )]
    fn a_woken_worker_spins_before_sleeping_again() {
        if num_threads() < 2 {
            return;
        }
        let (wakes, quick) = (
            WAKES.load(Ordering::Relaxed),
            QUICK_SLEEPS.load(Ordering::Relaxed),
        );
        for _ in 0..200 {
            // Idle long enough for the worker to fall asleep, then a job
            // that is over before it wakes.
            thread::sleep(SPIN * 10);
            parallel_for_with(2, 2, |_| core::hint::black_box(()));
            // Long enough for a woken worker to spin and fall asleep again.
            thread::sleep(SPIN * 3);
            if WAKES.load(Ordering::Relaxed) > wakes {
                break;
            }
        }
        assert!(
            WAKES.load(Ordering::Relaxed) > wakes,
            "the worker never slept and woke in 200 idle spells"
        );
        let quick = QUICK_SLEEPS.load(Ordering::Relaxed) - quick;
        assert_eq!(quick, 0, "the worker went back to sleep right after waking");
    }

    #[test]
    fn thread_count_is_positive() {
        assert!(num_threads() >= 1);
    }
}

/// Loom model of the job hand-off (`cfg(loom)`; see `src/sync.rs`). The
/// caller and the worker run the real [`Slot`] protocol and [`Job::work`] on
/// loom's atomics; the worker's park/unpark and timed spin become
/// `yield_now` (loom explores every schedule anyway).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::model::{Arc, UnsafeCell, model, thread};

    /// Stands for the job's memory: read by the tasks, written when the job
    /// ends; loom reports the write if a read is not ordered before it.
    struct Alive(UnsafeCell<bool>);

    // SAFETY: loom checks every access to the cell (that is the test).
    unsafe impl Sync for Alive {}

    impl Alive {
        fn get(&self) -> bool {
            // SAFETY: a read; loom checks it against `end`.
            self.0.with(|p| unsafe { *p })
        }
        /// The job's lifetime ends (the caller returns).
        fn end(&self) {
            // SAFETY: a write; loom checks that every read happened before.
            self.0.with_mut(|p| unsafe { *p = false })
        }
    }

    /// The caller posts a job of `n` tasks (the worker's first task is 1;
    /// with three, task 2 is claimed from the counter), works on it itself,
    /// then withdraws it (and runs task 1) or waits for the worker: every
    /// task runs exactly once, and every access the worker makes to the job
    /// and its closure happens before the caller lets them go (the write to
    /// `alive` below races otherwise).
    #[test]
    fn job_hand_off() {
        for n in [2, 3] {
            hand_off(n);
        }
    }

    fn hand_off(n: usize) {
        model(move || {
            let slot = Arc::new(Slot::new());
            let quit = Arc::new(AtomicUsize::new(0));
            let worker = {
                let (slot, quit) = (slot.clone(), quit.clone());
                thread::spawn(move || {
                    loop {
                        if let Some(t) = slot.take() {
                            // SAFETY: the caller keeps the job and its
                            // closure alive until `finish` (what this model
                            // checks).
                            unsafe {
                                t.call.task(t.first);
                                if t.more {
                                    (*t.job).work(t.call);
                                }
                            }
                            slot.finish();
                            return;
                        }
                        if quit.load(Ordering::Acquire) == 1 {
                            return;
                        }
                        thread::yield_now();
                    }
                })
            };
            let hits = [
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ];
            let alive = Alive(UnsafeCell::new(true));
            let f = |t: usize| {
                assert!(alive.get());
                hits[t].fetch_add(1, Ordering::Relaxed);
            };
            let call = Call::of(&f);
            let job = Job {
                n,
                next: AtomicUsize::new(2),
                panic: Mutex::new(None),
                _f: PhantomData,
            };
            let ptr = (&job as *const Job<'_>).cast::<Job<'static>>().cast_mut();
            slot.post(ptr, 1, call, n > 2);
            f(0);
            job.work(call);
            if slot.withdraw(ptr) {
                f(1);
            } else {
                while !slot.is_idle() {
                    thread::yield_now();
                }
            }
            // The job's lifetime ends here (the caller returns).
            alive.end();
            quit.store(1, Ordering::Release);
            worker.join().unwrap();
            for h in &hits[..n] {
                assert_eq!(h.load(Ordering::Relaxed), 1);
            }
        });
    }
}
