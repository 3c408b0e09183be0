//! Helpers shared by the fuzz targets in `src/bin/`: a byte reader that turns
//! fuzzer input into arguments, the reference index model the view target
//! compares against, the fixed model/optimizer/scheduler the checkpoint and
//! flash targets load into, and the flash target's reference slot decoder.
//!
//! `TS_FUZZ_WRITE_SEEDS=1 cargo test --lib` (in `fuzz/`) rewrites the
//! generated part of the seed corpus (`corpus/*/seed-*`).

use train_station::nn::{Dropout, Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, LrScheduler, Optimizer, OptimizerState, StepLr};
use train_station::{Tensor, manual_seed};

/// Caps the memory pool at 16 MiB, so a valid but huge tensor is an
/// `OutOfMemory` error rather than a slow or killed run.
pub fn cap_memory() {
    train_station::tensor::pool::set_budget(Some(16 << 20));
}

/// Reads fuzzer bytes as small numbers; past the end it yields zeros, so every
/// input is a valid program.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// Whether any input is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }

    /// A size: mostly small, sometimes 0, huge or near an overflow boundary,
    /// so overflow checks are reached.
    pub fn size(&mut self) -> usize {
        match self.u8() {
            0..=199 => self.below(6),
            200..=219 => self.below(64),
            220..=229 => usize::MAX - self.below(3),
            230..=239 => (isize::MAX as usize) - self.below(3) + 1,
            240..=249 => 1 << (self.u8() % 64),
            _ => u64::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8(), 0, 0, 0, 0])
                as usize,
        }
    }

    /// A signed index: mostly small, sometimes extreme.
    pub fn index(&mut self) -> isize {
        match self.u8() {
            0..=219 => self.below(9) as isize - 4,
            220..=239 => isize::MIN + self.below(2) as isize,
            _ => isize::MAX - self.below(2) as isize,
        }
    }

    /// Up to `max` sizes from [`size`](Self::size).
    pub fn sizes(&mut self, max: usize) -> Vec<usize> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.size()).collect()
    }
}

/// The reference index model of a strided view: every element's position in
/// its storage is `offset + sum(index[i] * strides[i])`, walked in row-major
/// order. Written independently of the library's layout code.
#[derive(Clone, Debug)]
pub struct RefView {
    /// The storage the view reads (the fuzz base holds distinct values, so a
    /// value identifies its storage position).
    pub storage: Vec<f32>,
    /// Sizes, outermost first.
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub strides: Vec<usize>,
    /// Position of element 0.
    pub offset: usize,
}

