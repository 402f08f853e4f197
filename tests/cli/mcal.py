#!/usr/bin/env python3
"""Writes a .mcal calibration record (docs/CALIB_FORMAT.md) from scratch, for tests: every
checksum right, every zstd frame made of raw (stored) blocks, so that no zstd library is
needed; one planted flaw at a time, behind valid checksums.

usage: mcal.py OUT [--flaw NAME] [--layers L] [--dim D] [--ff F] [--samples N]
               [--heldout H] [--vocab V]
Flaws: none, hold_last (the last held-out id = vocab), hold_big (2147483647 at the end of
a window), hold_neg (-1), hold_600, nan_mean, inf_m2, neg_m2, nan_min, inf_max, nan_sumsq,
nan_sample, inf_sample, minmax (min > max), big_mean (1e300), mean_out (above max),
big_sumsq (more than count * max^2)."""
import argparse
import random
import struct
import sys
import zlib


def frame(raw):
    """One zstd frame: content size in the header, raw blocks of at most 128 KiB."""
    out = bytearray(struct.pack('<IB', 0xFD2FB528, 0xE0))  # single segment, 8-byte size
    out += struct.pack('<Q', len(raw))
    blocks = [raw[i:i + 131072] for i in range(0, len(raw), 131072)] or [b'']
    for k, b in enumerate(blocks):
        last = 1 if k + 1 == len(blocks) else 0
        h = last | (0 << 1) | (len(b) << 3)
        out += struct.pack('<I', h)[:3] + b
    return bytes(out)


def section(tag, layer, raw):
    f = frame(raw)
    h = bytearray(struct.pack('<4sIQQI', tag, layer, len(raw), len(f), 0))
    crc = zlib.crc32(f, zlib.crc32(bytes(h)))
    return bytes(h) + struct.pack('<I', crc) + f


def planes(floats):
    """The floats' bytes split into 4 planes: every lowest byte, then the next, ..."""
    b = struct.pack('<%df' % len(floats), *floats)
    return b''.join(b[k::4] for k in range(4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--flaw', default='none')
    ap.add_argument('--layers', type=int, default=5)
    ap.add_argument('--dim', type=int, default=64)
    ap.add_argument('--ff', type=int, default=172)
    ap.add_argument('--samples', type=int, default=16)
    ap.add_argument('--heldout', type=int, default=96)
    ap.add_argument('--vocab', type=int, default=512)
    ap.add_argument('--window', type=int, default=32)
    a = ap.parse_args()
    rnd = random.Random(7)
    tokens, L, F, N = 4096, a.layers, a.ff, a.samples
    hdr = bytearray(b'MIPRCAL\0')
    hdr += struct.pack('<IIIIIIQQ', 1, L, a.dim, a.window, N, 0, tokens, 0)
    hdr += b''.join(struct.pack('<I', F) for _ in range(L))
    for name in (b'model', b'text'):
        hdr += struct.pack('<I', len(name)) + name
    hdr += struct.pack('<I', zlib.crc32(bytes(hdr)))
    out = bytearray(hdr)
    pos = sorted(rnd.sample(range(tokens), N))
    out += section(b'SPOS', 0, b''.join(struct.pack('<Q', p) for p in pos))
    fl = a.flaw
    for l in range(L):
        # statistics that values inside [min, max] can give (the reader checks the bounds)
        mn = [rnd.uniform(-3, -0.6) for _ in range(F)]
        mx = [rnd.uniform(0.6, 3) for _ in range(F)]
        mean = [rnd.uniform(-0.5, 0.5) for _ in range(F)]
        m2 = [rnd.uniform(0.01, 0.2) * tokens for _ in range(F)]
        sabs = [rnd.uniform(0.1, 0.5) * tokens for _ in range(F)]
        ssq = [rnd.uniform(0.1, 0.3) * tokens for _ in range(F)]
        s = [rnd.gauss(0, 1) for _ in range(F * N)]
        if l == L - 1:
            j = F // 2
            if fl == 'nan_mean': mean[j] = float('nan')
            if fl == 'inf_m2': m2[j] = float('inf')
            if fl == 'neg_m2': m2[j] = -1.0
            if fl == 'nan_min': mn[j] = float('nan')
            if fl == 'inf_max': mx[j] = float('-inf')
            if fl == 'nan_sumsq': ssq[j] = float('nan')
            if fl == 'minmax': mn[j], mx[j] = 2.0, 1.0
            if fl == 'big_mean': mean[j] = 1e300
            if fl == 'mean_out': mean[j] = mx[j] + 0.5
            if fl == 'big_sumsq': ssq[j] = 1e30
            if fl == 'nan_sample' and N: s[j * N + N - 1] = float('nan')
            if fl == 'inf_sample' and N: s[j * N] = float('inf')
        stat = struct.pack('<Q', tokens)
        for arr in (mean, m2, sabs, ssq):
            stat += struct.pack('<%dd' % F, *arr)
        stat += struct.pack('<%df' % F, *mn) + struct.pack('<%df' % F, *mx)
        out += section(b'STAT', l, stat)
        out += section(b'SAMP', l, planes(s))
    if a.heldout:
        ids = [rnd.randrange(3, a.vocab) for _ in range(a.heldout)]
        w = a.window - 1  # ids per window: the last one of a window is only a target
        if fl == 'hold_last': ids[-1] = a.vocab
        if fl == 'hold_big': ids[w - 1] = 2147483647
        if fl == 'hold_neg': ids[w - 1] = -1
        if fl == 'hold_600': ids[2 * w - 1] = 600
        out += section(b'HOLD', len(ids), b''.join(struct.pack('<i', i) for i in ids))
    with open(a.out, 'wb') as f:
        f.write(out)


if __name__ == '__main__':
    sys.exit(main())
