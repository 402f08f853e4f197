/* config.json → mipr_hf_config: the llama family (llama, mistral) and qwen2. Every value
 * comes from the file; what mipr cannot run (other activations, MLP biases, RoPE scaling
 * types other than linear and llama3) is refused by name rather than run wrongly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hf.h"

typedef struct cfg_ctx {
    const cJSON *root;
    const char *name;
    mipr_error *err;
} cfg_ctx;

static const cJSON *item(const cfg_ctx *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    return cJSON_IsNull(v) ? NULL : v;
}

/* Integer key in lo..hi; absent: dflt when dflt != 0, else an error. */
static mipr_status get_u32(const cfg_ctx *c, const char *key, uint32_t dflt, uint32_t lo,
                           uint32_t hi, uint32_t *out)
{
    const cJSON *v = item(c, key);
    if (!v && dflt) {
        *out = dflt;
        return MIPR_OK;
    }
    if (!v)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: %s is missing", c->name, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return mipr_error_set(c->err, d > hi ? MIPR_ERR_UNSUPPORTED : MIPR_ERR_FORMAT,
                              "%s: %s must be a whole number in %u..%u", c->name, key, lo, hi);
    *out = (uint32_t)d;
    return MIPR_OK;
}

static mipr_status get_pos(const cfg_ctx *c, const cJSON *obj, const char *key, double dflt,
                           float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    double d = !v || cJSON_IsNull(v) ? dflt : cJSON_IsNumber(v) ? v->valuedouble : -1.0;
    if (!(d > 0.0 && d < 1e30 && (float)d > 0.0f)) /* as the float it becomes */
        return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: %s must be a positive number",
                              c->name, key);
    *out = (float)d;
    return MIPR_OK;
}

static int get_bool(const cfg_ctx *c, const char *key, int dflt)
{
    const cJSON *v = item(c, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static mipr_status family(const cfg_ctx *c, mipr_hf_config *o)
{
    const cJSON *mt = item(c, "model_type"), *ar = item(c, "architectures");
    const char *type = cJSON_IsString(mt) ? mt->valuestring : NULL;
    const cJSON *a0 = cJSON_IsArray(ar) ? cJSON_GetArrayItem(ar, 0) : NULL;
    const char *arch = cJSON_IsString(a0) ? a0->valuestring : NULL;
    static const struct { const char *type, *arch; int qwen2; } known[] = {
        {"llama", "LlamaForCausalLM", 0},
        {"mistral", "MistralForCausalLM", 0},
        {"qwen2", "Qwen2ForCausalLM", 1},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (!(type && strcmp(type, known[i].type) == 0) &&
            !(!type && arch && strcmp(arch, known[i].arch) == 0))
            continue;
        snprintf(o->model_type, sizeof o->model_type, "%s", known[i].type);
        o->qkv_bias = known[i].qwen2;
        o->permute_qk = !known[i].qwen2;
        o->hp.family = known[i].qwen2 ? MIPR_FAMILY_QWEN2 : MIPR_FAMILY_LLAMA;
        o->hp.rope_type = known[i].qwen2 ? MIPR_ROPE_NEOX : MIPR_ROPE_INTERLEAVED;
        return MIPR_OK;
    }
    return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED, "%s: model_type \"%.40s\" (%.60s) is "
                          "not supported (mipr reads llama, mistral and qwen2)", c->name,
                          type ? type : "?", arch ? arch : "no architectures");
}

static mipr_status sizes(const cfg_ctx *c, mipr_hf_config *o)
{
    mipr_hparams *hp = &o->hp;
    mipr_status st;
    if ((st = get_u32(c, "hidden_size", 0, 1, MIPR_MAX_DIM, &hp->dim)) ||
        (st = get_u32(c, "intermediate_size", 0, 1, MIPR_MAX_FF, &o->d_ff)) ||
        (st = get_u32(c, "num_hidden_layers", 0, 1, MIPR_MAX_LAYERS, &hp->n_layers)) ||
        (st = get_u32(c, "num_attention_heads", 0, 1, hp->dim, &hp->n_heads)) ||
        (st = get_u32(c, "num_key_value_heads", hp->n_heads, 1, hp->n_heads, &hp->n_kv_heads)) ||
        (st = get_u32(c, "vocab_size", 0, 1, MIPR_MAX_VOCAB, &hp->vocab_size)) ||
        (st = get_u32(c, "max_position_embeddings", 0, 1, MIPR_MAX_SEQ, &hp->seq_len)))
        return st;
    if (hp->dim % hp->n_heads || hp->n_heads % hp->n_kv_heads)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: hidden_size %u, num_attention_heads"
                              " %u and num_key_value_heads %u are inconsistent", c->name,
                              hp->dim, hp->n_heads, hp->n_kv_heads);
    hp->head_size = hp->n_rot = hp->dim / hp->n_heads;
    uint32_t hd;
    if ((st = get_u32(c, "head_dim", hp->head_size, 1, MIPR_MAX_DIM, &hd)))
        return st;
    if (hd != hp->head_size)
        return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED, "%s: head_dim %u differs from "
                              "hidden_size / num_attention_heads = %u, which mipr cannot run",
                              c->name, hd, hp->head_size);
    if (hp->head_size % 2)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: the head size %u is odd (RoPE "
                              "rotates pairs)", c->name, hp->head_size);
    return MIPR_OK;
}

