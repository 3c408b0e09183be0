//! Arbitrary bytes as a checkpoint for a fixed MLP + Adam + StepLR: never a
//! panic, and an `Err` leaves the model, optimizer and scheduler bit-for-bit
//! as they were (`load_into_fixture` asserts it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use train_station::io::checkpoint_from_bytes;
use ts_fuzz::load_into_fixture;

fuzz_target!(|data: &[u8]| {
    let _ = load_into_fixture(1, |model, opt, sched| {
        checkpoint_from_bytes(data, model, Some(opt), Some(sched))
    });
    // Without an optimizer or scheduler, the model alone (a fixture whose
    // optimizer has no state yet).
    let _ = load_into_fixture(0, |model, _, _| {
        checkpoint_from_bytes(data, model, None, None)
    });
});
