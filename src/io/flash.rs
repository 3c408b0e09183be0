//! Power-loss-safe checkpoints on NOR flash, without `std` (feature `flash`).
//!
//! [`AbFlash`] keeps two equal slots (A and B) in a region of any
//! [`NorFlash`] device (the `embedded-storage` traits). Each slot holds one
//! checkpoint, in the same bytes as [`checkpoint_to_bytes`] writes, behind a
//! header:
//!
//! | offset | bytes | field (little-endian) |
//! |---|---|---|
//! | 0 | 4 | magic `TSCK` |
//! | 4 | 2 | format version, 1 |
//! | 6 | 2 | payload offset: 24 rounded up to the flash's write/read size |
//! | 8 | 8 | sequence number (1 for the first save, then +1 per save) |
//! | 16 | 4 | payload length in bytes |
//! | 20 | 4 | CRC-32 (ISO-HDLC, the `crc` crate) of bytes 0..20 and the payload |
//!
//! A save writes the slot that does not hold the newest valid checkpoint:
//! it erases the slot, writes the payload, then writes the header last. A
//! write cut at any byte therefore leaves that slot without a valid header
//! (erased, or a header whose CRC does not match), and the other slot
//! untouched. A load takes the valid slot with the highest sequence number, so
//! after a power cut it returns the previous checkpoint, whole.
//!
//! Decoding never panics on hostile flash contents: lengths or offsets past the
//! slot, a wrong magic or version, or a CRC mismatch make a slot invalid; the
//! pure decoder is [`decode_slot`] (a fuzz target can call it on any bytes).
//!
//! [`RamFlash`] is a RAM-backed [`NorFlash`] with NOR semantics (erase sets
//! bytes to `0xFF`, a write can only clear bits) that can cut power after a
//! given number of bytes: the test double, and the flash model of boards
//! whose emulated flash cannot be written.

use alloc::vec;
use alloc::vec::Vec;

use crc::{CRC_32_ISO_HDLC, Crc};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use super::checkpoint::{CheckpointInfo, checkpoint_from_bytes, checkpoint_to_bytes};
use crate::error::{Error, Result};
use crate::nn::Module;
use crate::optim::{LrScheduler, Optimizer};

/// `TSCK`: a train-station checkpoint slot.
pub const SLOT_MAGIC: [u8; 4] = *b"TSCK";
/// The slot header's format version.
pub const SLOT_VERSION: u16 = 1;
/// Bytes of the slot header (before padding to the payload offset).
pub const HEADER_LEN: usize = 24;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

fn bad(detail: &'static str) -> Error {
    Error::Format {
        op: "flash checkpoint",
        detail,
    }
}

fn flash_err(op: &'static str, e: impl NorFlashError) -> Error {
    let kind = match e.kind() {
        NorFlashErrorKind::NotAligned => "flash: not aligned",
        NorFlashErrorKind::OutOfBounds => "flash: out of bounds",
        _ => "flash: device error",
    };
    Error::Io { op, kind, code: 0 }
}

/// A slot's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    offset: usize,
    seq: u64,
    len: usize,
    crc: u32,
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses the first [`HEADER_LEN`] bytes of a slot of `slot_len` bytes; the
/// payload range it names must lie inside the slot.
fn parse_header(h: &[u8], slot_len: usize) -> Result<Header> {
    let h = h
        .get(..HEADER_LEN)
        .ok_or(bad("slot shorter than a header"))?;
    if h[..4] != SLOT_MAGIC {
        return Err(bad("no checkpoint in this slot (magic missing)"));
    }
    if le_u16(&h[4..]) != SLOT_VERSION {
        return Err(bad("unknown slot format version"));
    }
    let offset = usize::from(le_u16(&h[6..]));
    let len = le_u32(&h[16..]) as usize;
    if offset < HEADER_LEN {
        return Err(bad("payload offset inside the header"));
    }
    if offset.checked_add(len).is_none_or(|end| end > slot_len) {
        return Err(bad("payload length runs past the slot"));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[8..16]);
    Ok(Header {
        offset,
        seq: u64::from_le_bytes(seq),
        len,
        crc: le_u32(&h[20..]),
    })
}