impl RefView {
    /// A contiguous view of `storage`.
    pub fn contiguous(storage: Vec<f32>, shape: &[usize]) -> RefView {
        let mut strides = vec![0; shape.len()];
        let mut acc = 1;
        for i in (0..shape.len()).rev() {
            strides[i] = acc;
            acc *= shape[i].max(1);
        }
        RefView {
            storage,
            shape: shape.to_vec(),
            strides,
            offset: 0,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Every element's storage position, row-major (`None` if one
    /// overflows).
    pub fn positions(&self) -> Option<Vec<usize>> {
        let n = self.numel();
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; self.shape.len()];
        for _ in 0..n {
            let mut p = self.offset;
            for (i, s) in idx.iter().zip(&self.strides) {
                p = p.checked_add(i.checked_mul(*s)?)?;
            }
            out.push(p);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < self.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Some(out)
    }

    /// The elements, row-major (`None` if a position is outside the storage).
    pub fn values(&self) -> Option<Vec<f32>> {
        self.positions()?
            .into_iter()
            .map(|p| self.storage.get(p).copied())
            .collect()
    }

    /// The same elements in a fresh contiguous storage (a copy).
    pub fn materialized(&self) -> RefView {
        RefView::contiguous(self.values().expect("in bounds"), &self.shape)
    }
}

/// Asserts that `t` has `r`'s shape and elements, and that its own reported
/// strides and offset reach exactly those elements inside its storage.
pub fn assert_matches(t: &Tensor, r: &RefView, what: &str) {
    assert_eq!(t.dims(), &r.shape[..], "{what}: shape");
    assert_eq!(t.numel(), r.numel(), "{what}: numel");
    let want = r.values().expect("reference in bounds");
    let got = t.to_vec();
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {k}");
    }
    // The library's own layout stays inside its storage.
    let own = RefView {
        storage: Vec::new(),
        shape: t.dims().to_vec(),
        strides: t.strides().to_vec(),
        offset: t.offset(),
    };
    let end = own
        .positions()
        .expect("the library's positions do not overflow")
        .into_iter()
        .max()
        .map_or(t.offset(), |m| m + 1);
    assert!(
        end <= t.storage_len() || t.numel() == 0,
        "{what}: view past its storage"
    );
}

/// The model, optimizer and scheduler the checkpoint target loads into: a
/// two-layer MLP with Adam and a step schedule, after `steps` training steps
/// (so the optimizer has state).
pub fn checkpoint_fixture(steps: usize) -> (Sequential, Adam, StepLr) {
    manual_seed(7);
    let mut model = Sequential::new()
        .with(Linear::new(3, 4))
        .with(Relu)
        .with(Dropout::new(0.25))
        .with(Linear::new(4, 2));
    let mut opt = Adam::new(
        &model.parameters(),
        AdamConfig {
            lr: 0.01,
            ..Default::default()
        },
    );
    let mut sched = StepLr::new(&mut opt, 2, 0.5);
    let x = Tensor::from_fn([5, 3], |i| (i[0] * 3 + i[1]) as f32 * 0.1 - 0.7);
    for _ in 0..steps {
        let loss = model.forward(&x).pow_scalar(2.0).sum();
        loss.backward();
        drop(loss);
        opt.step_module(&mut model).expect("step");
        model.zero_grad();
        sched.step(&mut opt);
    }
    (model, opt, sched)
}

/// Runs `load` on the checkpoint fixture of `steps` steps and, when it
/// fails, asserts that it left model, optimizer and scheduler bit-identical.
///
/// The fixture (and its snapshot) is kept between executions while loads
/// fail, which the assertion proves harmless; after a load that succeeded
/// (it may have changed the fixture) the next call builds a fresh one.
/// Building and training it each time bounded the loading targets to a few
/// hundred executions per second.
pub fn load_into_fixture<T, E: core::fmt::Debug>(
    steps: usize,
    load: impl FnOnce(&mut Sequential, &mut Adam, &mut StepLr) -> Result<T, E>,
) -> Result<T, E> {
    type Kept = (Sequential, Adam, StepLr, Snapshot);
    thread_local! {
        static KEPT: core::cell::RefCell<Vec<(usize, Kept)>> =
            const { core::cell::RefCell::new(Vec::new()) };
    }
    let kept = KEPT.with(|k| {
        let mut k = k.borrow_mut();
        k.iter()
            .position(|(s, _)| *s == steps)
            .map(|i| k.swap_remove(i).1)
    });
    let (mut model, mut opt, mut sched, before) = kept.unwrap_or_else(|| {
        let (model, opt, sched) = checkpoint_fixture(steps);
        let before = snapshot(&model, &opt, &sched);
        (model, opt, sched, before)
    });
    let r = load(&mut model, &mut opt, &mut sched);
    if let Err(e) = &r {
        assert_eq!(
            snapshot(&model, &opt, &sched),
            before,
            "{e:?} changed state"
        );
        KEPT.with(|k| k.borrow_mut().push((steps, (model, opt, sched, before))));
    }
    r
}

/// Everything a failed load must leave untouched, as bits.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    model: Vec<(String, Vec<u32>)>,
    optim_kind: String,
    optim_groups: Vec<(Vec<u64>, Vec<(String, u32)>)>,
    optim_params: Vec<(u64, Vec<(String, Vec<usize>, Vec<u32>)>)>,
    sched: Vec<(String, u64)>,
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

/// The bits of `model`'s state dict, `opt`'s state and `sched`'s state.
pub fn snapshot(model: &dyn Module, opt: &dyn Optimizer, sched: &dyn LrScheduler) -> Snapshot {
    let OptimizerState {
        kind,
        groups,
        params,
    } = opt.export_state();
    Snapshot {
        model: model
            .state_dict()
            .iter()
            .map(|(n, t)| (n.clone(), bits(t)))
            .collect(),
        optim_kind: kind,
        optim_groups: groups
            .iter()
            .map(|g| {
                let hyper = g
                    .hyper
                    .iter()
                    .map(|(n, v)| (n.clone(), v.to_bits()))
                    .collect();
                (g.params.clone(), hyper)
            })
            .collect(),
        optim_params: params
            .iter()
            .map(|(id, ts)| {
                let ts = ts
                    .iter()
                    .map(|(n, t)| (n.clone(), t.dims().to_vec(), bits(t)))
                    .collect();
                (*id, ts)
            })
            .collect(),
        sched: sched
            .export_state()
            .iter()
            .map(|(n, v)| (n.clone(), v.to_bits()))
            .collect(),
    }
}

/// The A/B flash target's reference: an independent decoder of the slot
/// format of `train_station::io::flash` (from its documented layout, with its
/// own CRC-32), and the CRC re-stamping the target uses to reach valid slots.
pub mod flash {
    /// Bytes per slot in the flash target (two slots: the region is twice
    /// this).
    pub const SLOT: usize = 2048;

