//! Baseline JPEG entropy decoding: Huffman tables (ITU T.81 Annex C/F), a bit
//! reader that un-stuffs `FF 00` and stops at markers, and block decoding into
//! de-zigzagged coefficients.
//!
//! Lossless by definition, so any correct decoder gives libjpeg's coefficients;
//! this one is written for clarity, with a 9-bit lookup for short codes.

use super::JpegErr;

/// Zigzag index -> natural (row-major) index within an 8x8 block.
pub(crate) const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

const LOOKUP_BITS: u32 = 9;

/// A decoding table built from a DHT segment.
#[derive(Clone, Debug)]
pub(crate) struct Huffman {
    /// For code lengths 1..=16: the largest code of that length (or -1).
    maxcode: [i32; 18],
    /// Offset to add to a code of a given length to index `values`.
    valoffset: [i32; 18],
    values: Vec<u8>,
    /// `(length, value)` for every 9-bit prefix whose code is at most 9 bits.
    lookup: Vec<(u8, u8)>,
    /// For AC use: every 9-bit prefix that holds a whole nonzero coefficient
    /// (code and magnitude bits): `(total bits, zero run, value)`; 0 bits = no.
    fast_ac: Vec<(u8, u8, i16)>,
}

impl Huffman {
    /// Builds the table from the 16 code-length counts and the symbol values.
    pub(crate) fn new(counts: &[u8; 16], values: &[u8]) -> Result<Self, JpegErr> {
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 || total > values.len() {
            return Err(JpegErr::Corrupt("bad Huffman table".into()));
        }
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 18];
        let mut lookup = vec![(0u8, 0u8); 1 << LOOKUP_BITS];
        let mut code: i32 = 0;
        let mut k: usize = 0;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            if n > 0 {
                valoffset[len] = k as i32 - code;
                for _ in 0..n {
                    if len as u32 <= LOOKUP_BITS {
                        let shift = LOOKUP_BITS - len as u32;
                        let base = (code as usize) << shift;
                        for e in lookup.iter_mut().skip(base).take(1 << shift) {
                            *e = (len as u8, values[k]);
                        }
                    }
                    code += 1;
                    k += 1;
                }
                maxcode[len] = code - 1;
            }
            if code > (1 << len) {
                return Err(JpegErr::Corrupt("over-subscribed Huffman table".into()));
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        let fast_ac = (0..1usize << LOOKUP_BITS)
            .map(|p| {
                let (len, sym) = lookup[p];
                let (run, size) = (sym >> 4, u32::from(sym & 15));
                let total = u32::from(len) + size;
                if len == 0 || size == 0 || total > LOOKUP_BITS {
                    return (0, 0, 0);
                }
                let bits = ((p >> (LOOKUP_BITS - total)) & ((1 << size) - 1)) as i32;
                (total as u8, run, extend(bits, size) as i16)
            })
            .collect();
        Ok(Huffman {
            maxcode,
            valoffset,
            values: values[..total].to_vec(),
            lookup,
            fast_ac,
        })
    }
}

/// `EXTEND`: the `s`-bit magnitude code `v` as a signed value.
#[inline]
fn extend(v: i32, s: u32) -> i32 {
    if v < (1 << (s - 1)) {
        v - (1 << s) + 1
    } else {
        v
    }
}

