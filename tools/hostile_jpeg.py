#!/usr/bin/env python3
"""Writes the hostile JPEGs of issue #21 into a folder, for the hostile-input tests
(tools/clip-cli/tests/hostile.rs, crates/image/tests/image_hostile.rs). Standard library
only, deterministic, so CI can run it at test time: the large files are never committed.

    python3 tools/hostile_jpeg.py OUT_DIR [--photo JPEG]

Files (the "desync" construction: SOI, a stray FF 00, then an APP1 whose payload holds a
fake 1x1 frame header exactly where a walker that takes FF 00 for a marker with a length
would land; the real frame header follows the APP1):

  desync_65535_baseline.jpg     65535 x 65535 YCbCr baseline frame, one short scan
  desync_65535_progressive.jpg  the same, progressive (SOF2)
  desync_65535_lossless.jpg     the same, lossless (SOF3)
  desync_65535_cmyk.jpg         65535 x 65535 CMYK baseline frame (Adobe, no transform)
  desync_120mpx_grey.jpg        12000 x 10000 grey baseline, complete (every block grey)
  scans_501.jpg, scans_5000.jpg 10000 x 10000 grey progressive, 501 and 5,000 scans
  scans_400_small.jpg           40 x 24 grey progressive, 400 valid scans (successive
                                approximation of every coefficient), decodable
  sparse_cmyk_2000.jpg          2000 x 2000 progressive CMYK, one scan of end-of-band runs
                                (issue #22: a small file that decodes to all its frame's
                                memory)
  desync_photo.jpg              with --photo: that JPEG behind the desync construction

Not here: the Pillow reference of the decodable ones (tools/reference/
make_hostile_reference.py writes it) and the tests.
"""

import os
import struct
import sys

ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
    20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58,
    59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]


def seg(code, payload):
    return bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload


def sof(code, w, h, comps, precision=8):
    """comps: [(id, hv, tq)]."""
    p = struct.pack(">BHHB", precision, h, w, len(comps))
    for cid, hv, tq in comps:
        p += bytes([cid, hv, tq])
    return seg(code, p)


def dqt(value, tid=0):
    return seg(0xDB, bytes([tid]) + bytes([value] * 64))


def dht(cls, tid, codes):
    """codes: [(symbol, length)] in canonical order (lengths non-decreasing)."""
    counts = [0] * 16
    for _, n in codes:
        counts[n - 1] += 1
    return seg(0xC4, bytes([(cls << 4) | tid]) + bytes(counts) + bytes(s for s, _ in codes))


def canonical(codes):
    """Canonical Huffman codes for [(symbol, length)]: {symbol: (code, length)}."""
    out, code, last = {}, 0, codes[0][1]
    for sym, n in codes:
        code <<= n - last
        last = n
        out[sym] = (code, n)
        code += 1
    return out


def sos(comps, ss, se, ah, al):
    """comps: [(id, dc_table, ac_table)]."""
    p = bytes([len(comps)])
    for cid, td, ta in comps:
        p += bytes([cid, (td << 4) | ta])
    return seg(0xDA, p + bytes([ss, se, (ah << 4) | al]))


class Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, n):
        self.acc = (self.acc << n) | (value & ((1 << n) - 1))
        self.n += n
        while self.n >= 8:
            self.n -= 8
            b = (self.acc >> self.n) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)
        self.acc &= (1 << self.n) - 1

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


SOI, EOI = b"\xff\xd8", b"\xff\xd9"


def desync(jpeg):
    """The issue-#21 construction around a JPEG (which starts with SOI)."""
    assert jpeg[:2] == SOI
    # A walker taking `FF 00` for a marker reads `FF E1` as its length: it lands at byte
    # 4 + 0xFFE1. The APP1 payload starts at byte 8 (FF D8, FF 00, FF E1, length).
    fake = sof(0xC0, 1, 1, [(1, 0x11, 0)]) + EOI
    at = 4 + 0xFFE1 - 8
    payload = bytearray(b"hostile\0" + bytes(at - 8)) + fake + bytes(16)
    return SOI + b"\xff\x00" + seg(0xE1, bytes(payload)) + jpeg[2:]


# Tables for all-grey data: DC category 0 and the AC end-of-block, each a 1-bit code "0".
GREY_TABLES = dht(0, 0, [(0, 1)]) + dht(1, 0, [(0, 1)])


def zero_bits(n_bits):
    """Entropy data of n_bits zero bits (padded with ones)."""
    b = Bits()
    whole = n_bits // 8
    b.out += bytes(whole)
    b.put(0, n_bits - 8 * whole)
    return b.flush()


