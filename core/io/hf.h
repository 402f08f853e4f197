/* Hugging Face model folders (config.json + safetensors + tokenizer.json): internal parts
 * shared by the loader, the writer, the tests and the fuzz targets. */
#ifndef MIPR_HF_H
#define MIPR_HF_H

#include "mipr.h"

/* What config.json says, mapped to mipr's model. */
typedef struct mipr_hf_config {
    mipr_hparams hp;
    uint32_t d_ff;
    int tied;          /* tie_word_embeddings */
    int qkv_bias;      /* q/k/v projections have biases (qwen2) */
    int permute_qk;    /* llama family: rotate-half rows become interleaved pairs on load */
    float *rope_freqs; /* n_rope_freqs Llama 3 divisors (malloc'd), or NULL */
    uint32_t n_rope_freqs;
    char model_type[32];
} mipr_hf_config;

/* Parses config.json text; name stands for the file in messages. */
mipr_status mipr_hf_config_parse(mipr_hf_config *out, const char *json, size_t len,
                                 const char *name, mipr_error *err);
void mipr_hf_config_free(mipr_hf_config *c);

/* Llama 3 RoPE scaling, as llama.cpp's convert_hf_to_gguf.py computes rope_freqs (in
 * float32): for each of dim/2 frequencies, 1 (short wavelengths), factor (long ones), or a
 * smooth blend in between. */
void mipr_hf_llama3_freqs(float *out, uint32_t dim, float theta, float factor, float low,
                          float high, float old_ctx);

/* Row r of an interleaved (GGUF llama) q/k matrix is row mipr_hf_qk_src(r) of the
 * rotate-half (Hugging Face) one, heads of head_size rows each. */
uint32_t mipr_hf_qk_src(uint32_t r, uint32_t head_size);

/* The model a parsed config.json and its tensors describe (names, shapes, permutation as
 * mipr_hf_load does); tensor data stays borrowed from the set's buffers. dir names the
 * model, what the weights in messages. */
typedef struct mipr_st_set mipr_st_set;
mipr_status mipr_hf_build(mipr_model **out, const mipr_hf_config *cfg, const mipr_st_set *set,
                          const char *dir, const char *what, mipr_error *err);

/* dir + "/" + file (malloc'd), and whether a path is a directory. */
char *mipr_hf_path(const char *dir, const char *file);
int mipr_hf_is_dir(const char *path);

#endif
