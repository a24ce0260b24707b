//! The one JPEG marker walker. The probe (`probe.rs`, through [`survey`]) and the decoder
//! (`mod.rs`, through [`Markers`]) both read a file's segments with it, so the same bytes
//! give the same frame everywhere: a pixel limit checked on the probe's frame is a limit
//! on the frame that gets decoded (issue #21: the probe once read a 1x1 frame from inside an
//! APP1 payload that the decoder skipped, and let a 65535 x 65535 frame through).
//!
//! The walk follows libjpeg's `next_marker` and Pillow's header parser: `FF` fill bytes
//! before a marker are skipped; a stray `FF 00` is skipped (libjpeg warns of "extraneous
//! bytes"); RSTn and TEM have no length; other bytes between segments are refused before
//! the first scan (Pillow refuses them there) and skipped after it. A scan's entropy-coded
//! data runs to the first marker that is not `FF 00`, a fill byte or RSTn; so a marker
//! inside entropy-coded data ends the scan there, for the walker and the bit reader alike.
//!
//! [`survey`] walks the whole file before the decoder allocates anything and enforces the
//! work budget: one frame header (libjpeg refuses a second SOF), at most [`MAX_SCANS`]
//! scans, at most [`MAX_TABLES_BETWEEN_SCANS`] table definitions between two scans.
//!
//! Not here: what the segments mean (`mod.rs`, `scan.rs`) and pixel limits (the callers).

use super::JpegErr;

/// Most scans a file may have. libjpeg-turbo's fuzzers and TurboJPEG's scan limit use 500;
/// real progressive files have about 10. Each scan may visit every block, so this bounds
/// the decoder's work to a fixed multiple of a baseline decode of the same pixels.
pub(crate) const MAX_SCANS: usize = 500;

/// Most table definitions (each Huffman or quantisation table in a DHT or DQT segment, and
/// each DRI) before the first scan or between two scans. A file can use at most 4 DC, 4 AC
/// and 4 quantisation tables at a time, so more is redefinition nobody reads; each costs a
/// table build (a few microseconds), which this keeps in proportion to the scans.
pub(crate) const MAX_TABLES_BETWEEN_SCANS: usize = 32;

/// One segment of a JPEG file, in file order.
pub(crate) enum Segment<'a> {
    /// A marker segment with a length: its code and payload (after the length field).
    Marker { code: u8, payload: &'a [u8] },
    /// SOS: the scan header's payload and the entropy-coded data that follows it.
    Scan { header: &'a [u8], data: &'a [u8] },
}

/// Walks the segments after SOI; `next_segment` returns `None` at EOI.
pub(crate) struct Markers<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// After the first scan, bytes between segments are skipped rather than refused.
    after_scan: bool,
}

impl<'a> Markers<'a> {
    /// Starts after the 2-byte SOI (which the caller has checked).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Markers {
            bytes,
            pos: 2,
            after_scan: false,
        }
    }

    /// The next segment, `None` at EOI, or why the file cannot be walked.
    pub(crate) fn next_segment(&mut self) -> Result<Option<Segment<'a>>, JpegErr> {
        let bytes = self.bytes;
        loop {
            if !self.after_scan && bytes.get(self.pos).is_some_and(|&b| b != 0xFF) {
                return Err(JpegErr::Corrupt("expected a marker".into()));
            }
            // Skip to the last FF of a run of FFs followed by a code.
            while let Some(&b) = bytes.get(self.pos) {
                if b == 0xFF && bytes.get(self.pos + 1) != Some(&0xFF) {
                    break;
                }
                self.pos += 1;
            }
            let Some(&code) = bytes.get(self.pos + 1) else {
                // Pillow reports a missing EOI as "image file is truncated".
                return Err(JpegErr::Truncated(
                    "file ends before the end-of-image marker",
                ));
            };
            self.pos += 2;
            match code {
                0xD9 => return Ok(None),
                // A stray stuffed zero (libjpeg: "extraneous bytes"), RSTn and TEM: no length.
                0x00 | 0x01 | 0xD0..=0xD7 => continue,
                _ => {}
            }
            let len = match bytes.get(self.pos..self.pos + 2) {
                Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
                None => return Err(JpegErr::Truncated("file ends inside a marker length")),
            };
            if len < 2 {
                return Err(JpegErr::Corrupt(format!(
                    "marker FF{code:02X} has a length of {len}, below 2"
                )));
            }
            let Some(payload) = bytes.get(self.pos + 2..self.pos + len) else {
                return Err(JpegErr::Truncated("file ends inside a marker segment"));
            };
            self.pos += len;
            if code != 0xDA {
                return Ok(Some(Segment::Marker { code, payload }));
            }
            let start = self.pos;
            self.pos = scan_end(bytes, start);
            self.after_scan = true;
            return Ok(Some(Segment::Scan {
                header: payload,
                data: &bytes[start..self.pos],
            }));
        }
    }
}