fn encode_header(offset: usize, seq: u64, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&SLOT_MAGIC);
    h[4..6].copy_from_slice(&SLOT_VERSION.to_le_bytes());
    // `AbFlash::new` keeps the offset below 2^16 and payloads below 2^32.
    h[6..8].copy_from_slice(&(offset as u16).to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut d = CRC32.digest();
    d.update(&h[..20]);
    d.update(payload);
    h[20..].copy_from_slice(&d.finalize().to_le_bytes());
    h
}

/// A valid slot: its sequence number and payload (checkpoint bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot<'a> {
    /// The save's sequence number (higher is newer).
    pub seq: u64,
    /// The checkpoint bytes (see [`checkpoint_from_bytes`]).
    pub payload: &'a [u8],
}

/// Decodes one slot's bytes (`slot`: the slot from its start; bytes past the
/// payload are ignored). `Err` for anything but a complete, CRC-valid slot:
/// an erased or cut slot, a wrong magic or version, a payload offset or
/// length past `slot`, a CRC mismatch. Never panics, for any input.
pub fn decode_slot(slot: &[u8]) -> Result<Slot<'_>> {
    let h = parse_header(slot, slot.len())?;
    let payload = &slot[h.offset..h.offset + h.len];
    let mut d = CRC32.digest();
    d.update(&slot[..20]);
    d.update(payload);
    if d.finalize() != h.crc {
        return Err(bad("CRC mismatch (cut or corrupt write)"));
    }
    Ok(Slot {
        seq: h.seq,
        payload,
    })
}

