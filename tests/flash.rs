//! A/B flash checkpoints (`io::flash`, feature `flash`): a power cut at any
//! byte of a save leaves the previous checkpoint loadable and whole; hostile
//! slot contents are rejected without a panic.

use embedded_storage::nor_flash::NorFlash;
use train_station::io::checkpoint_to_bytes;
use train_station::io::flash::{AbFlash, HEADER_LEN, RamFlash, decode_slot};
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, Optimizer};
use train_station::{Tensor, manual_seed};

type Flash = RamFlash<8, 1024>;
const SLOT: u32 = 8 * 1024;

fn model(seed: u64) -> Sequential {
    manual_seed(seed);
    Sequential::new()
        .with(Linear::new(8, 16))
        .with(Relu)
        .with(Linear::new(16, 4))
}

/// All parameters as bit patterns.
fn bits(m: &Sequential) -> Vec<u32> {
    m.parameters()
        .iter()
        .flat_map(|p| p.to_vec())
        .map(f32::to_bits)
        .collect()
}

/// A model trained one Adam step (so the checkpoint has optimizer state).
fn stepped(seed: u64) -> (Sequential, Adam) {
    let mut m = model(seed);
    let mut opt = Adam::new(&m.parameters(), AdamConfig::default());
    let x = Tensor::from_fn([3, 8], |i| (i[0] * 8 + i[1]) as f32 * 0.1 - 1.0);
    let loss = m.forward(&x).square().sum();
    loss.backward();
    opt.step_module(&mut m).unwrap();
    (m, opt)
}

#[test]
fn save_load_round_trip_and_alternating_slots() {
    let mut store = AbFlash::new(Flash::new(4 * SLOT as usize), SLOT, SLOT).unwrap();
    assert!(
        store.load().unwrap().is_none(),
        "erased flash holds nothing"
    );
    let mut fresh = model(99);
    assert!(
        store
            .load_checkpoint(&mut fresh, None, None)
            .unwrap()
            .is_none()
    );

    for round in 1..=4u64 {
        let (m, opt) = stepped(round);
        let seq = store
            .save_checkpoint(&m, Some(&opt), None, round * 10, &[("board", "test")])
            .unwrap();
        assert_eq!(seq, round);
        let mut back = model(1000 + round);
        let mut opt2 = Adam::new(&back.parameters(), AdamConfig::default());
        let info = store
            .load_checkpoint(&mut back, Some(&mut opt2), None)
            .unwrap()
            .expect("a checkpoint");
        assert_eq!(info.step, round * 10);
        assert_eq!(info.extra("board"), Some("test"));
        assert_eq!(bits(&back), bits(&m));
    }
    // Saves alternate: slot A (at SLOT) holds seq 3, slot B seq 4.
    let mem = store.flash_mut().as_bytes().to_vec();
    let s = SLOT as usize;
    assert_eq!(decode_slot(&mem[s..2 * s]).unwrap().seq, 3);
    assert_eq!(decode_slot(&mem[2 * s..3 * s]).unwrap().seq, 4);
    // Nothing outside the two slots was touched.
    assert!(mem[..s].iter().chain(&mem[3 * s..]).all(|&b| b == 0xFF));
}

/// Cuts the third save at every `step`-th byte of its erase and writes (and at
/// every byte of the header write): each time the load returns the second
/// checkpoint, bit for bit, and a later save works.
#[test]
fn power_cut_at_every_page_and_inside_the_header() {
    let (m1, _) = stepped(1);
    let (m2, o2) = stepped(2);
    let (m3, o3) = stepped(3);
    let payload3 = checkpoint_to_bytes(&m3, Some(&o3), None, 3, &[]).unwrap();
    let mut base = AbFlash::new(Flash::new(2 * SLOT as usize), 0, SLOT).unwrap();
    base.save_checkpoint(&m1, None, None, 1, &[]).unwrap();
    base.save_checkpoint(&m2, Some(&o2), None, 2, &[]).unwrap();
    let before = base.into_inner();

    // The third save erases slot A (SLOT bytes), writes the payload rounded up
    // to the write size, then the header area (24 bytes rounded up to 8).
    let w = <Flash as NorFlash>::WRITE_SIZE;
    let payload_bytes = payload3.len().div_ceil(w) * w;
    let header_area = HEADER_LEN.div_ceil(w) * w;
    let total = SLOT as usize + payload_bytes + header_area;
    let header_start = SLOT as usize + payload_bytes;
    let mut cuts: Vec<usize> = (0..total).step_by(256).collect();
    cuts.extend(header_start..total);
    let mut checked = 0;
    for cut in cuts {
        let mut flash = before.clone();
        flash.cut_after(Some(cut));
        let mut store = AbFlash::new(flash, 0, SLOT).unwrap();
        assert!(
            store.save(&payload3).is_err(),
            "cut at {cut} must fail the save"
        );
        // Power back: a fresh store over the same bytes, as after a reboot.
        let mut flash = store.into_inner();
        flash.cut_after(None);
        let mut store = AbFlash::new(flash, 0, SLOT).unwrap();
        let mut back = model(77);
        let info = store
            .load_checkpoint(&mut back, None, None)
            .unwrap_or_else(|e| panic!("cut at {cut}: load failed: {e}"))
            .unwrap_or_else(|| panic!("cut at {cut}: no checkpoint"));
        assert_eq!(info.step, 2, "cut at {cut}");
        assert_eq!(bits(&back), bits(&m2), "cut at {cut}: not checkpoint 2");
        // The next save, with power, succeeds and becomes the newest.
        assert_eq!(store.save(&payload3).unwrap(), 3, "cut at {cut}");
        store.load_checkpoint(&mut back, None, None).unwrap();
        assert_eq!(bits(&back), bits(&m3));
        checked += 1;
    }
    assert!(checked > HEADER_LEN, "{checked} cuts");
    // Uncut, the save completes: the budget was exactly enough.
    let mut flash = before.clone();
    flash.cut_after(Some(total));
    let mut store = AbFlash::new(flash, 0, SLOT).unwrap();
    assert_eq!(store.save(&payload3).unwrap(), 3);
}

