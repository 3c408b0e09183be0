//! The background trimmer (`std` only): returns blocks that sat idle in the
//! depot to the system.

use super::*;
use core::sync::atomic::AtomicBool;

pub(super) static CONFIG: Mutex<TrimConfig> = Mutex::new(TrimConfig {
    interval: core::time::Duration::from_millis(500),
    idle: core::time::Duration::from_secs(5),
    keep_bytes: 16 << 20,
});
static EPOCH: AtomicUsize = AtomicUsize::new(1);
static STARTED: AtomicBool = AtomicBool::new(false);

#[inline]
pub(super) fn epoch() -> usize {
    EPOCH.load(Relaxed)
}

/// Idle period in ticks (at least one).
pub(super) fn idle_ticks() -> usize {
    let c = *CONFIG.lock();
    (c.idle.as_nanos() / c.interval.as_nanos().max(1)).max(1) as usize
}

#[inline]
pub(super) fn ensure_started() {
    if !STARTED.load(Relaxed) {
        start();
    }
}

#[cold]
fn start() {
    if STARTED.swap(true, Relaxed) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("train-station-pool-trim".into())
        .spawn(run);
    if spawned.is_err() {
        // No trimmer: memory is still returned by `trim()` and on budget pressure.
        STARTED.store(true, Relaxed);
    }
}

fn run() {
    loop {
        let cfg = *CONFIG.lock();
        std::thread::sleep(cfg.interval);
        tick(&cfg);
    }
}

/// Advances the epoch and returns depot blocks idle for the idle period,
/// oldest classes first, while more than `keep_bytes` stay cached.
pub(super) fn tick(cfg: &TrimConfig) {
    let now = EPOCH.fetch_add(1, Relaxed) + 1;
    let idle = idle_ticks();
    let cached = DEPOT_BYTES.load(Relaxed);
    if cached <= cfg.keep_bytes {
        return;
    }
    let mut excess = cached - cfg.keep_bytes;
    depot_release(|class, h| {
        let old = now.saturating_sub(h.freed_at) >= idle;
        if old && excess > 0 {
            excess = excess.saturating_sub(class_bytes(class));
            false
        } else {
            true
        }
    });
}