/// Two checkpoint slots in `2 * slot_size` bytes of a [`NorFlash`] starting
/// at `base` (see the [module docs](self)).
#[derive(Debug)]
pub struct AbFlash<F> {
    flash: F,
    base: u32,
    slot_size: u32,
    /// Payload offset in a slot: the header rounded up to the write and read
    /// granularity.
    offset: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl<F: NorFlash> AbFlash<F> {
    /// Slots A at `base` and B at `base + slot_size`. `Err` unless `base` and
    /// `slot_size` are multiples of the erase size, `slot_size` holds more than
    /// a header, and both slots fit in the device.
    pub fn new(flash: F, base: u32, slot_size: u32) -> Result<AbFlash<F>> {
        let arg = |detail| Error::InvalidArgument {
            op: "AbFlash::new",
            detail,
        };
        let (w, r, e) = (F::WRITE_SIZE, F::READ_SIZE, F::ERASE_SIZE);
        if w == 0 || r == 0 || e == 0 {
            return Err(arg("the flash reports a zero write, read or erase size"));
        }
        let unit = w / gcd(w, r) * r;
        let offset = HEADER_LEN.div_ceil(unit) * unit;
        let (b, s) = (base as usize, slot_size as usize);
        if !b.is_multiple_of(e) || !s.is_multiple_of(e) || !s.is_multiple_of(unit) {
            return Err(arg(
                "base and slot size must be multiples of the erase size",
            ));
        }
        if offset > usize::from(u16::MAX) || s <= offset {
            return Err(arg("slot too small for the header"));
        }
        let end = (base as u64) + 2 * u64::from(slot_size);
        if end > flash.capacity() as u64 || end > u64::from(u32::MAX) {
            return Err(arg("the two slots do not fit in the flash"));
        }
        Ok(AbFlash {
            flash,
            base,
            slot_size,
            offset,
        })
    }

    /// The flash device.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash device back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Largest payload a slot holds.
    pub fn capacity(&self) -> usize {
        (self.slot_size as usize - self.offset).min(u32::MAX as usize)
    }

    fn slot_start(&self, i: usize) -> u32 {
        self.base + i as u32 * self.slot_size
    }

    /// Reads `len` bytes at `at` (aligned to the read size), reading whole
    /// read units and dropping the excess.
    fn read(&mut self, at: u32, len: usize) -> Result<Vec<u8>> {
        let r = F::READ_SIZE;
        let mut buf = vec![0u8; len.div_ceil(r) * r];
        self.flash
            .read(at, &mut buf)
            .map_err(|e| flash_err("flash checkpoint read", e))?;
        buf.truncate(len);
        Ok(buf)
    }

    /// The header of slot `i` if the slot is valid (its CRC checked in
    /// chunks, so validation needs no payload-sized buffer). `Ok(None)` for an
    /// invalid slot; `Err` only when the device fails.
    fn valid_header(&mut self, i: usize) -> Result<Option<Header>> {
        let start = self.slot_start(i);
        let head = self.read(start, self.offset)?;
        let Ok(h) = parse_header(&head, self.slot_size as usize) else {
            return Ok(None);
        };
        let mut d = CRC32.digest();
        d.update(&head[..20]);
        let chunk = 256usize.div_ceil(F::READ_SIZE) * F::READ_SIZE;
        let mut done = 0;
        while done < h.len {
            let n = chunk.min(h.len - done);
            let bytes = self.read(start + (h.offset + done) as u32, n)?;
            d.update(&bytes);
            done += n;
        }
        Ok((d.finalize() == h.crc).then_some(h))
    }

    /// Sequence numbers of the valid slots A and B.
    fn scan(&mut self) -> Result<[Option<Header>; 2]> {
        Ok([self.valid_header(0)?, self.valid_header(1)?])
    }

    /// The newest valid slot's sequence number and payload, or `None` when
    /// neither slot holds a valid checkpoint. `Err` only when the device
    /// fails.
    pub fn load(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        let best = match self.scan()? {
            [Some(a), Some(b)] => Some(if a.seq >= b.seq { (0, a) } else { (1, b) }),
            [Some(a), None] => Some((0, a)),
            [None, Some(b)] => Some((1, b)),
            [None, None] => None,
        };
        let Some((i, h)) = best else {
            return Ok(None);
        };
        let mut image = self.read(self.slot_start(i), h.offset + h.len)?;
        // Decoded again from one read, so a slot that changed since the scan
        // is caught here rather than returned torn.
        let seq = decode_slot(&image)?.seq;
        image.drain(..h.offset);
        Ok(Some((seq, image)))
    }

    /// Writes `payload` into the slot that does not hold the newest valid
    /// checkpoint, header last, and reads it back. Returns the new sequence
    /// number. `Err` if the payload exceeds [`capacity`](Self::capacity), the
    /// newest slot's sequence number is `u64::MAX` (nothing is written), or
    /// the device fails (then the previous checkpoint is still the newest).
    pub fn save(&mut self, payload: &[u8]) -> Result<u64> {
        if payload.len() > self.capacity() {
            return Err(Error::InvalidArgument {
                op: "AbFlash::save",
                detail: "the checkpoint is larger than a flash slot",
            });
        }
        let [a, b] = self.scan()?;
        let (target, newest) = match (a, b) {
            (None, None) => (0, 0),
            (Some(a), None) => (1, a.seq),
            (None, Some(b)) => (0, b.seq),
            (Some(a), Some(b)) if a.seq <= b.seq => (0, b.seq),
            (Some(a), Some(_)) => (1, a.seq),
        };
        // A valid slot at u64::MAX (only forged or corrupt flash holds one)
        // cannot be outnumbered: refuse before erasing anything. A wrapped 0
        // would be written, then never loaded.
        let seq = newest.checked_add(1).ok_or(bad(
            "the newest slot's sequence number is u64::MAX; no later save can be newer",
        ))?;
        let start = self.slot_start(target);
        let werr = |e| flash_err("flash checkpoint write", e);
        self.flash
            .erase(start, start + self.slot_size)
            .map_err(|e| flash_err("flash checkpoint erase", e))?;
        let w = F::WRITE_SIZE;
        let body = start + self.offset as u32;
        let whole = payload.len() / w * w;
        self.flash.write(body, &payload[..whole]).map_err(werr)?;
        if whole < payload.len() {
            let mut tail = vec![0xFFu8; w];
            tail[..payload.len() - whole].copy_from_slice(&payload[whole..]);
            self.flash.write(body + whole as u32, &tail).map_err(werr)?;
        }
        let mut head = vec![0xFFu8; self.offset];
        head[..HEADER_LEN].copy_from_slice(&encode_header(self.offset, seq, payload));
        self.flash.write(start, &head).map_err(werr)?;
        match self.valid_header(target)? {
            Some(h) if h.seq == seq => Ok(seq),
            _ => Err(Error::Io {
                op: "flash checkpoint write",
                kind: "flash: the written slot does not read back valid",
                code: 0,
            }),
        }
    }

    /// Encodes a checkpoint ([`checkpoint_to_bytes`]) and [`save`](Self::save)s
    /// it. Returns the sequence number.
    pub fn save_checkpoint(
        &mut self,
        model: &dyn Module,
        optimizer: Option<&dyn Optimizer>,
        scheduler: Option<&dyn LrScheduler>,
        step: u64,
        extra: &[(&str, &str)],
    ) -> Result<u64> {
        let bytes = checkpoint_to_bytes(model, optimizer, scheduler, step, extra)?;
        self.save(&bytes)
    }

    /// Restores the newest valid checkpoint ([`checkpoint_from_bytes`]).
    /// `Ok(None)` (nothing changed) when neither slot holds one.
    pub fn load_checkpoint(
        &mut self,
        model: &mut dyn Module,
        optimizer: Option<&mut dyn Optimizer>,
        scheduler: Option<&mut dyn LrScheduler>,
    ) -> Result<Option<CheckpointInfo>> {
        match self.load()? {
            None => Ok(None),
            Some((_, bytes)) => {
                checkpoint_from_bytes(&bytes, model, optimizer, scheduler).map(Some)
            }
        }
    }
}

/// Why a [`RamFlash`] operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RamFlashError {
    /// Offset or length not a multiple of the write or erase size.
    NotAligned,
    /// Past the end of the memory.
    OutOfBounds,
    /// Power was cut (see [`RamFlash::cut_after`]); the operation was done
    /// only in part.
    PowerCut,
}

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            RamFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            RamFlashError::PowerCut => NorFlashErrorKind::Other,
        }
    }
}