    /// CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320, initial value and
    /// final XOR all ones), bit by bit.
    pub fn crc32(parts: &[&[u8]]) -> u32 {
        let mut crc = !0u32;
        for b in parts.iter().flat_map(|p| p.iter()) {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn u16_at(b: &[u8], i: usize) -> usize {
        usize::from(u16::from_le_bytes([b[i], b[i + 1]]))
    }
    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    /// The payload range a slot's header names, if the header is complete and
    /// the range lies inside the slot (magic and version not checked).
    fn payload_range(slot: &[u8]) -> Option<core::ops::Range<usize>> {
        if slot.len() < 24 {
            return None;
        }
        let offset = u16_at(slot, 6);
        let len = u32_at(slot, 16) as usize;
        let end = offset.checked_add(len)?;
        (offset >= 24 && end <= slot.len()).then_some(offset..end)
    }

    /// `Some((seq, payload))` exactly when `slot` holds a valid slot: magic
    /// `TSCK`, version 1, payload offset >= 24, payload inside the slot, and
    /// the CRC of header bytes 0..20 and the payload matches bytes 20..24.
    pub fn reference_decode(slot: &[u8]) -> Option<(u64, &[u8])> {
        let range = payload_range(slot)?;
        if &slot[..4] != b"TSCK" || u16_at(slot, 4) != 1 {
            return None;
        }
        let payload = &slot[range];
        if crc32(&[&slot[..20], payload]) != u32_at(slot, 20) {
            return None;
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&slot[8..16]);
        Some((u64::from_le_bytes(seq), payload))
    }

    /// Writes the CRC that makes `slot`'s header and payload agree (when the
    /// header names a payload inside the slot; otherwise leaves it as is).
    pub fn restamp_crc(slot: &mut [u8]) {
        if let Some(range) = payload_range(slot) {
            let crc = crc32(&[&slot[..20], &slot[range]]);
            slot[20..24].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::flash::SLOT;
    use super::*;
    use train_station::io::checkpoint_to_bytes;
    use train_station::io::flash::{AbFlash, RamFlash, decode_slot};

    #[test]
    fn reference_model_walks_row_major() {
        let r = RefView {
            storage: (0..12).map(|v| v as f32).collect(),
            shape: vec![2, 3],
            strides: vec![1, 4],
            offset: 1,
        };
        assert_eq!(r.positions().unwrap(), [1, 5, 9, 2, 6, 10]);
        assert_eq!(r.materialized().strides, [3, 1]);
    }

    /// Writes the generated seeds when `TS_FUZZ_WRITE_SEEDS=1`.
    #[test]
    fn seeds() {
        let (model, opt, sched) = checkpoint_fixture(3);
        let ckpt =
            checkpoint_to_bytes(&model, Some(&opt), Some(&sched), 3, &[("note", "seed")]).unwrap();
        let plain = checkpoint_to_bytes(&model, None, None, 0, &[]).unwrap();
        let weights = train_station::io::module_to_bytes(&model).unwrap();
        // The flash target's seed: mode 0, then a region whose slot A holds
        // the model-only checkpoint and slot B the full one (when it fits).
        let mut store = AbFlash::new(RamFlash::<4, 256>::new(2 * SLOT), 0, SLOT as u32).unwrap();
        store.save(&plain).unwrap();
        let two = store.save(&ckpt).is_ok();
        let mut region = vec![0u8];
        region.extend_from_slice(store.flash_mut().as_bytes());
        // The reference decoder agrees with the library on both slots.
        for (i, slot) in region[1..].chunks(SLOT).enumerate() {
            let lib = decode_slot(slot).ok().map(|s| (s.seq, s.payload));
            assert_eq!(lib, flash::reference_decode(slot), "slot {i}");
            assert_eq!(lib.is_some(), i == 0 || two, "slot {i}");
        }
        if std::env::var_os("TS_FUZZ_WRITE_SEEDS").is_none() {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (target, name, bytes) in [
            ("checkpoint", "seed-adam", &ckpt),
            ("checkpoint", "seed-model-only", &plain),
            ("safetensors", "seed-checkpoint", &ckpt),
            ("safetensors", "seed-weights", &weights),
            ("flash", "seed-two-slots", &region),
        ] {
            std::fs::create_dir_all(dir.join(target)).unwrap();
            std::fs::write(dir.join(target).join(name), bytes).unwrap();
        }
    }
}
