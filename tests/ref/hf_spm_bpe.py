#!/usr/bin/env python3
"""Independent reference for SentencePiece-style BPE tokenizer.json files (Hugging Face
semantics, as the `tokenizers` library documents them): the normalizer prepends U+2581 and
turns spaces into U+2581, text starts as one symbol per character (unknown characters:
byte-fallback tokens when the vocabulary has them, else the unknown token, one per run with
fuse_unk), then the pair
with the lowest merge rank is merged, leftmost first, until no listed pair is left.
Prints the ids of TEXT (no BOS) space-separated.

usage: hf_spm_bpe.py TOKENIZER_JSON TEXT"""
import json
import sys


def encode(model, text):
    vocab = model["vocab"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    rank = {}
    for i, pair in enumerate(merges):
        rank.setdefault(pair, i)
    if not text:
        return []
    syms = []
    for ch in "\u2581" + text.replace(" ", "\u2581"):
        if ch in vocab:
            syms.append(ch)
            continue
        pieces = ["<0x%02X>" % b for b in ch.encode("utf-8")]
        if model.get("byte_fallback") and all(p in vocab for p in pieces):
            syms.extend(pieces)
        else:
            if not (model.get("fuse_unk") and syms and syms[-1] is None):
                syms.append(None)  # unknown (a run of them is one with fuse_unk)
    while True:
        best = None
        for i in range(len(syms) - 1):
            a, b = syms[i], syms[i + 1]
            if a is None or b is None or a.startswith("<0x") or b.startswith("<0x"):
                continue
            r = rank.get((a, b))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    unk = vocab.get(model.get("unk_token") or "", 0)
    return [vocab[s] if s is not None else unk for s in syms]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model = json.load(open(sys.argv[1], encoding="utf-8"))["model"]
    print(" ".join(str(i) for i in encode(model, sys.argv[2])))


if __name__ == "__main__":
    main()