static mipr_status unsupported_parts(const cfg_ctx *c, const mipr_hf_config *o)
{
    const cJSON *act = item(c, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0))
        return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED, "%s: hidden_act \"%.32s\" is not "
                              "supported (mipr runs silu)", c->name,
                              cJSON_IsString(act) ? act->valuestring : "?");
    if (get_bool(c, "mlp_bias", 0))
        return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED, "%s: mlp_bias is true: biases on "
                              "gate/up/down are not supported", c->name);
    if (!o->qkv_bias && get_bool(c, "attention_bias", 0))
        return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED, "%s: attention_bias is true: llama "
                              "attention biases are not supported", c->name);
    return MIPR_OK;
}

void mipr_hf_llama3_freqs(float *out, uint32_t dim, float theta, float factor, float low,
                          float high, float old_ctx)
{
    const float low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
    for (uint32_t i = 0; i < dim / 2; i++) {
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)dim);
        float wavelen = (float)(2.0 * 3.14159265358979323846) / freq;
        if (wavelen < high_wavelen) {
            out[i] = 1.0f;
        } else if (wavelen > low_wavelen) {
            out[i] = factor;
        } else {
            float smooth = (old_ctx / wavelen - low) / (high - low);
            out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}

static mipr_status llama3(const cfg_ctx *c, const cJSON *rs, mipr_hf_config *o)
{
    float factor, low, high, old_ctx;
    mipr_status st;
    /* llama.cpp's converter reads original_max_position_embeddings from the top level of
     * config.json (default 8192), not from rope_scaling: the same here, so that both give
     * the same file. */
    const cJSON *saved = c->root;
    if ((st = get_pos(c, rs, "factor", 8.0, &factor)) ||
        (st = get_pos(c, rs, "low_freq_factor", 1.0, &low)) ||
        (st = get_pos(c, rs, "high_freq_factor", 4.0, &high)) ||
        (st = get_pos(c, saved, "original_max_position_embeddings", 8192.0, &old_ctx)))
        return st;
    if (low == high)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: rope_scaling low_freq_factor and "
                              "high_freq_factor are equal", c->name);
    o->n_rope_freqs = o->hp.n_rot / 2;
    if (!(o->rope_freqs = malloc(o->n_rope_freqs * sizeof *o->rope_freqs)))
        return mipr_error_set(c->err, MIPR_ERR_NOMEM, "out of memory");
    mipr_hf_llama3_freqs(o->rope_freqs, o->hp.n_rot, o->hp.rope_theta, factor, low, high,
                         old_ctx);
    return MIPR_OK;
}

static mipr_status rope(const cfg_ctx *c, mipr_hf_config *o)
{
    mipr_status st = get_pos(c, c->root, "rope_theta", 10000.0, &o->hp.rope_theta);
    const cJSON *rs = item(c, "rope_scaling");
    if (st || !rs)
        return st;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(t))
        t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "";
    if (strcmp(type, "linear") == 0)
        return get_pos(c, rs, "factor", 1.0, &o->hp.rope_scale);
    if (strcmp(type, "llama3") == 0)
        return llama3(c, rs, o);
    if (strcmp(type, "default") == 0)
        return MIPR_OK;
    return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED, "%s: rope_scaling type \"%.32s\" is "
                          "not supported (mipr reads linear and llama3)", c->name, type);
}

mipr_status mipr_hf_config_parse(mipr_hf_config *out, const char *json, size_t len,
                                 const char *name, mipr_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: not a JSON object", name);
    }
    cfg_ctx c = {root, name, err};
    mipr_status st;
    if (!(st = family(&c, out)) && !(st = sizes(&c, out)) && !(st = unsupported_parts(&c, out)) &&
        !(st = get_pos(&c, root, "rms_norm_eps", 1e-6, &out->hp.norm_eps)))
        st = rope(&c, out);
    out->tied = get_bool(&c, "tie_word_embeddings", 0);
    cJSON_Delete(root);
    if (st)
        mipr_hf_config_free(out);
    return st;
}

void mipr_hf_config_free(mipr_hf_config *c)
{
    free(c->rope_freqs);
    c->rope_freqs = NULL;
    c->n_rope_freqs = 0;
}

uint32_t mipr_hf_qk_src(uint32_t r, uint32_t head_size)
{
    uint32_t h = r / head_size, j = r % head_size;
    return h * head_size + (j % 2) * (head_size / 2) + j / 2;
}
