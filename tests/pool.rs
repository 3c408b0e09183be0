//! Memory pool behaviour. The pool's counters and budget are process-wide, so
//! every check runs in sequence inside one test (this binary has no others).
#![cfg(feature = "std")]

use std::time::{Duration, Instant};

use train_station::tensor::pool::{self, TrimConfig};
use train_station::{Error, Tensor};

/// Sizes scale down by 128 under miri (~1000x slower), as does the pool's
/// per-thread cache bound, so every check keeps its meaning.
const fn sz(n: usize) -> usize {
    if cfg!(miri) { n / 128 } else { n }
}

#[test]
fn pool_behaviour() {
    reuse_hits_and_in_use_accounting();
    peak_tracks_big_allocations();
    tensors_outlive_their_thread_and_feed_other_caches();
    no_mem_pool_bypasses_the_cache();
    trim_returns_cached_memory();
    background_trimmer_returns_idle_memory();
    budget_turns_exhaustion_into_errors();
}

fn reuse_hits_and_in_use_accounting() {
    // 1000 floats (250 under miri): 4000 bytes round up to the 4096-byte
    // class (1000 to the 1024-byte one).
    let (n, class) = if cfg!(miri) {
        (250, 1024)
    } else {
        (1000, 4096)
    };
    let before = pool::stats();
    for _ in 0..100 {
        let t = Tensor::zeros([n]);
        assert_eq!(t.numel(), n);
    }
    let after = pool::stats();
    assert!(after.hits - before.hits >= 99, "{before:?} -> {after:?}");
    assert!(after.misses - before.misses <= 1, "{before:?} -> {after:?}");
    assert_eq!(
        after.bytes_in_use, before.bytes_in_use,
        "everything was returned"
    );

    let live: Vec<Tensor> = (0..10).map(|_| Tensor::zeros([n])).collect();
    let during = pool::stats();
    assert_eq!(during.bytes_in_use - before.bytes_in_use, 10 * class);
    drop(live);
    assert_eq!(pool::stats().bytes_in_use, before.bytes_in_use);
}

fn peak_tracks_big_allocations() {
    pool::reset_peak();
    let base = pool::stats().bytes_in_use;
    let big = Tensor::zeros([sz(4 << 20)]); // 16 MiB (128 KiB under miri)
    let s = pool::stats();
    assert!(s.peak_bytes_in_use >= base + sz(16 << 20), "{s:?}");
    drop(big);
    let s = pool::stats();
    assert!(
        s.peak_bytes_in_use >= base + sz(16 << 20),
        "peak survives the free: {s:?}"
    );
    assert!(s.bytes_in_use < s.peak_bytes_in_use);
}

fn tensors_outlive_their_thread_and_feed_other_caches() {
    // Made on threads that have exited by the time the tensors are read.
    let made: Vec<Tensor> = (0..4)
        .map(|k| {
            std::thread::spawn(move || Tensor::full([sz(3000)], k as f32))
                .join()
                .unwrap()
        })
        .collect();
    // Churn the pool so freed memory would be visible if it were reused.
    for _ in 0..50 {
        let _ = Tensor::full([sz(3000)], -1.0);
    }
    for (k, t) in made.iter().enumerate() {
        assert!(t.values().all(|v| v == k as f32));
    }
    // Dropped on yet another thread, which then reuses those blocks.
    let moved = made;
    std::thread::spawn(move || {
        let before = pool::stats();
        drop(moved);
        let again: Vec<Tensor> = (0..4).map(|_| Tensor::zeros([sz(3000)])).collect();
        let after = pool::stats();
        assert!(after.hits - before.hits >= 4, "{before:?} -> {after:?}");
        assert!(again.iter().all(|t| t.values().all(|v| v == 0.0)));
    })
    .join()
    .unwrap();
}

