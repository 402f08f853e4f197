#!/usr/bin/env python3
"""A hostile-input campaign against the mipr CLI (docs/RELIABILITY.md, "Campaign").

Each attack is one command on one hostile input or output, with the outcome it must have:
refused (exit 1, or 2 for a usage error, a message naming the file, no temporary left, no
input and no special file changed) or accepted (the input is valid: exit 0). Outcomes are
counted per attack class as tried / refused cleanly / accepted correctly / crashed (a
signal, or a sanitizer report) / hung (timeout) / wrong silently (exit 0 where a refusal was
due, or a refusal that is not clean). Run it on a sanitizer build to see memory errors.

usage: campaign.py MIPR DATA_DIR [--quick] [--seed S]
Prints one line per class and a Markdown table; exits 1 when crashed, hung or wrong > 0."""
import hashlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(HERE, '..', 'cli')
sys.path.insert(0, CLI)


class Campaign:
    def __init__(self, mipr, data, tmp, rnd):
        self.mipr, self.data, self.t, self.rnd = mipr, data, tmp, rnd
        self.stats, self.examples = {}, {}

    def count(self, cls, outcome, detail=''):
        s = self.stats.setdefault(cls, dict(tried=0, refused=0, accepted=0, crashed=0, hung=0,
                                            wrong=0))
        s['tried'] += 1
        s[outcome] += 1
        if outcome in ('crashed', 'hung', 'wrong') and len(self.examples.setdefault(cls, [])) < 3:
            self.examples[cls].append(detail)

    def digest(self, paths):
        out = {}
        for p in paths:
            if os.path.islink(p):
                out[p] = ('link', os.readlink(p), os.stat(p).st_mode if os.path.exists(p) else 0)
            elif os.path.isfile(p):
                out[p] = hashlib.sha256(open(p, 'rb').read()).hexdigest()
            elif os.path.exists(p):
                out[p] = ('special', os.stat(p).st_mode)
        return out

    def temps(self):
        return [os.path.join(d, f) for d, _, fs in os.walk(self.t) for f in fs if '.tmp.' in f]

    def run(self, cls, args, must, names, watch=(), timeout=120, env=None):
        """must: 'refuse' or 'accept'; names: strings one of which the message must hold."""
        before = self.digest(watch)
        e = dict(os.environ, **(env or {}))
        try:
            p = subprocess.run([self.mipr] + args, capture_output=True, timeout=timeout, env=e)
        except subprocess.TimeoutExpired:
            return self.count(cls, 'hung', ' '.join(args))
        err = p.stderr.decode('utf-8', 'replace')
        left = self.temps()
        for f in left:
            os.unlink(f)
        what = '%s -> %d: %s' % (' '.join(args), p.returncode, err[-300:])
        if p.returncode < 0 or p.returncode >= 128 or 'Sanitizer' in err or 'runtime error' in err:
            return self.count(cls, 'crashed', what)
        changed = self.digest(watch) != before
        if must == 'accept':
            ok = p.returncode == 0 and not left and not changed
            return self.count(cls, 'accepted' if ok else 'wrong', what)
        clean = p.returncode in (1, 2) and any(n in err for n in names) and not left and not changed
        self.count(cls, 'refused' if clean else 'wrong', what + (' (left %s)' % left if left else '')
                   + (' (an input changed)' if changed else ''))

    # ---- inputs -------------------------------------------------------------------------
    def setup(self):
        d, t = self.data, self.t
        for src, dst in [('stories260K/stories260K.bin', 'm.bin'), ('stories260K/tok512.bin', 'z.bin'),
                         ('stories260K/stories260K.gguf', 'g.gguf')]:
            shutil.copy(os.path.join(d, src), os.path.join(t, dst))
        txt = open(os.path.join(d, 'text/tinystories/validation_100.txt'), 'rb').read()[:20000]
        open(os.path.join(t, 't.txt'), 'wb').write(txt)
        self.M, self.Z, self.G, self.TXT = (os.path.join(t, n) for n in ('m.bin', 'z.bin', 'g.gguf', 't.txt'))
        self.C = os.path.join(t, 'c.mcal')
        subprocess.run([self.mipr, 'calibrate', self.M, '-z', self.Z, '--text', self.TXT, '--tokens',
                        '3000', '--samples', '16', '--heldout', '128', '--window', '64', '-o', self.C],
                       check=True, capture_output=True)
        self.MPK = os.path.join(t, 's.mpk')
        subprocess.run([self.mipr, 'pack', self.M, '-z', self.Z, '-o', self.MPK], check=True,
                       capture_output=True)
        self.inputs = [self.M, self.Z, self.G, self.TXT, self.C, self.MPK]

    def mcal(self, path, *args):
        subprocess.run([sys.executable, os.path.join(CLI, 'mcal.py'), path] + list(args), check=True)

    # ---- attacks ------------------------------------------------------------------------
    def calib_flaws(self):
        flaws = ['hold_last', 'hold_big', 'hold_neg', 'hold_600', 'nan_mean', 'inf_m2', 'neg_m2',
                 'nan_min', 'inf_max', 'nan_sumsq', 'minmax', 'nan_sample', 'inf_sample',
                 'big_mean', 'mean_out', 'big_sumsq']
        for f in flaws:
            path = os.path.join(self.t, f + '.mcal')
            self.mcal(path, '--flaw', f)
            for crit in ['mi', 'magnitude', 'activation', 'wanda-sp', 'flap', 'random', 'auto']:
                self.run('calib: planted flaw', ['prune', self.M, '-z', self.Z, '--calib', path,
                         '--ratio', '0.3', '--criterion', crit, '--seeds', '1', '-o',
                         os.path.join(self.t, 'p.gguf')], 'refuse', [path], self.inputs + [path])
            if not f.startswith('hold'):
                self.run('calib: planted flaw', ['analyze', path], 'refuse', [path], [path])
        for args, name in [(['--layers', '4'], 'l4'), (['--ff', '171'], 'ff'), (['--dim', '32'], 'dim'),
                           (['--samples', '0'], 's0'), (['--samples', '1'], 's1')]:
            path = os.path.join(self.t, name + '.mcal')
            self.mcal(path, *args)
            self.run('calib: another model', ['prune', self.M, '-z', self.Z, '--calib', path,
                     '--ratio', '0.3', '-o', os.path.join(self.t, 'p.gguf')], 'refuse', [path],
                     self.inputs + [path])

    def calib_mutations(self, n):
        """Random bytes of a section's content changed, checksums made right: python decides
        from the decoded values whether the record is still valid."""
        base = os.path.join(self.t, 'base.mcal')
        self.mcal(base, '--samples', '4', '--heldout', '64')
        b = bytearray(open(base, 'rb').read())
        hdr_end = 48 + 4 * 5
        for _ in range(2):
            hdr_end += 4 + struct.unpack_from('<I', b, hdr_end)[0]
        hdr_end += 4
        secs, off = [], hdr_end
        while off < len(b):
            tag, layer, raw, stored = struct.unpack_from('<4sIQQ', b, off)
            secs.append((off, tag, layer, raw, stored))
            off += 32 + stored
        for k in range(n):
            c = bytearray(b)
            off, tag, layer, raw, stored = self.rnd.choice(secs)
            if raw == 0:
                continue
            data = off + 32 + 13 + 3  # frame header (magic, descriptor, size), block header
            for _ in range(self.rnd.randint(1, 4)):
                at = data + self.rnd.randrange(raw)
                c[at] = self.rnd.choice([0xFF, 0x7F, 0x80, 0x00, self.rnd.randrange(256)])
            struct.pack_into('<I', c, off + 28, zlib.crc32(bytes(c[off + 32:off + 32 + stored]),
                                                           zlib.crc32(bytes(c[off:off + 28]))))
            path = os.path.join(self.t, 'mut%d.mcal' % k)
            open(path, 'wb').write(c)
            valid = self.valid_record(c, secs)
            self.run('calib: mutated values', ['prune', self.M, '-z', self.Z, '--calib', path,
                     '--ratio', '0.3', '--criterion', self.rnd.choice(['mi', 'activation', 'flap']),
                     '--seeds', '1', '-o', os.path.join(self.t, 'p%d.gguf' % k)],
                     'accept' if valid else 'refuse', [path], self.inputs + [path])
            for f in (path, os.path.join(self.t, 'p%d.gguf' % k)):
                if os.path.exists(f):
                    os.unlink(f)

    @staticmethod
    def valid_record(c, secs):
        import math
        for off, tag, layer, raw, stored in secs:
            d = bytes(c[off + 48:off + 48 + raw])
            if tag == b'SPOS':
                pos = struct.unpack('<%dQ' % (raw // 8), d)
                if any(p >= 4096 for p in pos) or any(b <= a for a, b in zip(pos, pos[1:])):
                    return False
            elif tag == b'STAT':
                f = (raw - 8) // 40
                if struct.unpack_from('<Q', d)[0] != 4096:
                    return False
                arrs = [struct.unpack_from('<%dd' % f, d, 8 + 8 * f * i) for i in range(4)]
                mn = struct.unpack_from('<%df' % f, d, 8 + 32 * f)
                mx = struct.unpack_from('<%df' % f, d, 8 + 36 * f)
                if not all(math.isfinite(v) for a in arrs + [mn, mx] for v in a):
                    return False
                if any(v < 0 for a in arrs[1:] for v in a) or any(x > y for x, y in zip(mn, mx)):
                    return False
                for j in range(f):  # core/io/calib_io.c stat_outside_range
                    lo, hi, n = mn[j], mx[j], 4096.0
                    big = max(abs(lo), abs(hi))
                    slack = 1e-9 * big + 1e-300
                    if not lo - slack <= arrs[0][j] <= hi + slack or \
                            arrs[1][j] > n * (hi - lo) ** 2 * (1 + 1e-9) + 1e-300 or \
                            arrs[2][j] > n * big * (1 + 1e-9) + 1e-300 or \
                            arrs[3][j] > n * big * big * (1 + 1e-9) + 1e-300:
                        return False
            elif tag == b'SAMP':
                v = struct.unpack('<%df' % (raw // 4), bytes(d[i // 4 + (i % 4) * (raw // 4)]
                                                            for i in range(raw)))
                if not all(math.isfinite(x) for x in v):
                    return False
            elif tag == b'HOLD':
                if any(not 0 <= i < 512 for i in struct.unpack('<%di' % (raw // 4), d)):
                    return False
        return True

    def outputs(self):
        t = self.t
        fifo, link, sock, dirp = (os.path.join(t, n) for n in ('fifo', 'to_fifo', 'sock', 'dir'))
        os.mkfifo(fifo)
        os.symlink('fifo', link)
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock)
        os.mkdir(dirp)
        for o in (fifo, link, sock, dirp):
            for cmd, _ in self.writers(o):
                self.run('output: special file', cmd, 'refuse', [o], self.inputs + [fifo, link, sock])
        os.symlink('m.bin', os.path.join(t, 'm_link'))
        os.link(self.Z, os.path.join(t, 'z_hard'))
        rel = os.path.relpath(self.TXT)
        for o in self.inputs + [os.path.join(t, 'm_link'), os.path.join(t, 'z_hard'), rel,
                                os.path.join(t, '.', 'c.mcal')]:
            for cmd, ins in self.writers(o):
                if any(os.path.exists(i) and os.path.samefile(o, i) for i in ins):
                    self.run('output: an input', cmd, 'refuse', [o], self.inputs)
        s.close()

    def writers(self, o):
        M, Z, T, C, G = self.M, self.Z, self.TXT, self.C, self.G
        p = os.path.join(self.t, 'w.gguf')
        return [(['pack', M, '-z', Z, '-o', o], [M, Z]), (['convert', M, '-z', Z, '-o', o], [M, Z]),
                (['convert', G, '-o', o, '--type', 'q8_0'], [G]), (['unpack', self.MPK, '-o', o], [self.MPK]),
                (['calibrate', M, '-z', Z, '--text', T, '--tokens', '500', '-o', o], [M, Z, T]),
                (['prune', M, '-z', Z, '--calib', C, '--ratio', '0.3', '--criterion', 'magnitude', '-o', o],
                 [M, Z, C]),
                (['prune', M, '-z', Z, '--calib', C, '--ratio', '0.3', '--criterion', 'magnitude', '-o', p,
                  '--report', o, '--eval-text', T], [M, Z, C, T])]

    def gguf(self, *edit):
        out = os.path.join(self.t, 'e%d.gguf' % self.rnd.randrange(1 << 30))
        subprocess.run([sys.executable, os.path.join(CLI, 'gguf_edit.py'), self.G, out] + list(edit),
                       check=True)
        return out

    def weights(self, n):
        names = ['blk.%d.%s.weight' % (l, s) for l in range(5)
                 for s in ('attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down')]
        sizes = {'attn_q': 4096, 'attn_k': 2048, 'attn_v': 2048, 'attn_output': 4096, 'ffn_gate': 11008,
                 'ffn_up': 11008, 'ffn_down': 11008}
        for k in range(n):
            name = self.rnd.choice(names)
            v = self.rnd.choice(['nan', 'inf', '-inf'])
            g = self.gguf('poke', name, str(self.rnd.randrange(sizes[name.split('.')[2]])), v)
            cmds = [['convert', g, '-o', g + '.q8.gguf', '--type', 'q8_0'],
                    ['convert', g, '-o', g + '.q4.gguf', '--type', 'q4_0'],
                    ['convert', g, '-o', g + '.f16.gguf', '--type', 'f16'],
                    ['pack', g, '-o', g + '.mpk', '--quant', self.rnd.choice(['q8', 'q4', 'f16'])],
                    ['perplexity', g, '--text', self.TXT, '--max-windows', '1'],
                    ['generate', g, '-n', '8', '-t', '0']]
            for cmd in cmds:
                for isa in ([None, 'generic'] if cmd[0] == 'generate' else [None]):
                    self.run('weights: NaN/Inf', cmd, 'refuse', [g, 'tensor ' + name], [g],
                             env={'MIPR_ISA': isa} if isa else None)
            os.unlink(g)

    def contradictions(self):
        for v in (1, 2, 3, 4, 6, 7, 100):
            g = self.gguf('set-u32', 'llama.block_count', str(v))
            self.run('gguf: contradiction', ['generate', g, '-n', '4'], 'refuse', [g], [g])
            os.unlink(g)
        for l in range(5):
            for s in ('attn_norm', 'attn_q', 'ffn_down', 'ffn_norm'):
                g = self.gguf('drop', 'blk.%d.%s.weight' % (l, s))
                self.run('gguf: contradiction', ['info', g], 'refuse', [g], [g])
                os.unlink(g)
        for n in (1025, 1100, 4096, 65535):
            g = self.gguf('piece', str(self.rnd.randrange(3, 512)), str(n))
            self.run('gguf: long token piece', ['info', g], 'refuse', [g], [g])
            os.unlink(g)

    def mpk_flips(self, n):
        b = open(self.MPK, 'rb').read()
        d, cnt = struct.unpack_from('<QI', b, 24)
        meta = []
        for i in range(cnt):
            e = b[d + 48 * i:d + 48 * i + 48]
            off, size = struct.unpack_from('<QQ', e, 16)
            if e[:4] == b'META':
                meta = list(range(off, off + size))
        spots = meta + [self.rnd.randrange(len(b)) for _ in range(n)]
        for at in spots:
            c = bytearray(b)
            c[at] ^= 1 << self.rnd.randrange(8)
            path = os.path.join(self.t, 'f.mpk')
            open(path, 'wb').write(c)
            self.run('mpk: single-byte change (verify)', ['verify', '-q', path], 'refuse', [path], [path])

    def texts(self):
        t = self.t
        cases = [('empty', b'', 'refuse', 'refuse'), ('blank', b' \n\t \n', 'refuse', 'accept'),
                 ('one', b'a', 'refuse', 'accept'), ('nul', b'\0' * 3000, 'accept', 'accept'),
                 ('binary', bytes(self.rnd.randrange(256) for _ in range(5000)), 'accept', 'accept'),
                 ('utf8bad', b'\xff\xfe\xc3' * 2000, 'accept', 'accept')]
        for name, data, cal, ppl in cases:
            path = os.path.join(t, name + '.txt')
            open(path, 'wb').write(data)
            self.run('text: hostile', ['calibrate', self.M, '-z', self.Z, '--text', path, '--tokens', '400', '--samples', '32',
                     '--heldout', '16', '-o', os.path.join(t, 'x.mcal')], cal, [path], self.inputs + [path])
            self.run('text: hostile', ['perplexity', self.M, '-z', self.Z, '--text', path], ppl, [path],
                     self.inputs + [path])
            for f in ('x.mcal',):
                if os.path.exists(os.path.join(t, f)):
                    os.unlink(os.path.join(t, f))
        for w in ('513', '1000', '100000'):
            self.run('text: hostile', ['calibrate', self.M, '-z', self.Z, '--text', self.TXT, '--window', w,
                     '-o', os.path.join(t, 'x.mcal')], 'refuse', [self.M], self.inputs)
            self.run('text: hostile', ['perplexity', self.M, '-z', self.Z, '--text', self.TXT, '--window', w],
                     'refuse', [self.M], self.inputs, timeout=60)

    def signals(self, n):
        t = self.t
        o, r = os.path.join(t, 'sig.gguf'), os.path.join(t, 'sig.json')
        cmd = [self.mipr, 'prune', self.M, '-z', self.Z, '--calib', self.C, '--ratio', '0.3',
               '--criterion', 'magnitude', '-o', o, '--report', r]
        t0 = time.time()
        subprocess.run(cmd, capture_output=True, check=True)
        span = time.time() - t0 + 0.02
        for k in range(n):
            for f in (o, r):
                open(f, 'w').write('previous')
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(span * self.rnd.random())
            p.send_signal(self.rnd.choice([signal.SIGINT, signal.SIGTERM, signal.SIGHUP]))
            try:
                _, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                self.count('signal: prune model + report', 'hung', 'prune')
                continue
            olds = [open(f, 'rb').read() == b'previous' for f in (o, r)]
            left = self.temps()
            for f in left:
                os.unlink(f)
            if b'Sanitizer' in err:
                self.count('signal: prune model + report', 'crashed', err.decode()[-300:])
            elif olds[0] != olds[1] or left:
                self.count('signal: prune model + report', 'wrong', 'old model %s, old report %s, left %s'
                           % (olds[0], olds[1], left))
            else:
                self.count('signal: prune model + report', 'refused' if olds[0] else 'accepted')


def main():
    mipr, data = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    quick = '--quick' in sys.argv
    seed = int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else 1
    tmp = tempfile.mkdtemp(prefix='mipr-campaign.')
    os.chdir(tmp)
    c = Campaign(mipr, data, tmp, random.Random(seed))
    try:
        c.setup()
        c.calib_flaws()
        c.calib_mutations(40 if quick else 150)
        c.outputs()
        c.weights(4 if quick else 12)
        c.contradictions()
        c.mpk_flips(50 if quick else 300)
        c.texts()
        c.signals(10 if quick else 40)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('| attack class | tried | refused cleanly | accepted (valid) | crashed | hung | wrong silently |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    tot = dict(tried=0, refused=0, accepted=0, crashed=0, hung=0, wrong=0)
    for cls, s in c.stats.items():
        print('| %s | %d | %d | %d | %d | %d | %d |' % (cls, s['tried'], s['refused'], s['accepted'],
                                                   s['crashed'], s['hung'], s['wrong']))
        for k in tot:
            tot[k] += s[k]
    print('| **total** | %d | %d | %d | %d | %d | %d |' % tuple(tot[k] for k in
          ('tried', 'refused', 'accepted', 'crashed', 'hung', 'wrong')))
    for cls, ex in c.examples.items():
        for e in ex:
            print('  %s: %s' % (cls, e), file=sys.stderr)
    return 1 if tot['crashed'] or tot['hung'] or tot['wrong'] else 0


if __name__ == '__main__':
    sys.exit(main())