/// A RAM-backed NOR flash of `WRITE`-byte words and `ERASE`-byte sectors:
/// erase sets bytes to `0xFF`, a write ANDs into them (it can only clear
/// bits). [`cut_after`](Self::cut_after) simulates a power cut part-way.
#[derive(Clone, Debug)]
pub struct RamFlash<const WRITE: usize = 4, const ERASE: usize = 1024> {
    mem: Vec<u8>,
    /// Bytes that may still be erased or written before the cut.
    budget: Option<usize>,
}

impl<const WRITE: usize, const ERASE: usize> RamFlash<WRITE, ERASE> {
    /// `bytes` of erased flash.
    pub fn new(bytes: usize) -> Self {
        RamFlash {
            mem: vec![0xFF; bytes],
            budget: None,
        }
    }

    /// Cuts power after `bytes` more bytes have been erased or written (the
    /// operation that crosses the limit is done up to it, then fails, and so
    /// does every later one); `None` restores power.
    pub fn cut_after(&mut self, bytes: Option<usize>) {
        self.budget = bytes;
    }

    /// The memory's contents.
    pub fn as_bytes(&self) -> &[u8] {
        &self.mem
    }

    /// The memory's contents, to corrupt on purpose.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    fn check(&self, at: usize, len: usize, unit: usize) -> core::result::Result<(), RamFlashError> {
        if !at.is_multiple_of(unit) || !len.is_multiple_of(unit) {
            return Err(RamFlashError::NotAligned);
        }
        if at.checked_add(len).is_none_or(|end| end > self.mem.len()) {
            return Err(RamFlashError::OutOfBounds);
        }
        Ok(())
    }

    /// How many of `len` bytes the power budget allows, using them up.
    fn spend(&mut self, len: usize) -> usize {
        match &mut self.budget {
            None => len,
            Some(left) => {
                let n = len.min(*left);
                *left -= n;
                n
            }
        }
    }
}

impl<const WRITE: usize, const ERASE: usize> ErrorType for RamFlash<WRITE, ERASE> {
    type Error = RamFlashError;
}

impl<const WRITE: usize, const ERASE: usize> ReadNorFlash for RamFlash<WRITE, ERASE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> core::result::Result<(), RamFlashError> {
        let at = offset as usize;
        self.check(at, bytes.len(), 1)?;
        bytes.copy_from_slice(&self.mem[at..at + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const WRITE: usize, const ERASE: usize> NorFlash for RamFlash<WRITE, ERASE> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> core::result::Result<(), RamFlashError> {
        let (from, to) = (from as usize, to as usize);
        if to < from {
            return Err(RamFlashError::OutOfBounds);
        }
        self.check(from, to - from, ERASE)?;
        let n = self.spend(to - from);
        self.mem[from..from + n].fill(0xFF);
        if n < to - from {
            return Err(RamFlashError::PowerCut);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> core::result::Result<(), RamFlashError> {
        let at = offset as usize;
        self.check(at, bytes.len(), WRITE)?;
        let n = self.spend(bytes.len());
        for (m, b) in self.mem[at..at + n].iter_mut().zip(bytes) {
            *m &= *b;
        }
        if n < bytes.len() {
            return Err(RamFlashError::PowerCut);
        }
        Ok(())
    }
}