/// Where entropy-coded data starting at `pos` ends: the first `FF` followed by a code that
/// is not `00`, `FF` or RSTn, or the end of the file.
fn scan_end(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(off) = bytes
        .get(pos..)
        .and_then(|b| b.iter().position(|&x| x == 0xFF))
    {
        pos += off;
        match bytes.get(pos + 1) {
            None => return bytes.len(),
            Some(0x00 | 0xFF | 0xD0..=0xD7) => pos += 1,
            Some(_) => return pos,
        }
    }
    bytes.len()
}

/// SOFn codes (C0-CF but DHT C4, JPG C8 and DAC CC).
pub(crate) fn is_sof(code: u8) -> bool {
    matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC)
}

/// The frame header as the file declares it, before anything is allocated for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The SOFn code: C0/C1 sequential, C2 progressive, others lossless, hierarchical or
    /// arithmetic-coded.
    pub code: u8,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: u8,
}

impl Frame {
    pub(crate) fn parse(code: u8, payload: &[u8]) -> Result<Frame, JpegErr> {
        let Some(p) = payload.get(..6) else {
            return Err(JpegErr::Corrupt("frame header shorter than 6 bytes".into()));
        };
        Ok(Frame {
            code,
            precision: p[0],
            height: u16::from_be_bytes([p[1], p[2]]),
            width: u16::from_be_bytes([p[3], p[4]]),
            components: p[5],
        })
    }

    pub(crate) fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// What [`survey`] learns from a whole walk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Survey {
    pub frame: Frame,
    pub scans: usize,
}

/// Walks the whole file once, reading nothing but marker structure: the frame header,
/// the number of scans and of table definitions. Refuses a second frame header, a scan
/// before the frame header, more than [`MAX_SCANS`] scans, more than
/// [`MAX_TABLES_BETWEEN_SCANS`] table definitions in a row, and a missing EOI.
pub(crate) fn survey(bytes: &[u8]) -> Result<Survey, JpegErr> {
    let mut walk = Markers::new(bytes);
    let mut frame: Option<Frame> = None;
    let (mut scans, mut tables) = (0usize, 0usize);
    while let Some(seg) = walk.next_segment()? {
        match seg {
            Segment::Marker { code, payload } if is_sof(code) => {
                if frame.is_some() {
                    // libjpeg: JERR_SOF_DUPLICATE.
                    return Err(JpegErr::Corrupt("more than one frame header (SOF)".into()));
                }
                frame = Some(Frame::parse(code, payload)?);
            }
            Segment::Marker { code, payload } => {
                tables += match code {
                    0xC4 => dht_tables(payload),
                    0xDB => dqt_tables(payload),
                    0xDD => 1,
                    _ => 0,
                };
                if tables > MAX_TABLES_BETWEEN_SCANS {
                    return Err(JpegErr::Limit {
                        what: "table definitions (DHT, DQT, DRI) between two scans",
                        max: MAX_TABLES_BETWEEN_SCANS as u64,
                    });
                }
            }
            Segment::Scan { .. } => {
                if frame.is_none() {
                    return Err(JpegErr::Corrupt("scan before the frame header".into()));
                }
                scans += 1;
                tables = 0;
                if scans > MAX_SCANS {
                    return Err(JpegErr::Limit {
                        what: "scans",
                        max: MAX_SCANS as u64,
                    });
                }
            }
        }
    }
    let Some(frame) = frame else {
        return Err(JpegErr::Corrupt(
            "no frame header (SOF) before the end".into(),
        ));
    };
    Ok(Survey { frame, scans })
}

/// Tables in a DHT payload (each: class/id byte, 16 counts, the values); a damaged tail
/// counts as one more (the decoder refuses it).
fn dht_tables(mut p: &[u8]) -> usize {
    let mut n = 0;
    while !p.is_empty() {
        n += 1;
        let Some(counts) = p.get(1..17) else { break };
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        p = p.get(17 + total..).unwrap_or(&[]);
    }
    n
}

