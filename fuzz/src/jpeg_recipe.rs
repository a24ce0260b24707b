//! The structure-aware mode of the image target: an input starting with [`MAGIC`] is a
//! recipe, a list of JPEG segments (SOF, DHT, DQT, SOS with entropy data, APPn, DRI, stray
//! bytes, raw markers, EOI, and "repeat the last k segments n times"), which [`serialise`]
//! turns into a JPEG with correct lengths and valid-looking tables. AFL++'s byte mutations
//! of a recipe are then segment-level edits: a duplicated record is a second frame header,
//! a repeat record is 5,000 scans, a stray record is the `FF 00` of issue #21. Random byte
//! mutation of a JPEG rarely builds those (the campaign before issue #21 reached neither).
//!
//! Record layout (every field is read with a default of 0 past the end of the input):
//!
//! | op % 10 | record | fields |
//! |---|---|---|
//! | 0 | SOF | code (C0 C1 C2 C3 C9 C5, by byte % 6), precision flag (bit 0: 12-bit), w u16, h u16, n (1-4), per component: sampling byte, table byte |
//! | 1 | DHT | class/id byte, kind: 0 flat DC (12 symbols, 4 bits), 1 flat AC (176 symbols, 8 bits), 2 one symbol (then its value), 3 raw (16 counts, values) |
//! | 2 | DQT | id byte (bit 4: 16-bit), kind: 0 flat (then the value), 1 raw 64 bytes |
//! | 3 | SOS | ns (1-4), per component: id, tables; Ss, Se, Ah/Al; data: 0 literal (u8 length, bytes), 1 zeros (u16 x 4 bytes), 2 pseudo-random (u16 x 4 bytes, seed byte), 3 end-of-band runs over (u16 x 16) blocks |
//! | 4 | APPn | n (% 16), u16 length, fake SOF inside at a u16 offset with u16 w and h |
//! | 5 | stray bytes | u8 length (% 16), the bytes |
//! | 6 | DRI | u16 interval |
//! | 7 | EOI | |
//! | 8 | raw segment | code, u8 length, payload |
//! | 9 | repeat | u16 count (% 6000), k (% 8 + 1): the last k records again |
//!
//! Entropy data is byte-stuffed (`FF` -> `FF 00`) except in literal form, so that a literal
//! can hold markers. The output stops growing at [`MAX_OUTPUT`].
//!
//! Not here: checking what the decoder does with the result (`lib.rs`).

/// Recipe inputs start with these bytes; any other input is decoded as it is.
pub const MAGIC: &[u8; 4] = b"JSEG";

/// The serialised JPEG is cut at this size (a fuzzing run must stay well under its 2 s).
pub const MAX_OUTPUT: usize = 4 << 20;

/// A cursor over the recipe that reads zeros past the end.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

