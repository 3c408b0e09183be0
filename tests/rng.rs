//! Seeded random numbers are the same on every target. The golden values below
//! were produced on x86_64; CI runs this file on aarch64 under qemu too, so a
//! pass there proves the streams agree bit for bit.

use train_station::{Generator, Tensor, manual_seed};

/// FNV-1a over the bit patterns of the values.
fn fingerprint(t: &Tensor) -> u64 {
    t.values().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        (h ^ v.to_bits() as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn seeded_streams_are_bit_identical_across_targets() {
    let mut g = Generator::new(42);
    let u: Vec<f32> = (0..6).map(|_| g.uniform()).collect();
    assert_eq!(
        u,
        [
            0.8143051, 0.318821, 0.9838941, 0.7011356, 0.7935045, 0.58809847
        ]
    );
    let mut g = Generator::new(42);
    let n: Vec<f32> = (0..6).map(|_| g.normal_pair().0).collect();
    assert_eq!(
        n,
        [
            -0.26860738,
            -0.05446217,
            -0.5785754,
            -1.6093372,
            1.6196824,
            0.6335773
        ]
    );
    assert_eq!(
        fingerprint(&Tensor::randn([100_000], Some(7))),
        0x43c8_ac3d_bc48_2352
    );
    assert_eq!(
        fingerprint(&Tensor::rand([10_000], Some(7))),
        0xcb54_76d1_39f5_5502
    );
}

#[test]
fn distributions_have_the_right_moments() {
    let n = 200_000;
    let x = Tensor::randn([n], Some(1));
    let mean = x.values().map(f64::from).sum::<f64>() / n as f64;
    let var = x.values().map(|v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.02, "var {var}");
    let u = Tensor::rand([n], Some(2));
    assert!(u.values().all(|v| (0.0..1.0).contains(&v)));
    let mean = u.values().map(f64::from).sum::<f64>() / n as f64;
    assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
}

#[test]
fn seeds_and_state() {
    assert_eq!(Tensor::randn([8], Some(3)), Tensor::randn([8], Some(3)));
    assert_ne!(Tensor::randn([8], Some(3)), Tensor::randn([8], Some(4)));
    let mut g = Generator::new(9);
    let _ = g.next_u64();
    let saved = g.state();
    let a = g.randn([5]);
    let b = Generator::from_state(saved).randn([5]);
    assert_eq!(a, b, "a restored state continues the stream");
    let p = Generator::new(5).permutation(10);
    let mut sorted = p.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    for n in [1u64, 2, 3, 7, 1000] {
        assert!((0..100).all(|_| g.below(n) < n));
    }
}

#[test]
fn global_generator_is_reseedable() {
    // The only test in this binary that touches the global generator.
    manual_seed(11);
    let a = Tensor::rand([4], None);
    let b = Tensor::rand([4], None);
    assert_ne!(a, b, "the global stream advances");
    manual_seed(11);
    assert_eq!(Tensor::rand([4], None), a);
    let state = train_station::tensor::global_rng_state();
    let c = Tensor::randn([3], None);
    train_station::tensor::set_global_rng_state(state);
    assert_eq!(Tensor::randn([3], None), c);
}