/// Tables in a DQT payload (each: precision/id byte, 64 or 128 bytes).
fn dqt_tables(mut p: &[u8]) -> usize {
    let mut n = 0;
    while let Some(&pq) = p.first() {
        n += 1;
        let size = if pq >> 4 == 0 { 64 } else { 128 };
        p = p.get(1 + size..).unwrap_or(&[]);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(code: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, code];
        v.extend(((payload.len() + 2) as u16).to_be_bytes());
        v.extend(payload);
        v
    }

    fn sof(w: u16, h: u16) -> Vec<u8> {
        let mut p = vec![8];
        p.extend(h.to_be_bytes());
        p.extend(w.to_be_bytes());
        p.extend([1, 1, 0x11, 0]);
        seg(0xC0, &p)
    }

    /// The issue-#21 construction: a stray `FF 00` whose next two bytes, read as a length
    /// by a walker that takes `00` for a marker, jump into an APP1 payload holding a fake
    /// 1x1 frame header. The walker skips the `FF 00` and the APP1, as libjpeg does.
    #[test]
    fn stray_ff00_does_not_desynchronise() {
        // A walker taking `00` for a marker reads `FF E1` as its length and lands at byte
        // 4 + 0xFFE1; the APP1 payload starts at byte 8 (after FF D8, FF 00, FF E1 and the
        // length).
        let fake = sof(1, 1);
        let at = 4 + 0xFFE1 - 8;
        let mut app1 = vec![0u8; at + fake.len() + 16];
        app1[at..at + fake.len()].copy_from_slice(&fake);
        let mut f = vec![0xFF, 0xD8, 0xFF, 0x00];
        f.extend(seg(0xE1, &app1));
        f.extend(sof(65535, 65535));
        f.extend([0xFF, 0xD9]);
        let s = survey(&f).unwrap();
        assert_eq!((s.frame.width, s.frame.height), (65535, 65535));
    }

    #[test]
    fn second_frame_header_is_refused() {
        let mut f = vec![0xFF, 0xD8];
        f.extend(sof(8, 8));
        f.extend(sof(9, 9));
        f.extend([0xFF, 0xD9]);
        assert!(matches!(survey(&f), Err(JpegErr::Corrupt(r)) if r.contains("more than one")));
    }

    #[test]
    fn scans_and_tables_are_counted_to_their_limits() {
        let build = |scans: usize, dri_per_gap: usize| {
            let mut f = vec![0xFF, 0xD8];
            f.extend(sof(8, 8));
            for _ in 0..scans {
                for _ in 0..dri_per_gap {
                    f.extend(seg(0xDD, &[0, 0]));
                }
                f.extend(seg(0xDA, &[1, 1, 0, 0, 63, 0]));
                // Entropy data with a stuffed byte, an RST and fill bytes: all one scan.
                f.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF]);
            }
            f.extend([0xFF, 0xD9]);
            f
        };
        assert_eq!(survey(&build(MAX_SCANS, 1)).unwrap().scans, MAX_SCANS);
        let limit = |r: Result<Survey, JpegErr>| match r {
            Err(JpegErr::Limit { what, max }) => (what, max),
            _ => panic!("not refused"),
        };
        assert_eq!(limit(survey(&build(MAX_SCANS + 1, 1))).0, "scans");
        assert!(survey(&build(3, MAX_TABLES_BETWEEN_SCANS)).is_ok());
        assert_eq!(
            limit(survey(&build(3, MAX_TABLES_BETWEEN_SCANS + 1))).1,
            MAX_TABLES_BETWEEN_SCANS as u64
        );
    }

    #[test]
    fn a_marker_inside_entropy_data_ends_the_scan() {
        let mut f = vec![0xFF, 0xD8];
        f.extend(sof(8, 8));
        f.extend(seg(0xDA, &[1, 1, 0, 0, 63, 0]));
        f.extend([0x12, 0x34]);
        f.extend(sof(8, 8)); // a second SOF where entropy data should be
        f.extend([0xFF, 0xD9]);
        assert!(matches!(survey(&f), Err(JpegErr::Corrupt(_))));
        let mut w = Markers::new(&f);
        w.next_segment().unwrap(); // SOF
        match w.next_segment().unwrap() {
            Some(Segment::Scan { data, .. }) => assert_eq!(data, [0x12, 0x34]),
            _ => panic!("expected the scan"),
        }
    }

    #[test]
    fn table_counts() {
        let mut dht = vec![0x00];
        dht.extend([0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        dht.extend([5, 6]);
        let two = [dht.clone(), dht].concat();
        assert_eq!(dht_tables(&two), 2);
        assert_eq!(dqt_tables(&[vec![0x00; 65], vec![0x11; 129]].concat()), 2);
    }
}
