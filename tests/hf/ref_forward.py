#!/usr/bin/env python3
"""An independent reference of a Hugging Face llama checkpoint's forward pass, in plain
python3 (no numpy): reads config.json and model.safetensors (F32) of FOLDER and prints the
logits of every position for the token ids given, one line per position.

It follows transformers' LlamaForCausalLM as written: q/k/v projections, rotate-half RoPE
on the rows as stored (no permutation), grouped-query attention, SiLU-gated FFN, RMSNorm.
mipr permutes q/k rows to interleaved pairs instead, so agreement proves that permutation.

usage: ref_forward.py FOLDER ID [ID ...]
       ref_forward.py FOLDER --greedy STEPS ID [ID ...]   (the prompt ids, then greedy
           continuation up to STEPS positions: prints the text, SentencePiece-style pieces
           of tokenizer.json decoded as llama2.c prints them)
       ref_forward.py FOLDER --bf16-exact   (exit 0 iff every weight is a bfloat16 value)
"""
import json
import math
import os
import struct
import sys


def load(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    w = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", name
        b, e = t["data_offsets"]
        flat = list(struct.unpack("<%df" % ((e - b) // 4), data[b:e]))
        if len(t["shape"]) == 2:
            cols = t["shape"][1]
            flat = [flat[r * cols:(r + 1) * cols] for r in range(t["shape"][0])]
        w[name] = flat
    if "model.embed_tokens.weight" not in w:
        w["model.embed_tokens.weight"] = w["lm_head.weight"]
    if "lm_head.weight" not in w:
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return cfg, w


def matvec(m, x):
    return [sum(a * b for a, b in zip(row, x)) for row in m]


def rmsnorm(x, g, eps):
    s = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [v * s * gi for v, gi in zip(x, g)]


def rope(v, pos, hd, theta):
    half = hd // 2
    out = list(v)
    for h in range(len(v) // hd):
        for i in range(half):
            ang = pos * theta ** (-2.0 * i / hd)
            c, s = math.cos(ang), math.sin(ang)
            a, b = v[h * hd + i], v[h * hd + half + i]
            out[h * hd + i] = a * c - b * s
            out[h * hd + half + i] = b * c + a * s
    return out


def forward(cfg, w, ids, greedy=0):
    dim, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd, eps = dim // nh, cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta", 10000.0)
    L = cfg["num_hidden_layers"]
    cache = [([], []) for _ in range(L)]
    rows = []
    ids = list(ids)
    pos = 0
    while pos < len(ids):
        tok = ids[pos]
        x = list(w["model.embed_tokens.weight"][tok])
        for l in range(L):
            p = "model.layers.%d." % l
            h = rmsnorm(x, w[p + "input_layernorm.weight"], eps)
            q = rope(matvec(w[p + "self_attn.q_proj.weight"], h), pos, hd, theta)
            k = rope(matvec(w[p + "self_attn.k_proj.weight"], h), pos, hd, theta)
            v = matvec(w[p + "self_attn.v_proj.weight"], h)
            cache[l][0].append(k)
            cache[l][1].append(v)
            att = []
            for head in range(nh):
                kvh = head // (nh // nkv)
                qh = q[head * hd:(head + 1) * hd]
                sc = [sum(a * b for a, b in zip(qh, kk[kvh * hd:(kvh + 1) * hd])) / math.sqrt(hd)
                      for kk in cache[l][0]]
                mx = max(sc)
                e = [math.exp(s - mx) for s in sc]
                z = sum(e)
                for i in range(hd):
                    att.append(sum(e[t] / z * cache[l][1][t][kvh * hd + i] for t in range(len(e))))
            x = [a + b for a, b in zip(x, matvec(w[p + "self_attn.o_proj.weight"], att))]
            h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps)
            g = matvec(w[p + "mlp.gate_proj.weight"], h)
            u = matvec(w[p + "mlp.up_proj.weight"], h)
            act = [gi / (1.0 + math.exp(-gi)) * ui for gi, ui in zip(g, u)]
            x = [a + b for a, b in zip(x, matvec(w[p + "mlp.down_proj.weight"], act))]
        x = rmsnorm(x, w["model.norm.weight"], eps)
        rows.append(matvec(w["lm_head.weight"], x))
        pos += 1
        if pos == len(ids) and pos <= greedy:
            # llama2.c's loop: positions 0..STEPS-1 run, each one's successor is printed
            nxt = max(range(len(rows[-1])), key=lambda i: (rows[-1][i], -i))
            if nxt in (cfg.get("bos_token_id"), cfg.get("eos_token_id")):
                break
            ids.append(nxt)
            if pos == greedy:
                break
    return rows, ids


def decode(folder, ids):
    vocab = json.load(open(os.path.join(folder, "tokenizer.json")))["model"]["vocab"]
    piece = {i: p for p, i in vocab.items()}
    out = b""
    for prev, tok in zip(ids, ids[1:]):
        p = piece[tok]
        if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            out += bytes([int(p[3:5], 16)])
            continue
        p = p.replace("\u2581", " ")
        if prev == ids[0] and p.startswith(" "):
            p = p[1:]
        out += p.encode()
    return out.decode("utf-8", "replace")


def bf16_exact(w):
    for t in w.values():
        for row in (t if isinstance(t[0], list) else [t]):
            for v in row:
                if struct.unpack("<I", struct.pack("<f", v))[0] & 0xFFFF:
                    return False
    return True


def main():
    cfg, w = load(sys.argv[1])
    if sys.argv[2:] == ["--bf16-exact"]:
        sys.exit(0 if bf16_exact(w) else 1)
    if sys.argv[2] == "--greedy":
        _, ids = forward(cfg, w, [int(a) for a in sys.argv[4:]], int(sys.argv[3]))
        sys.stdout.write(decode(sys.argv[1], ids))
        return
    for row in forward(cfg, w, [int(a) for a in sys.argv[2:]])[0]:
        print(" ".join("%.9g" % v for v in row))


if __name__ == "__main__":
    main()