fn no_mem_pool_bypasses_the_cache() {
    assert!(pool::is_pool_enabled());
    let before = pool::stats();
    let t = pool::with_no_mem_pool(|| {
        assert!(!pool::is_pool_enabled());
        Tensor::zeros([sz(123_457)])
    });
    assert!(pool::is_pool_enabled());
    let during = pool::stats();
    assert_eq!(during.misses - before.misses, 1);
    assert_eq!(during.bytes_cached, before.bytes_cached);
    drop(t);
    let after = pool::stats();
    assert_eq!(
        after.bytes_cached, before.bytes_cached,
        "not cached on free"
    );
    assert_eq!(
        after.bytes_reserved, before.bytes_reserved,
        "returned to the system"
    );
    assert_eq!(after.bytes_in_use, before.bytes_in_use);
}

fn trim_returns_cached_memory() {
    drop(
        (0..8)
            .map(|_| Tensor::zeros([sz(50_000)]))
            .collect::<Vec<_>>(),
    );
    assert!(pool::stats().bytes_cached >= 8 * 4 * sz(50_000));
    pool::trim();
    let s = pool::stats();
    assert_eq!(s.bytes_cached, 0, "{s:?}");
    // Reserved memory is what is in use, plus block headers.
    assert!(s.bytes_reserved >= s.bytes_in_use);
}

fn background_trimmer_returns_idle_memory() {
    let saved = pool::trim_config();
    // Nothing idles long enough to be trimmed while the blocks are made (under
    // miri that takes many seconds of real time) ...
    pool::set_trim_config(TrimConfig {
        interval: Duration::from_millis(10),
        idle: Duration::from_secs(3600),
        keep_bytes: 0,
    });
    // 40 MiB of 1 MiB blocks: more than a thread cache keeps, so most of it
    // goes to the shared depot; the rest idles in this thread's cache.
    drop(
        (0..40)
            .map(|_| Tensor::zeros([sz(1 << 18)]))
            .collect::<Vec<_>>(),
    );
    assert!(pool::stats().bytes_cached >= sz(40 << 20));
    // ... then it all becomes idle after 30 ms.
    pool::set_trim_config(TrimConfig {
        interval: Duration::from_millis(10),
        idle: Duration::from_millis(30),
        keep_bytes: 0,
    });
    let patience = if cfg!(miri) { 1200 } else { 10 };
    let deadline = Instant::now() + Duration::from_secs(patience);
    loop {
        // Touch the pool (a different class) so this thread notices trim ticks.
        drop(Tensor::zeros([3]));
        if pool::stats().bytes_cached < sz(1 << 20) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "idle memory was not returned: {:?}",
            pool::stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pool::set_trim_config(saved);
}

fn budget_turns_exhaustion_into_errors() {
    pool::trim();
    let reserved = pool::stats().bytes_reserved;
    pool::set_budget(Some(reserved + sz(2 << 20)));
    assert_eq!(pool::budget(), Some(reserved + sz(2 << 20)));

    let ok = Tensor::try_zeros([sz(256 << 10)]).expect("1 MiB fits the budget");
    let err = Tensor::try_zeros([sz(512 << 10)]).unwrap_err();
    assert!(
        matches!(err, Error::OutOfMemory { requested, .. } if requested == sz(2 << 20)),
        "{err}"
    );
    assert!(err.to_string().starts_with(&format!(
        "out of memory: cannot allocate {} bytes",
        sz(2 << 20)
    )));
    let panicked = std::panic::catch_unwind(|| Tensor::zeros([sz(512 << 10)]));
    assert!(panicked.is_err(), "the plain form panics");
    // Views never allocate, so they work at the limit.
    let rows = sz(256 << 10) / 64;
    assert_eq!(ok.reshape([rows, 64]).t().dims(), &[64, rows]);
    drop(ok);

    // Cached blocks of another class are released to make room.
    assert!(pool::stats().bytes_cached >= sz(1 << 20));
    let other = Tensor::try_zeros([sz(300 << 10)]).expect("cache is released under pressure");
    drop(other);

    pool::set_budget(None);
    assert_eq!(pool::budget(), None);
    assert!(Tensor::try_zeros([sz(512 << 10)]).is_ok());
}
