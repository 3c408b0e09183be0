//! Arbitrary bytes as the two slots of an A/B flash region (`io::flash` over
//! `RamFlash`): `decode_slot` never panics and agrees with an independent
//! reference decoder; a load returns the newest valid slot; restoring it as a
//! checkpoint either succeeds or leaves model, optimizer and scheduler
//! bit-identical; a save over any contents writes the other slot, becomes the
//! newest, and leaves the slot it did not write untouched.
//!
//! Input: one mode byte, then the region's bytes (erased past the input).
//! Mode bits 0 and 1 re-stamp slot A's or B's CRC after the fact, so that the
//! fuzzer reaches valid slots (and their payloads) without forging a CRC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use train_station::io::flash::{AbFlash, RamFlash, decode_slot};
use ts_fuzz::flash::{SLOT, reference_decode, restamp_crc};
use ts_fuzz::{cap_memory, load_into_fixture};

type Flash = RamFlash<4, 256>;

fuzz_target!(|data: &[u8]| {
    cap_memory();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The decoder on the raw input, at any length.
    let raw = decode_slot(rest).ok().map(|s| (s.seq, s.payload));
    assert_eq!(raw, reference_decode(rest), "decode_slot of the raw input");

    let mut mem = vec![0xFFu8; 2 * SLOT];
    let n = rest.len().min(2 * SLOT);
    mem[..n].copy_from_slice(&rest[..n]);
    for i in 0..2 {
        if mode & (1 << i) != 0 {
            restamp_crc(&mut mem[i * SLOT..(i + 1) * SLOT]);
        }
    }
    let slots: Vec<Option<(u64, Vec<u8>)>> = mem
        .chunks(SLOT)
        .map(|s| {
            let got = decode_slot(s).ok().map(|d| (d.seq, d.payload));
            assert_eq!(got, reference_decode(s), "decode_slot of a slot");
            got.map(|(seq, p)| (seq, p.to_vec()))
        })
        .collect();
    // The newest valid slot; A wins a tie.
    let newest = match (&slots[0], &slots[1]) {
        (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
        (a, b) => a.as_ref().or(b.as_ref()),
    };

    let mut flash = Flash::new(2 * SLOT);
    flash.as_bytes_mut().copy_from_slice(&mem);
    let mut store = AbFlash::new(flash, 0, SLOT as u32).expect("valid geometry");
    let loaded = store.load().expect("RAM flash never fails");
    assert_eq!(
        loaded.as_ref(),
        newest,
        "load returns the newest valid slot"
    );

    if loaded.is_some() {
        let _ = load_into_fixture(1, |model, opt, sched| {
            store.load_checkpoint(model, Some(opt), Some(sched))
        });
    }

    // A save over whatever is there: the other slot than the newest.
    let payload: Vec<u8> = rest.iter().rev().take(64).copied().collect();
    let newest_seq = newest.map(|s| s.0);
    let target = match (&slots[0], &slots[1]) {
        (Some(a), Some(b)) if a.0 <= b.0 => 0,
        (Some(_), Some(_)) | (Some(_), None) => 1,
        _ => 0,
    };
    match store.save(&payload) {
        Ok(seq) => {
            assert_eq!(Some(seq), newest_seq.map_or(Some(1), |s| s.checked_add(1)));
            let back = store.load().expect("RAM flash never fails");
            assert_eq!(back, Some((seq, payload.clone())), "the save is the newest");
        }
        Err(e) => {
            // Only a sequence number that cannot grow refuses a save here.
            assert_eq!(newest_seq, Some(u64::MAX), "save failed: {e}");
        }
    }
    let after = store.into_inner();
    let other = 1 - target;
    assert_eq!(
        &after.as_bytes()[other * SLOT..(other + 1) * SLOT],
        &mem[other * SLOT..(other + 1) * SLOT],
        "the slot not written is untouched"
    );
});