/// Reads entropy-coded bits; a marker ends the data (then zeros are supplied
/// and `hit_marker` is set, as libjpeg does, and the caller decides).
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
    acc: u64,
    bits: u32,
    pub(crate) marker: Option<u8>,
    /// Zero bits appended after a marker or the end of the data, still unread.
    pad: u32,
    /// Padding bits the decoder consumed: > 0 means the data ran out.
    pub(crate) overrun: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            acc: 0,
            bits: 0,
            marker: None,
            pad: 0,
            overrun: 0,
        }
    }

    /// Tops the accumulator up to more than 56 bits; after a marker or the end
    /// of the data it appends zero bits and counts them in `pad`.
    fn fill(&mut self) {
        // Fast path: whole bytes with no 0xFF among them.
        if self.marker.is_none() {
            let take = ((64 - self.bits) / 8) as usize;
            if let Some(chunk) = self.data.get(self.pos..self.pos + take) {
                if !chunk.contains(&0xFF) {
                    for &b in chunk {
                        self.acc |= u64::from(b) << (56 - self.bits);
                        self.bits += 8;
                    }
                    self.pos += take;
                    return;
                }
            }
        }
        while self.bits <= 56 {
            let byte = if self.marker.is_some() {
                None
            } else {
                match self.data.get(self.pos) {
                    None => None,
                    Some(&0xFF) => match self.data.get(self.pos + 1) {
                        Some(0x00) => {
                            self.pos += 2;
                            Some(0xFF)
                        }
                        Some(0xFF) => {
                            self.pos += 1; // fill byte before a marker
                            continue;
                        }
                        Some(&m) => {
                            self.marker = Some(m);
                            self.pos += 2;
                            None
                        }
                        None => {
                            self.pos += 1;
                            None
                        }
                    },
                    Some(&b) => {
                        self.pos += 1;
                        Some(b)
                    }
                }
            };
            if byte.is_none() {
                self.pad += 8;
            }
            self.acc |= u64::from(byte.unwrap_or(0)) << (56 - self.bits);
            self.bits += 8;
        }
    }

    #[inline]
    fn peek(&mut self, n: u32) -> u32 {
        if self.bits < n {
            self.fill();
        }
        (self.acc >> (64 - n)) as u32
    }

    /// Drops `n` bits; consuming padding bits counts as reading past the data.
    #[inline]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.bits -= n;
        if self.bits < self.pad {
            self.overrun += self.pad - self.bits;
            self.pad = self.bits;
        }
    }

    pub(crate) fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// Decodes one Huffman symbol.
    pub(crate) fn symbol(&mut self, h: &Huffman) -> Result<u8, JpegErr> {
        let p = self.peek(LOOKUP_BITS) as usize;
        let (len, val) = h.lookup[p];
        if len > 0 {
            self.consume(u32::from(len));
            return Ok(val);
        }
        let word = self.peek(16) as i32;
        for len in (LOOKUP_BITS as usize + 1)..=16 {
            let code = word >> (16 - len);
            if code <= h.maxcode[len] {
                self.consume(len as u32);
                let idx = (code + h.valoffset[len]) as usize;
                return h
                    .values
                    .get(idx)
                    .copied()
                    .ok_or_else(|| JpegErr::Corrupt("bad Huffman code".into()));
            }
        }
        Err(JpegErr::Corrupt("bad Huffman code".into()))
    }

    /// `RECEIVE` + `EXTEND`: an `s`-bit signed magnitude.
    pub(crate) fn receive_extend(&mut self, s: u8) -> i32 {
        if s == 0 {
            return 0;
        }
        let s = u32::from(s.min(16));
        extend(self.bits(s) as i32, s)
    }

    /// Drops buffered bits and positions after a restart marker (RSTn).
    pub(crate) fn restart(&mut self) -> Result<(), JpegErr> {
        // Discard the bit buffer; find the marker in the byte stream.
        if self.marker.is_none() {
            // Skip to the next marker, ignoring padding bits.
            while let Some(&b) = self.data.get(self.pos) {
                if b == 0xFF
                    && self
                        .data
                        .get(self.pos + 1)
                        .is_some_and(|&m| m != 0 && m != 0xFF)
                {
                    self.marker = self.data.get(self.pos + 1).copied();
                    self.pos += 2;
                    break;
                }
                self.pos += 1;
            }
        }
        match self.marker {
            Some(m) if (0xD0..=0xD7).contains(&m) => {
                self.marker = None;
                self.acc = 0;
                self.bits = 0;
                self.pad = 0;
                Ok(())
            }
            None => Err(JpegErr::Truncated("file ends before a restart marker")),
            Some(_) => Err(JpegErr::Corrupt("expected a restart marker".into())),
        }
    }
}

/// Decodes one 8x8 block (baseline): DC difference then run-length AC codes,
/// into natural order. `pred` is the component's DC predictor.
pub(crate) fn decode_block(
    r: &mut BitReader<'_>,
    dc: &Huffman,
    ac: &Huffman,
    pred: &mut i32,
    out: &mut [i16; 64],
) -> Result<(), JpegErr> {
    *out = [0; 64];
    let s = r.symbol(dc)?;
    if s > 11 {
        return Err(JpegErr::Corrupt("DC magnitude over 11 bits".into()));
    }
    *pred = pred.wrapping_add(r.receive_extend(s));
    out[0] = *pred as i16;
    let mut k = 1;
    while k < 64 {
        // Fast path: code and magnitude of a nonzero coefficient in 9 bits.
        let (bits, run, value) = ac.fast_ac[r.peek(LOOKUP_BITS) as usize];
        if bits > 0 {
            r.consume(u32::from(bits));
            k += usize::from(run);
            if k > 63 {
                return Err(JpegErr::Corrupt("AC run past the end of a block".into()));
            }
            out[ZIGZAG[k]] = value;
            k += 1;
            continue;
        }
        let rs = r.symbol(ac)?;
        let (run, size) = (usize::from(rs >> 4), rs & 15);
        if size == 0 {
            if run == 15 {
                k += 16;
                continue;
            }
            break;
        }
        k += run;
        if k > 63 {
            return Err(JpegErr::Corrupt("AC run past the end of a block".into()));
        }
        out[ZIGZAG[k]] = r.receive_extend(size) as i16;
        k += 1;
    }
    Ok(())
}
