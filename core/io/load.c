/* Loading a model file of any supported kind, with its tokenizer. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "mipr.h"

/* A folder is a model only as a Hugging Face checkpoint: config.json says so. */
static enum mipr_file_kind detect_dir(const char *path, mipr_error *err)
{
    size_t n = strlen(path);
    char *cfg = malloc(n + sizeof "/config.json");
    if (!cfg) {
        mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
        return MIPR_FILE_UNKNOWN;
    }
    memcpy(cfg, path, n);
    memcpy(cfg + n, "/config.json", sizeof "/config.json");
    struct stat s;
    int ok = stat(cfg, &s) == 0 && S_ISREG(s.st_mode);
    free(cfg);
    if (ok)
        return MIPR_FILE_HF;
    mipr_error_set(err, MIPR_ERR_FORMAT, "%s: a folder, but not a Hugging Face model folder: "
                   "it has no config.json (a model folder holds config.json, model.safetensors "
                   "and tokenizer.json)", path);
    return MIPR_FILE_UNKNOWN;
}

enum mipr_file_kind mipr_detect_file(const char *path, mipr_error *err)
{
    struct stat s;
    if (stat(path, &s) == 0 && S_ISDIR(s.st_mode))
        return detect_dir(path, err);
    FILE *f = fopen(path, "rb");
    if (!f) {
        mipr_error_set(err, MIPR_ERR_IO, "%s: cannot open", path);
        return MIPR_FILE_UNKNOWN;
    }
    unsigned char head[9] = {0};
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (n >= 4 && memcmp(head, "GGUF", 4) == 0)
        return MIPR_FILE_GGUF;
    if (mipr_mpk_is_mpk(head, n))
        return MIPR_FILE_MPK;
    if (n >= 9 && head[8] == '{' && head[7] == 0 && head[6] == 0 && head[5] == 0) {
        /* a header length under 2^40 then '{': a safetensors file, which needs its folder
         * (llama2.c's first two int32 fields are never a dim with a zero hidden_dim) */
        mipr_error_set(err, MIPR_ERR_FORMAT, "%s: a safetensors file; mipr reads it as part "
                       "of its Hugging Face folder: pass the folder that holds it with "
                       "config.json and tokenizer.json", path);
        return MIPR_FILE_UNKNOWN;
    }
    if (n >= 8)
        return MIPR_FILE_LLAMA2C; /* no magic: the header check decides */
    mipr_error_set(err, MIPR_ERR_FORMAT, "%s: too short (%zu bytes) to be a model file", path, n);
    return MIPR_FILE_UNKNOWN;
}

/* "tokenizer.bin" in the model's folder. */
static char *sibling_tokenizer(const char *model_path)
{
    const char *slash = strrchr(model_path, '/');
    size_t dir = slash ? (size_t)(slash - model_path + 1) : 0;
    char *p = malloc(dir + sizeof "tokenizer.bin");
    if (p) {
        memcpy(p, model_path, dir);
        memcpy(p + dir, "tokenizer.bin", sizeof "tokenizer.bin");
    }
    return p;
}

static mipr_status load_llama2c(mipr_model **model, mipr_tokenizer **tok, const char *path,
                                const char *tok_path, mipr_error *err)
{
    mipr_status st = mipr_llama2c_load_model(model, path, err);
    if (st || !tok)
        return st;
    char *own = tok_path ? NULL : sibling_tokenizer(path);
    if (!tok_path && !own)
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    else
        st = mipr_llama2c_load_tokenizer(tok, tok_path ? tok_path : own, (*model)->hp.vocab_size,
                                         err);
    if (st == MIPR_ERR_IO && !tok_path)
        mipr_error_set(err, st, "%s: a llama2.c checkpoint needs its tokenizer: pass -z "
                       "TOKENIZER (looked for %s)", path, own);
    free(own);
    return st;
}

static mipr_status load_gguf(mipr_model **model, mipr_tokenizer **tok, const char *path,
                             const char *tok_path, mipr_error *err)
{
    mipr_gguf *g = NULL;
    mipr_status st = mipr_gguf_open(&g, path, err);
    if (st == MIPR_OK)
        st = mipr_gguf_load_model(model, g, err);
    if (st == MIPR_OK && tok) {
        if (tok_path)
            st = mipr_llama2c_load_tokenizer(tok, tok_path, (*model)->hp.vocab_size, err);
        else
            st = mipr_gguf_load_tokenizer(tok, g, err);
    }
    if (st == MIPR_OK && tok && mipr_tokenizer_n_vocab(*tok) != (*model)->hp.vocab_size)
        st = mipr_error_set(err, MIPR_ERR_FORMAT, "%s: the tokenizer has %u tokens but the "
                            "model's vocabulary is %u", path, mipr_tokenizer_n_vocab(*tok),
                            (*model)->hp.vocab_size);
    mipr_gguf_close(g);
    return st;
}

mipr_status mipr_load(mipr_model **model, mipr_tokenizer **tok, const char *path,
                      const char *tokenizer_path, mipr_error *err)
{
    *model = NULL;
    if (tok)
        *tok = NULL;
    mipr_status st;
    switch (mipr_detect_file(path, err)) {
    case MIPR_FILE_GGUF: st = load_gguf(model, tok, path, tokenizer_path, err); break;
    case MIPR_FILE_LLAMA2C: st = load_llama2c(model, tok, path, tokenizer_path, err); break;
    case MIPR_FILE_HF:
        if (tokenizer_path)
            return mipr_error_set(err, MIPR_ERR_ARG, "%s: a Hugging Face folder carries its "
                                  "tokenizer (tokenizer.json); drop -z", path);
        st = mipr_hf_load(model, tok, path, err);
        break;
    case MIPR_FILE_MPK:
        if (tokenizer_path)
            return mipr_error_set(err, MIPR_ERR_ARG, "%s: an .mpk carries its tokenizer; drop -z",
                                  path);
        st = mipr_mpk_open_file(model, tok, path, NULL, err);
        break;
    default: return err ? err->status : MIPR_ERR_FORMAT;
    }
    if (st) {
        mipr_model_free(*model);
        *model = NULL;
        if (tok) {
            mipr_tokenizer_free(*tok);
            *tok = NULL;
        }
    }
    return st;
}