#[test]
fn hostile_slots_are_rejected_without_panic() {
    let (m, _) = stepped(5);
    let mut store = AbFlash::new(Flash::new(2 * SLOT as usize), 0, SLOT).unwrap();
    store.save_checkpoint(&m, None, None, 5, &[]).unwrap();
    let good = store.flash_mut().as_bytes()[..SLOT as usize].to_vec();
    assert_eq!(decode_slot(&good).unwrap().seq, 1);

    // Every single-byte change of the header, and a few in the payload.
    let len = u32::from_le_bytes(good[16..20].try_into().unwrap()) as usize;
    let mut positions: Vec<usize> = (0..HEADER_LEN).collect();
    positions.extend([24, 100, 24 + len / 2, 24 + len - 1]);
    for &i in &positions {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            assert!(decode_slot(&bad).is_err(), "byte {i} ^ {flip:#x} accepted");
            // The store treats the slot as empty: Ok(None), never Err or panic.
            let mut flash = Flash::new(2 * SLOT as usize);
            flash.as_bytes_mut()[..SLOT as usize].copy_from_slice(&bad);
            let mut s = AbFlash::new(flash, 0, SLOT).unwrap();
            assert!(s.load().unwrap().is_none(), "byte {i} ^ {flip:#x}");
        }
    }
    // Lengths and offsets past the slot, truncated slots, empty input.
    let mut huge = good.clone();
    huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_slot(&huge).is_err());
    let mut off = good.clone();
    off[6..8].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(decode_slot(&off).is_err());
    for cut in [0, 1, 4, 23, 24, 25, 24 + len - 1] {
        assert!(decode_slot(&good[..cut]).is_err(), "truncated to {cut}");
    }
    assert!(decode_slot(&good[..24 + len]).is_ok());
    // A valid slot whose payload is not a checkpoint: a Format error on load.
    let mut junk = AbFlash::new(Flash::new(2 * SLOT as usize), 0, SLOT).unwrap();
    junk.save(b"not safetensors").unwrap();
    let mut back = model(1);
    assert!(junk.load_checkpoint(&mut back, None, None).is_err());
}

#[test]
fn bad_geometry_and_oversized_payloads_are_errors() {
    assert!(AbFlash::new(Flash::new(16 * 1024), 512, SLOT).is_err());
    assert!(AbFlash::new(Flash::new(16 * 1024), 0, 1000).is_err());
    assert!(AbFlash::new(Flash::new(16 * 1024), 1024, SLOT).is_err());
    let mut store = AbFlash::new(Flash::new(2048), 0, 1024).unwrap();
    assert_eq!(store.capacity(), 1024 - 24);
    assert!(store.save(&[7u8; 1001]).is_err());
    assert_eq!(store.save(&[7u8; 1000]).unwrap(), 1);
    assert_eq!(store.load().unwrap().unwrap().1, vec![7u8; 1000]);
}

/// Regression (found while writing the `flash` fuzz target, which asserts
/// it): a valid slot whose sequence number is `u64::MAX` made the next save
/// overflow `seq + 1` (a panic with debug assertions; in release a wrapped
/// 0, so the save was written and then never loaded). Now the save is refused
/// before anything is erased.
#[test]
fn a_slot_at_the_last_sequence_number_refuses_the_next_save() {
    let mut store = AbFlash::new(Flash::new(2 * SLOT as usize), 0, SLOT).unwrap();
    assert_eq!(store.save(b"first").unwrap(), 1);
    // Forge slot A's sequence number to u64::MAX with a matching CRC.
    let mut slot = store.flash_mut().as_bytes()[..SLOT as usize].to_vec();
    slot[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let len = u32::from_le_bytes(slot[16..20].try_into().unwrap()) as usize;
    let offset = u16::from_le_bytes([slot[6], slot[7]]) as usize;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut d = crc.digest();
    d.update(&slot[..20]);
    d.update(&slot[offset..offset + len]);
    slot[20..24].copy_from_slice(&d.finalize().to_le_bytes());
    assert_eq!(decode_slot(&slot).unwrap().seq, u64::MAX);
    let mut flash = Flash::new(2 * SLOT as usize);
    flash.as_bytes_mut()[..SLOT as usize].copy_from_slice(&slot);
    let mut store = AbFlash::new(flash, 0, SLOT).unwrap();
    let before = store.flash_mut().as_bytes().to_vec();
    let err = store.save(b"second").unwrap_err();
    assert!(err.to_string().contains("u64::MAX"), "{err}");
    assert_eq!(
        store.flash_mut().as_bytes(),
        &before[..],
        "nothing erased or written"
    );
    assert_eq!(store.load().unwrap(), Some((u64::MAX, b"first".to_vec())));
}
