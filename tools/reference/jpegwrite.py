"""Minimal baseline JPEG writer for test fixtures Pillow cannot write: any
sampling factors (e.g. 4:4:0, i.e. h1v2 chroma) and 4-component YCCK with an
Adobe APP14 marker. Float DCT, flat quantisation, fixed-length Huffman codes
(4 bits for DC categories, 8 bits for AC symbols): valid, simple, not small.
"""

import struct

import numpy as np

ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
    20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58,
    59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]
AC_SYMBOLS = [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]
DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)] for u in range(8)])


class Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, n):
        for i in reversed(range(n)):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc, self.n = 0, 0

    def flush(self):
        while self.n:
            self.put(1, 1)
        return bytes(self.out)


def _category(v):
    v = abs(int(v))
    return v.bit_length()


def _magnitude(v, s):
    v = int(v)
    return v if v >= 0 else v + (1 << s) - 1


def _segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def write_jpeg(path, planes, factors, size, q=2, adobe_transform=None):
    """planes: uint8 arrays, one per component, each already at its sampled size
    ceil(W * h / hmax) x ceil(H * v / vmax); factors: [(h, v), ...]; size: (W, H)."""
    hmax = max(h for h, _ in factors)
    vmax = max(v for _, v in factors)
    W, H = size
    mcux, mcuy = -(-W // (8 * hmax)), -(-H // (8 * vmax))
    padded = []
    for p, (h, v) in zip(planes, factors):
        ph, pw = mcuy * 8 * v, mcux * 8 * h
        full = np.pad(p.astype(np.float64), ((0, ph - p.shape[0]), (0, pw - p.shape[1])), mode="edge")
        padded.append(full - 128)
    bits, preds = Bits(), [0] * len(planes)
    for my in range(mcuy):
        for mx in range(mcux):
            for ci, ((h, v), plane) in enumerate(zip(factors, padded)):
                for by in range(v):
                    for bx in range(h):
                        y0, x0 = (my * v + by) * 8, (mx * h + bx) * 8
                        coef = np.rint(DCT @ plane[y0 : y0 + 8, x0 : x0 + 8] @ DCT.T / q).astype(int).reshape(-1)
                        zz = [coef[i] for i in ZIGZAG]
                        diff = zz[0] - preds[ci]
                        preds[ci] = zz[0]
                        s = _category(diff)
                        bits.put(s, 4)
                        bits.put(_magnitude(diff, s), s)
                        run = 0
                        for k in range(1, 64):
                            c = zz[k]
                            if c == 0:
                                run += 1
                                continue
                            while run > 15:
                                bits.put(AC_SYMBOLS.index(0xF0), 8)
                                run -= 16
                            s = _category(c)
                            bits.put(AC_SYMBOLS.index((run << 4) | s), 8)
                            bits.put(_magnitude(c, s), s)
                            run = 0
                        if run:
                            bits.put(AC_SYMBOLS.index(0x00), 8)
    data = b"\xff\xd8"
    if adobe_transform is not None:
        data += _segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, adobe_transform))
    data += _segment(0xDB, bytes([0]) + bytes([q] * 64))
    sof = struct.pack(">BHHB", 8, H, W, len(planes))
    for i, (h, v) in enumerate(factors):
        sof += bytes([i + 1, (h << 4) | v, 0])
    data += _segment(0xC0, sof)
    dc_counts = [0] * 16
    dc_counts[3] = 12
    ac_counts = [0] * 16
    ac_counts[7] = len(AC_SYMBOLS)
    data += _segment(0xC4, bytes([0x00] + dc_counts + list(range(12))))
    data += _segment(0xC4, bytes([0x10] + ac_counts + AC_SYMBOLS))
    sos = bytes([len(planes)]) + b"".join(bytes([i + 1, 0x00]) for i in range(len(planes))) + bytes([0, 63, 0])
    data += _segment(0xDA, sos) + bits.flush() + b"\xff\xd9"
    with open(path, "wb") as f:
        f.write(data)