fn segment(out: &mut Vec<u8>, code: u8, payload: &[u8]) {
    let payload = &payload[..payload.len().min(65533)];
    out.extend([0xFF, code]);
    out.extend(((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends entropy-coded bytes with `FF` stuffed.
fn stuffed(out: &mut Vec<u8>, bytes: impl IntoIterator<Item = u8>) {
    for b in bytes {
        out.push(b);
        if b == 0xFF {
            out.push(0);
        }
    }
}

/// A Huffman table payload from (length, symbols) groups in canonical order.
fn dht_payload(class_id: u8, groups: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut counts = [0u8; 16];
    let mut values: Vec<u8> = Vec::new();
    for (len, syms) in groups {
        counts[len - 1] += syms.len() as u8;
        values.extend(syms);
    }
    let mut p = vec![class_id];
    p.extend(counts);
    p.extend(values);
    p
}

/// Every AC symbol a file can use: EOBn (r = 0..14), ZRL, and run/size for sizes 1-10.
fn flat_ac_symbols() -> Vec<u8> {
    let mut v: Vec<u8> = (0..15).map(|r| r << 4).collect();
    v.push(0xF0);
    v.extend((0..16u8).flat_map(|r| (1..=10u8).map(move |s| (r << 4) | s)));
    v
}

/// Bits packed MSB first, then stuffed.
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc = (self.acc << bits) | u64::from(value & ((1u32 << bits) - 1));
        self.n += bits;
        while self.n >= 8 {
            self.n -= 8;
            self.bytes.push((self.acc >> self.n) as u8);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
        self.bytes
    }
}

/// `blocks` blocks of end-of-band runs, coded with the flat AC table (8-bit codes, EOBn
/// symbols first, so EOBn's code is n).
fn eob_runs(mut blocks: usize) -> Vec<u8> {
    let mut w = BitWriter {
        bytes: Vec::new(),
        acc: 0,
        n: 0,
    };
    while blocks > 0 {
        let run = blocks.min(32767);
        let n = usize::BITS - 1 - run.leading_zeros();
        w.put(n, 8);
        w.put((run - (1 << n)) as u32, n);
        blocks -= run;
    }
    w.finish()
}

fn record(r: &mut Reader<'_>, out: &mut Vec<u8>) {
    match r.u8() % 10 {
        0 => {
            let code = [0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xC5][usize::from(r.u8() % 6)];
            let precision = if r.u8() & 1 == 1 { 12 } else { 8 };
            let (w, h) = (r.u16(), r.u16());
            let n = r.u8() % 4 + 1;
            let mut p = vec![precision];
            p.extend(h.to_be_bytes());
            p.extend(w.to_be_bytes());
            p.push(n);
            for id in 1..=n {
                p.extend([id, r.u8(), r.u8() % 4]);
            }
            segment(out, code, &p);
        }
        1 => {
            let class_id = r.u8() & 0x13;
            let p = match r.u8() % 4 {
                0 => dht_payload(class_id, &[(4, (0..12).collect())]),
                1 => dht_payload(class_id, &[(8, flat_ac_symbols())]),
                2 => dht_payload(class_id, &[(1, vec![r.u8()])]),
                _ => {
                    let counts = r.bytes(16);
                    let total: usize = counts.iter().map(|&c| usize::from(c % 8)).sum();
                    let mut p = vec![class_id];
                    p.extend(counts.iter().map(|c| c % 8));
                    p.extend(r.bytes(total));
                    p
                }
            };
            segment(out, 0xC4, &p);
        }
        2 => {
            let id = r.u8() & 0x13;
            let size = if id & 0x10 != 0 { 128 } else { 64 };
            let mut p = vec![id];
            if r.u8().is_multiple_of(2) {
                p.extend(std::iter::repeat_n(r.u8(), size));
            } else {
                p.extend(r.bytes(size));
            }
            segment(out, 0xDB, &p);
        }
        3 => {
            let ns = r.u8() % 4 + 1;
            let mut p = vec![ns];
            for _ in 0..ns {
                p.extend([r.u8(), r.u8()]);
            }
            p.extend([r.u8(), r.u8(), r.u8()]);
            segment(out, 0xDA, &p);
            match r.u8() % 4 {
                0 => {
                    let n = usize::from(r.u8());
                    out.extend(r.bytes(n));
                }
                1 => out.extend(std::iter::repeat_n(0u8, usize::from(r.u16()) * 4)),
                2 => {
                    let (n, mut x) = (usize::from(r.u16()) * 4, u32::from(r.u8()) | 1);
                    stuffed(
                        out,
                        (0..n).map(|_| {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            x as u8
                        }),
                    );
                }
                _ => stuffed(out, eob_runs(usize::from(r.u16()) * 16)),
            }
        }
        4 => {
            let n = r.u8() % 16;
            let len = usize::from(r.u16()).min(65533);
            let (at, w, h) = (usize::from(r.u16()), r.u16(), r.u16());
            let mut p = vec![0u8; len];
            let mut fake = vec![0xFF, 0xC0, 0, 11, 8];
            fake.extend(h.to_be_bytes());
            fake.extend(w.to_be_bytes());
            fake.extend([1, 1, 0x11, 0, 0xFF, 0xD9]);
            if at + fake.len() <= len {
                p[at..at + fake.len()].copy_from_slice(&fake);
            }
            segment(out, 0xE0 + n, &p);
        }
        5 => {
            let n = usize::from(r.u8() % 16);
            out.extend(r.bytes(n));
        }
        6 => {
            let v = r.u16();
            segment(out, 0xDD, &v.to_be_bytes());
        }
        7 => out.extend([0xFF, 0xD9]),
        8 => {
            let code = r.u8();
            let n = usize::from(r.u8());
            let p = r.bytes(n);
            segment(out, code, &p);
        }
        _ => unreachable!("handled by serialise"),
    }
}

/// The JPEG a recipe (the input after [`MAGIC`]) describes: SOI, then its records.
pub fn serialise(recipe: &[u8]) -> Vec<u8> {
    let mut r = Reader {
        data: recipe,
        pos: 0,
    };
    let mut out = vec![0xFF, 0xD8];
    // Where each record's bytes start, for repeats.
    let mut starts: Vec<usize> = Vec::new();
    while !r.done() && out.len() < MAX_OUTPUT {
        if r.data[r.pos] % 10 == 9 {
            r.u8();
            let count = usize::from(r.u16() % 6000);
            let k = usize::from(r.u8() % 8) + 1;
            let from = starts.len().saturating_sub(k);
            let Some(&start) = starts.get(from) else {
                continue;
            };
            // Appended in place, and only while it fits: copying the chunk first made a
            // recipe of many repeats near the size cap quadratic (AFL++ found two 2 s hangs
            // in this serialiser, none in the decoder).
            let end = out.len();
            for _ in 0..count {
                if out.len() + (end - start) > MAX_OUTPUT {
                    break;
                }
                out.extend_from_within(start..end);
            }
            continue;
        }
        starts.push(out.len());
        record(&mut r, &mut out);
    }
    out
}

/// Builders of recipes, for the seeds.
pub mod build {
    /// SOF record: code selector (0 C0, 2 C2, 3 C3), size, components as (sampling, table).
    pub fn sof(code_sel: u8, w: u16, h: u16, comps: &[(u8, u8)]) -> Vec<u8> {
        let mut v = vec![0, code_sel, 0];
        v.extend(w.to_be_bytes());
        v.extend(h.to_be_bytes());
        v.push(comps.len() as u8 - 1);
        for &(hv, tq) in comps {
            v.extend([hv, tq]);
        }
        v
    }
    /// Flat DC table 0 and flat AC table 0, flat quantisation table 0 of value `q`.
    pub fn tables(q: u8) -> Vec<u8> {
        vec![1, 0x00, 0, 1, 0x10, 1, 2, 0, 0, q]
    }
    /// SOS record over components `ids` (tables 0/0) with `data` = (kind, u16 amount).
    pub fn sos(ids: &[u8], ss: u8, se: u8, ahal: u8, kind: u8, amount: u16) -> Vec<u8> {
        let mut v = vec![3, ids.len() as u8 - 1];
        for &id in ids {
            v.extend([id, 0x00]);
        }
        v.extend([ss, se, ahal, kind]);
        v.extend(amount.to_be_bytes());
        if kind == 2 {
            v.push(7); // the seed of the pseudo-random bytes
        }
        v
    }
    pub fn repeat(count: u16, k: u8) -> Vec<u8> {
        let mut v = vec![9];
        v.extend(count.to_be_bytes());
        v.push(k - 1);
        v
    }
    pub fn stray(bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![5, bytes.len() as u8];
        v.extend(bytes);
        v
    }
    pub fn eoi() -> Vec<u8> {
        vec![7]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialise_to_segments() {
        let recipe = [
            build::stray(&[0xFF, 0x00]),
            build::sof(0, 16, 8, &[(0x11, 0)]),
            build::tables(1),
            build::sos(&[1], 0, 63, 0, 1, 1),
            build::repeat(3, 1),
            build::eoi(),
        ]
        .concat();
        let jpeg = serialise(&recipe);
        assert_eq!(&jpeg[..4], [0xFF, 0xD8, 0xFF, 0x00]);
        assert_eq!(&jpeg[4..6], [0xFF, 0xC0]);
        let sos = jpeg.windows(2).filter(|w| w == &[0xFF, 0xDA]).count();
        assert_eq!(sos, 4);
        assert!(jpeg.ends_with(&[0xFF, 0xD9]));
    }

    #[test]
    fn eob_runs_cover_the_blocks() {
        // 32767 + 3 blocks: EOB14 with 14 extra bits, then EOB1 with 1 extra bit.
        let v = eob_runs(32770);
        assert_eq!(v, [0x0E, 0xFF, 0xFC, 0x07]);
    }
}
