#!/usr/bin/env python3
"""Rewrites a GGUF file (v3, little-endian) with one change, for tests of hostile models.

usage: gguf_edit.py IN OUT EDIT...
  set-u32 KEY VALUE        a u32 key's value (e.g. llama.block_count 4)
  piece ID LENGTH          token ID's piece becomes LENGTH bytes of 'a'
  poke TENSOR INDEX VALUE  element INDEX of an F32 tensor becomes VALUE (nan, inf, -inf, 1e9)
  drop TENSOR              the tensor is removed
The file is re-laid out: offsets and the data section's alignment are recomputed."""
import struct
import sys

SCALAR = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q',
          12: 'd'}
GGML_SIZE = {0: (4, 1), 1: (2, 1), 8: (34, 32), 2: (18, 32), 30: (2, 1)}  # bytes, block


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from('<' + fmt, self.b, self.o)
        self.o += struct.calcsize('<' + fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take('Q')
        s = self.b[self.o:self.o + n]
        self.o += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take('I'), self.take('Q')
            return (et, [self.value(et) for _ in range(n)])
        return self.take(SCALAR[t])


def put_value(t, v):
    if t == 8:
        return struct.pack('<Q', len(v)) + v
    if t == 9:
        et, items = v
        return struct.pack('<IQ', et, len(items)) + b''.join(put_value(et, x) for x in items)
    return struct.pack('<' + SCALAR[t], v)


def main():
    src, dst, edit = sys.argv[1], sys.argv[2], sys.argv[3:]
    b = open(src, 'rb').read()
    r = Reader(b)
    magic, version, n_t, n_kv = r.take('4s'), r.take('I'), r.take('Q'), r.take('Q')
    assert magic == b'GGUF' and version == 3
    kvs = []
    for _ in range(n_kv):
        k = r.string()
        t = r.take('I')
        kvs.append([k, t, r.value(t)])
    align = next((v for k, t, v in kvs if k == b'general.alignment'), 32)
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take('I')
        dims = [r.take('Q') for _ in range(nd)]
        infos.append([name, dims, r.take('I'), r.take('Q')])
    base = (r.o + align - 1) // align * align
    tensors = []
    for name, dims, typ, off in infos:
        n = 1
        for d in dims:
            n *= d
        size, blk = GGML_SIZE[typ]
        data = bytearray(b[base + off:base + off + n // blk * size])
        tensors.append([name, dims, typ, data])
    op = edit[0]
    if op == 'set-u32':
        kv = next(kv for kv in kvs if kv[0] == edit[1].encode())
        kv[1], kv[2] = 4, int(edit[2])
    elif op == 'piece':
        toks = next(kv for kv in kvs if kv[0] == b'tokenizer.ggml.tokens')
        toks[2][1][int(edit[1])] = b'a' * int(edit[2])
    elif op == 'poke':
        t = next(t for t in tensors if t[0] == edit[1].encode())
        assert t[2] == 0, 'poke needs an F32 tensor'
        struct.pack_into('<f', t[3], 4 * int(edit[2]), float(edit[3]))
    elif op == 'drop':
        tensors = [t for t in tensors if t[0] != edit[1].encode()]
    else:
        sys.exit('unknown edit ' + op)
    out = bytearray(b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += struct.pack('<Q', len(k)) + k + struct.pack('<I', t) + put_value(t, v)
    off = 0
    offs = []
    for name, dims, typ, data in tensors:
        offs.append(off)
        off = (off + len(data) + align - 1) // align * align
    for (name, dims, typ, data), o in zip(tensors, offs):
        out += struct.pack('<Q', len(name)) + name + struct.pack('<I', len(dims))
        out += b''.join(struct.pack('<Q', d) for d in dims) + struct.pack('<IQ', typ, o)
    out += b'\0' * ((-len(out)) % align)
    for (name, dims, typ, data), o in zip(tensors, offs):
        out += data
        out += b'\0' * ((-len(data)) % align)
    open(dst, 'wb').write(out)


if __name__ == '__main__':
    main()