def big_frame(code, comps, adobe=False):
    """A 65535 x 65535 frame header with tables and a short scan."""
    out = SOI
    if adobe:
        out += seg(0xEE, b"Adobe" + bytes([0, 100, 0, 0, 0, 0, 0]))
    out += dqt(1) + GREY_TABLES + sof(code, 65535, 65535, comps)
    if code == 0xC2:
        out += sos([(c[0], 0, 0) for c in comps], 0, 0, 0, 0)
    elif code == 0xC3:
        out += sos([(c[0], 0, 0) for c in comps], 1, 0, 0, 0)
    else:
        out += sos([(c[0], 0, 0) for c in comps], 0, 63, 0, 0)
    return out + bytes(64) + EOI


def grey_baseline(w, h):
    blocks = -(-w // 8) * -(-h // 8)
    return (SOI + dqt(1) + GREY_TABLES + sof(0xC0, w, h, [(1, 0x11, 0)])
            + sos([(1, 0, 0)], 0, 63, 0, 0) + zero_bits(2 * blocks) + EOI)


def eob_runs(blocks):
    """End-of-band runs covering `blocks` blocks (each run at most 32767), with a table of
    the 15 EOBn symbols (4-bit codes)."""
    table = canonical([(r << 4, 4) for r in range(15)])
    b = Bits()
    while blocks:
        run = min(blocks, 32767)
        n = run.bit_length() - 1
        code, length = table[n << 4]
        b.put(code, length)
        b.put(run - (1 << n), n)
        blocks -= run
    return b.flush()


def many_scans(w, h, scans):
    """A grey progressive file: one DC scan, then `scans - 1` AC scans of end-of-band runs."""
    blocks = -(-w // 8) * -(-h // 8)
    out = (SOI + dqt(1) + dht(0, 0, [(0, 1)]) + dht(1, 0, [(r << 4, 4) for r in range(15)])
           + sof(0xC2, w, h, [(1, 0x11, 0)]) + sos([(1, 0, 0)], 0, 0, 0, 0) + zero_bits(blocks))
    ac = sos([(1, 0, 0)], 1, 63, 0, 0) + eob_runs(blocks)
    return out + ac * (scans - 1) + EOI


# ---------------------------------------------------------------- a valid 400-scan file
DC_CODES = [(s, 4) for s in range(12)]
AC_CODES = [(0x00, 8), (0xF0, 8)] + [((r << 4) | s, 8) for r in range(16) for s in range(1, 11)]


def lcg_blocks(n, seed=12345):
    """Deterministic quantised coefficients: DC over the whole range, a few ACs."""
    out = []
    x = seed
    for _ in range(n):
        blk = [0] * 64
        for k in range(64):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            if k == 0:
                blk[0] = (x >> 8) % 201 - 100
            elif (x >> 4) % 64 < 64 - k:
                blk[ZIGZAG[k]] = (x >> 12) % (1 + 120 // k) * (1 if (x >> 20) & 1 else -1)
        out.append(blk)
    return out


def bitlen(v):
    return abs(v).bit_length()


def dc_first(b, blocks, al, tab):
    pred = 0
    for blk in blocks:
        v = blk[0] >> al  # arithmetic shift, as libjpeg's encoder
        diff, pred = v - pred, v
        s = bitlen(diff)
        b.put(*tab[s])
        if s:
            b.put(diff if diff >= 0 else diff - 1, s)


def ac_first(b, blocks, ss, se, al, tab):
    for blk in blocks:
        r = 0
        for k in range(ss, se + 1):
            c = blk[ZIGZAG[k]]
            t = (abs(c) >> al)
            if t == 0:
                r += 1
                continue
            while r > 15:
                b.put(*tab[0xF0])
                r -= 16
            s = t.bit_length()
            b.put(*tab[(r << 4) | s])
            b.put(t if c >= 0 else ~t, s)
            r = 0
        if r:
            b.put(*tab[0x00])


def ac_refine(b, blocks, ss, se, al, tab):
    for blk in blocks:
        vals = [abs(blk[ZIGZAG[k]]) >> al for k in range(64)]
        eob = max([k for k in range(ss, se + 1) if vals[k] == 1], default=0)
        r, pending = 0, []
        for k in range(ss, se + 1):
            t = vals[k]
            if t == 0:
                r += 1
                continue
            while r > 15 and k <= eob:
                b.put(*tab[0xF0])
                for bit in pending:
                    b.put(bit, 1)
                pending, r = [], r - 16
            if t > 1:
                pending.append(t & 1)  # correction bit of an already-nonzero coefficient
                continue
            b.put(*tab[(r << 4) | 1])
            b.put(1 if blk[ZIGZAG[k]] > 0 else 0, 1)
            for bit in pending:
                b.put(bit, 1)
            pending, r = [], 0
        if r or pending:
            b.put(*tab[0x00])
            for bit in pending:
                b.put(bit, 1)


def scans_400(w=40, h=24):
    """DC: a first scan at Al 9 and 9 refinements; AC: every coefficient alone, first at
    Al 5 and 5 refinements (Al 6 and 6 for the first 12): 10 + 63 * 6 + 12 = 400 scans."""
    blocks = lcg_blocks(-(-w // 8) * -(-h // 8))
    dct, act = canonical(DC_CODES), canonical(AC_CODES)
    out = (SOI + dqt(2) + dht(0, 0, DC_CODES) + dht(1, 0, AC_CODES)
           + sof(0xC2, w, h, [(1, 0x11, 0)]))
    scans = 0

    def scan(ss, se, ah, al, body):
        nonlocal out, scans
        b = Bits()
        body(b)
        out += sos([(1, 0, 0)], ss, se, ah, al) + b.flush()
        scans += 1

    scan(0, 0, 0, 9, lambda b: dc_first(b, blocks, 9, dct))
    for al in range(8, -1, -1):
        scan(0, 0, al + 1, al, lambda b, al=al: [b.put((blk[0] >> al) & 1, 1) for blk in blocks])
    for k in range(1, 64):
        top = 6 if k <= 12 else 5
        scan(k, k, 0, top, lambda b, k=k, top=top: ac_first(b, blocks, k, k, top, act))
        for al in range(top - 1, -1, -1):
            scan(k, k, al + 1, al, lambda b, k=k, al=al: ac_refine(b, blocks, k, k, al, act))
    assert scans == 400, scans
    return out + EOI


def extreme_quant(w=40, h=24, seed=1):
    """A grey baseline file with every quantisation value 255 and quantised coefficients
    up to +-1023: dequantised values overflow 16 bits, where libjpeg-turbo's SIMD IDCT
    (Pillow's) wraps and saturates."""
    x = seed
    dct, act = canonical(DC_CODES), canonical(AC_CODES)
    b, pred = Bits(), 0

    def rand(n):
        nonlocal x
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        return (x >> 8) % n

    for _ in range(-(-w // 8) * -(-h // 8)):
        blk = [0] * 64
        blk[0] = rand(2047) - 1023
        for k in range(1, 64):
            if rand(10) < 3:
                blk[ZIGZAG[k]] = rand(2047) - 1023
        diff, pred = blk[0] - pred, blk[0]
        s = bitlen(diff)
        b.put(*dct[s])
        if s:
            b.put(diff if diff >= 0 else diff - 1, s)
        r = 0
        for k in range(1, 64):
            c = blk[ZIGZAG[k]]
            if c == 0:
                r += 1
                continue
            while r > 15:
                b.put(*act[0xF0])
                r -= 16
            s = bitlen(c)
            b.put(*act[(r << 4) | s])
            b.put(c if c >= 0 else c - 1, s)
            r = 0
        if r:
            b.put(*act[0x00])
    return (SOI + dqt(255) + dht(0, 0, DC_CODES) + dht(1, 0, AC_CODES) + sof(0xC0, w, h, [(1, 0x11, 0)])
            + sos([(1, 0, 0)], 0, 63, 0, 0) + b.flush() + EOI)


def sparse_cmyk(w, h):
    """Issue #22's construction: a progressive CMYK frame whose only scan is one first AC
    scan of end-of-band runs (a few hundred bytes): it decodes, to all the memory its
    frame declares."""
    blocks = -(-w // 8) * -(-h // 8)
    return (SOI + dqt(1) + dht(1, 0, [(r << 4, 4) for r in range(15)])
            + sof(0xC2, w, h, [(i, 0x11, 0) for i in (1, 2, 3, 4)])
            + sos([(1, 0, 0)], 1, 63, 0, 0) + eob_runs(blocks) + EOI)


def cut_after_scan(jpeg, k):
    """A progressive JPEG stopped after its first k scans: EOI where scan k + 1 began."""
    starts = [i for i in range(len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] == 0xDA]
    return jpeg[:starts[k]] + EOI


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = args[0]
    photo = args[args.index("--photo") + 1] if "--photo" in args else None
    os.makedirs(out, exist_ok=True)
    ycc = [(1, 0x22, 0), (2, 0x11, 0), (3, 0x11, 0)]
    files = {
        "desync_65535_baseline.jpg": desync(big_frame(0xC0, ycc)),
        "desync_65535_progressive.jpg": desync(big_frame(0xC2, ycc)),
        "desync_65535_lossless.jpg": desync(big_frame(0xC3, ycc)),
        "desync_65535_cmyk.jpg": desync(big_frame(0xC0, [(i, 0x11, 0) for i in (1, 2, 3, 4)],
                                                  adobe=True)),
        "desync_120mpx_grey.jpg": desync(grey_baseline(12000, 10000)),
        "scans_501.jpg": many_scans(10000, 10000, 501),
        "scans_5000.jpg": many_scans(10000, 10000, 5000),
        "scans_400_small.jpg": scans_400(),
        "sparse_cmyk_2000.jpg": sparse_cmyk(2000, 2000),
    }
    if photo:
        with open(photo, "rb") as f:
            files["desync_photo.jpg"] = desync(f.read())
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
