#!/usr/bin/env python3
"""Regenerates the fuzz seed corpora in tests/fuzz/corpus/ from the real test data.

usage: make_corpus.py DATA_DIR MIPR_BINARY

Every seed is a real file of ../shared/data or a cropped version of one, at most 64 KiB, so
that each libFuzzer run starts from inputs that reach deep into the reader:

  gguf/      mini.gguf: stories260K.gguf with its real tokenizer metadata, cut down to one
             layer of width 8 (tensors are the top-left corners of the real ones), so it
             loads; head.gguf: the first 16 KiB of the real file (header, truncated data)
  llama2c/   mini.bin: the same cut of stories260K.bin (loads); head.bin: its first 4 KiB;
             q80_head.bin: the first 256 bytes of the quantized (version 2) checkpoint
  tokbin/    tok512.bin and tok105.bin whole; the first 64 KiB of the 32K tokenizer.bin
  tokenize/  one selector byte (bit 0: the 32K tokenizer, bit 1: BOS) then text cut from
             TinyStories and WikiText-2
  calib/     two .mcal records written by `mipr calibrate` on stories260K
  safetensors/ mini.safetensors: TinyStories-656K's tensors cut to the small llama of
             fuzz_safetensors.c's config (top-left corners, one layer), so it builds and
             runs; head.safetensors: the first 4 KiB of the real file (header, cut data)
  hfconfig/  TinyStories-656K's config.json, and qwen2 / Llama 3 / linear-RoPE variants
  tokjson/   tokenizer.json files of TinyStories-656K (SentencePiece style), SmolLM2 and Llama 3
             (byte-level) cut to their first few hundred tokens and the merges among them
  tokenize/  (also) selector bit 2: the byte-level gpt-2 GGUF / Llama 3 tokenizer.json
             vocabularies, bit 3: control tokens parsed
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
LIMIT = 64 * 1024

# ---- GGUF ------------------------------------------------------------------------------------

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q",
          11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n]
        self.p += n
        return s

    def value(self, t):
        """Raw bytes of one value of type t."""
        start = self.p
        if t == 8:
            self.string()
        elif t == 9:
            et, n = self.take("<I"), self.take("<Q")
            for _ in range(n):
                self.value(et)
        else:
            self.p += struct.calcsize(SCALAR[t])
        return self.d[start:self.p]


def gguf_str(s):
    return struct.pack("<Q", len(s)) + s


def mini_gguf(src):
    data = open(src, "rb").read()
    r = Reader(data)
    assert r.d[:4] == b"GGUF"
    r.p = 4
    version, n_t, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kvs = []
    for _ in range(n_kv):
        key = r.string()
        t = r.take("<I")
        kvs.append((key, t, r.value(t)))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = 32
    base = (r.p + align - 1) // align * align

    dim, ff, heads, kv_heads, rot, ctx = 8, 8, 2, 1, 4, 64
    kv_dim = dim // heads * kv_heads
    new_u32 = {b"llama.embedding_length": dim, b"llama.feed_forward_length": ff,
               b"llama.attention.head_count": heads, b"llama.attention.head_count_kv": kv_heads,
               b"llama.block_count": 1, b"llama.rope.dimension_count": rot,
               b"llama.context_length": ctx}
    shapes = {"token_embd.weight": (dim, None), "output_norm.weight": (dim, 1),
              "blk.0.attn_norm.weight": (dim, 1), "blk.0.attn_q.weight": (dim, dim),
              "blk.0.attn_k.weight": (dim, kv_dim), "blk.0.attn_v.weight": (dim, kv_dim),
              "blk.0.attn_output.weight": (dim, dim), "blk.0.ffn_norm.weight": (dim, 1),
              "blk.0.ffn_gate.weight": (dim, ff), "blk.0.ffn_up.weight": (dim, ff),
              "blk.0.ffn_down.weight": (ff, dim)}
    out_kv = b""
    for key, t, raw in kvs:
        if key in new_u32:
            assert t in (4, 5)
            raw = struct.pack("<I", new_u32[key])
        out_kv += gguf_str(key) + struct.pack("<I", t) + raw
    tensors = []
    for name, ne, gt, off in infos:
        n = name.decode()
        if n not in shapes:
            continue  # other layers, and the output matrix (tied to the embedding here)
        assert gt == 0, "the source is F32"
        cols, rows = shapes[n]
        rows = ne[1] if rows is None else rows
        src_cols = ne[0]
        blob = b""
        for i in range(rows):
            start = base + off + 4 * i * src_cols
            blob += data[start:start + 4 * cols]
        dims = [cols] if len(ne) == 1 else [cols, rows]
        tensors.append((name, dims, blob))
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + out_kv
    off, info = 0, b""
    for name, dims, blob in tensors:
        info += gguf_str(name) + struct.pack("<I", len(dims))
        info += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", 0, off)
        off += (len(blob) + align - 1) // align * align
    out = bytearray(head + info)
    out += b"\0" * (-len(out) % align)
    for _, _, blob in tensors:
        out += blob + b"\0" * (-len(blob) % align)
    return bytes(out)


# ---- llama2.c ------------------------------------------------------------------------------

def mini_llama2c(src):
    data = open(src, "rb").read()
    dim, hid, L, nh, nkv, vocab, seq = struct.unpack_from("<7i", data, 0)
    hs = dim // nh
    kvd = hs * nkv
    pos = 28

    def arr(rows, cols):
        nonlocal pos
        a = (pos, rows, cols)
        pos += 4 * rows * cols
        return a

    src_arrays = {"emb": arr(abs(vocab), dim)}
    for name, r, c in [("att_norm", 1, dim), ("wq", dim, dim), ("wk", kvd, dim),
                       ("wv", kvd, dim), ("wo", dim, dim), ("ffn_norm", 1, dim),
                       ("w1", hid, dim), ("w2", dim, hid), ("w3", hid, dim)]:
        src_arrays[name] = [arr(r, c) for _ in range(L)]
    src_arrays["final_norm"] = arr(1, dim)

    def crop(a, rows, cols):
        off, _, src_cols = a
        return b"".join(data[off + 4 * i * src_cols: off + 4 * (i * src_cols + cols)]
                        for i in range(rows))

    d, ff, h, kv, s = 8, 8, 2, 1, 16
    k = d // h * kv
    out = struct.pack("<7i", d, ff, 1, h, kv, abs(vocab), s)
    out += crop(src_arrays["emb"], abs(vocab), d)
    for name, r, c in [("att_norm", 1, d), ("wq", d, d), ("wk", k, d), ("wv", k, d),
                       ("wo", d, d), ("ffn_norm", 1, d), ("w1", ff, d), ("w2", d, ff),
                       ("w3", ff, d)]:
        out += crop(src_arrays[name][0], r, c)
    out += crop(src_arrays["final_norm"], 1, d)
    out += b"\0" * (4 * s * (d // h))  # freq_cis: unused by readers, zero like the size says
    return out


# ---- text and records ------------------------------------------------------------------------

def text_seeds(data_dir):
    ts = open(os.path.join(data_dir, "text/tinystories/tinystories_val.txt"), "rb").read()
    wk = open(os.path.join(data_dir, "text/wikitext-2/wiki.test.raw"), "rb").read()
    seeds = {"ts_512": b"\x00" + ts[:1024], "ts_32k_bos": b"\x03" + ts[5000:6024],
             "wiki_512_bos": b"\x02" + wk[:2048], "wiki_32k": b"\x01" + wk[20000:22048]}
    # the first non-ASCII stretch of WikiText (accents, dashes), and bytes that are not UTF-8
    i = next(j for j, b in enumerate(wk) if b >= 0x80)
    seeds["wiki_utf8_32k"] = b"\x01" + wk[max(0, i - 200):i + 800]
    seeds["bytes_512"] = b"\x00" + bytes(range(256)) + b"\xe2\x82" + b"\xf0\x9f\x98\x80 ok"
    return seeds


def calib_seeds(data_dir, mipr):
    # run from the data folder so the names the record keeps are relative, not this machine's
    model, tok = "stories260K/stories260K.bin", "stories260K/tok512.bin"
    text = "text/tinystories/tinystories_val.txt"
    mipr = os.path.abspath(mipr)
    out = {}
    with tempfile.TemporaryDirectory() as t:
        for name, args in [("small", ["--tokens", "96", "--samples", "4", "--heldout", "16"]),
                           ("noheldout", ["--tokens", "40", "--samples", "1", "--heldout", "0",
                                          "--window", "8"])]:
            path = os.path.join(t, name + ".mcal")
            subprocess.run([mipr, "calibrate", model, "-z", tok, "--text", text, "-o", path,
                            "--threads", "1"] + args, check=True, stderr=subprocess.DEVNULL,
                           cwd=data_dir)
            out[name] = open(path, "rb").read()
    return out


def st_read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), f.read()


def mini_safetensors(src):
    """The corners of the real tensors at dim 8, one layer, 2 heads (1 KV head), FFN 16,
    vocabulary 32; F32, the embedding stored as lm_head as in the real file (tied)."""
    header, data = st_read(src)
    dims = {"lm_head.weight": (32, 8), "model.norm.weight": (8,)}
    for part, shape in (("input_layernorm.weight", (8,)), ("post_attention_layernorm.weight", (8,)),
                        ("self_attn.q_proj.weight", (8, 8)), ("self_attn.k_proj.weight", (4, 8)),
                        ("self_attn.v_proj.weight", (4, 8)), ("self_attn.o_proj.weight", (8, 8)),
                        ("mlp.gate_proj.weight", (16, 8)), ("mlp.up_proj.weight", (16, 8)),
                        ("mlp.down_proj.weight", (8, 16))):
        dims["model.layers.0." + part] = shape
    out_h, out_d = {}, b""
    for name, shape in dims.items():
        t = header[name]
        b = t["data_offsets"][0]
        cols = t["shape"][-1]
        rows = shape[0] if len(shape) == 2 else 1
        width = shape[-1]
        blob = b"".join(data[b + 4 * r * cols: b + 4 * (r * cols + width)] for r in range(rows))
        out_h[name] = {"dtype": "F32", "shape": list(shape),
                       "data_offsets": [len(out_d), len(out_d) + len(blob)]}
        out_d += blob
    text = json.dumps(out_h, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + out_d


def config_seeds(data_dir):
    real = open(os.path.join(data_dir, "tinystories-656k/config.json"), "rb").read()
    base = json.loads(real)
    qwen = dict(base, model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                rope_theta=1000000.0)
    llama3 = dict(base, rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 8192})
    linear = dict(base, rope_scaling={"type": "linear", "factor": 2.0})
    return {"tinystories.json": real, "qwen2.json": json.dumps(qwen).encode(),
            "llama3.json": json.dumps(llama3).encode(), "linear.json": json.dumps(linear).encode()}
def cut_tokenizer_json(path, n):
    """The tokenizer.json at path with only tokens below id n and the merges among them."""
    d = json.load(open(path, encoding="utf-8"))
    m = d["model"]
    m["vocab"] = {k: v for k, v in m["vocab"].items() if v < n}
    def ok(mg):
        a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
        return a in m["vocab"] and b in m["vocab"] and a + b in m["vocab"]
    m["merges"] = [mg for mg in m["merges"] if ok(mg)]
    d["added_tokens"] = [t for t in d["added_tokens"] if t["id"] < n][:4]
    return json.dumps(d, ensure_ascii=False).encode("utf-8")


def write(target, name, blob):
    assert len(blob) <= LIMIT, (target, name, len(blob))
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data_dir, mipr = sys.argv[1], sys.argv[2]
    gg = os.path.join(data_dir, "stories260K/stories260K.gguf")
    binp = os.path.join(data_dir, "stories260K/stories260K.bin")
    write("gguf", "mini.gguf", mini_gguf(gg))
    write("gguf", "head.gguf", open(gg, "rb").read()[:16384])
    write("llama2c", "mini.bin", mini_llama2c(binp))
    write("llama2c", "head.bin", open(binp, "rb").read()[:4096])
    write("llama2c", "q80_head.bin",
          open(os.path.join(data_dir, "stories260K/stories260K_q80.bin"), "rb").read()[:256])
    write("tokbin", "tok512.bin", open(os.path.join(data_dir, "stories260K/tok512.bin"), "rb").read())
    write("tokbin", "tok105.bin",
          open(os.path.join(data_dir, "babyllama-tok105/tok105.bin"), "rb").read())
    write("tokbin", "llama2_head.bin",
          open(os.path.join(data_dir, "llama2c-tokenizer/tokenizer.bin"), "rb").read()[:LIMIT])
    for name, blob in text_seeds(data_dir).items():
        write("tokenize", name, blob)
    st = os.path.join(data_dir, "tinystories-656k/model.safetensors")
    write("safetensors", "mini.safetensors", mini_safetensors(st))
    write("safetensors", "head.safetensors", open(st, "rb").read()[:4096])
    for name, blob in config_seeds(data_dir).items():
        write("hfconfig", name, blob)
    write("tokjson", "tinystories.json",
          cut_tokenizer_json(os.path.join(data_dir, "tinystories-656k/tokenizer.json"), 400))
    write("tokjson", "smollm2.json",
          cut_tokenizer_json(os.path.join(data_dir, "vocab/hf/smollm2/tokenizer.json"), 400))
    write("tokjson", "llama3.json",
          cut_tokenizer_json(os.path.join(data_dir, "vocab/hf/llama3/tokenizer.json"), 400))
    wk = open(os.path.join(data_dir, "text/wikitext-2/wiki.test.raw"), "rb").read()
    write("tokenize", "bpe_gpt2_wiki", b"\x04" + wk[30000:31024])
    write("tokenize", "bpe_llama3_special", b"\x0f<|begin_of_text|>Hi 1234 <|eot_id|>\n" +
          wk[40000:40512])
    for name, blob in calib_seeds(data_dir, mipr).items():
        write("calib", name + ".mcal", blob)


if __name__ == "__main__":
    main()
