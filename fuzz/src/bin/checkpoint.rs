//! Arbitrary bytes as a checkpoint for a fixed MLP + Adam + StepLR: never a
//! panic, and an `Err` leaves the model, optimizer and scheduler bit-for-bit
//! as they were.
#![no_main]

use libfuzzer_sys::fuzz_target;
use train_station::io::checkpoint_from_bytes;
use train_station::nn::Module;
use ts_fuzz::{checkpoint_fixture, snapshot};

fuzz_target!(|data: &[u8]| {
    let (mut model, mut opt, mut sched) = checkpoint_fixture(1);
    let before = snapshot(&model, &opt, &sched);
    let r = checkpoint_from_bytes(data, &mut model, Some(&mut opt), Some(&mut sched));
    if r.is_err() {
        assert_eq!(
            snapshot(&model, &opt, &sched),
            before,
            "{r:?} changed state"
        );
    }
    // Without an optimizer or scheduler, the model alone.
    let (mut model, _, _) = checkpoint_fixture(0);
    let before = model.state_dict();
    if checkpoint_from_bytes(data, &mut model, None, None).is_err() {
        for ((n, a), (m, b)) in model.state_dict().iter().zip(&before) {
            assert_eq!(n, m);
            let (a, b) = (a.to_vec(), b.to_vec());
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
});
