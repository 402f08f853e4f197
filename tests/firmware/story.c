/* Story firmware: stories260K, packed as an uncompressed .mpk and linked into the image
 * (flash on mps2-an500, DDR on mps3-an547; firmware/model.S), writes greedy text from a
 * fixed prompt over semihosting, as mipr-run does on the host for the same .mpk. ctest
 * (firmware/run_story.cmake) compares the two texts.
 *
 * The model's tensors are used in place from the image; RAM holds the tokenizer, the KV
 * cache and the engine's buffers, all allocated at start-up from the board's arena. Exit
 * status 1 when anything fails, including an allocation while decoding. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "mipr_runtime.h"

#ifndef MIPR_FW_PROMPT
#define MIPR_FW_PROMPT "Once upon a time"
#endif
#ifndef MIPR_FW_STEPS
#define MIPR_FW_STEPS 200
#endif

/* firmware/model.S */
extern const unsigned char mipr_fw_model[], mipr_fw_model_end[];

/* The text is kept and printed at the end, so the instruction count per token is the
 * engine's alone. */
struct story {
    const mipr_tokenizer *tok;
    uint32_t calls, n_pre;
    unsigned long allocs_decoding;
    uint64_t t_decode;
    size_t len;
    char text[16384];
};

static int emit(void *ctx, int32_t prev, int32_t token)
{
    struct story *s = ctx;
    if (++s->calls == s->n_pre + 1) { /* the first generated token: decoding from here on */
        s->allocs_decoding = board_allocations();
        s->t_decode = board_instructions();
    }
    size_t len;
    const char *p = mipr_tokenizer_decode(s->tok, prev, token, &len);
    /* lone non-printable bytes (from byte tokens) are dropped, as mipr-run does */
    int keep = len > 1 || (len == 1 && (isprint((unsigned char)p[0]) || isspace((unsigned char)p[0])));
    if (keep && s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, p, len);
        s->len += len;
    }
    return 0;
}

static struct story story;
static int32_t prompt_ids[sizeof MIPR_FW_PROMPT + 2];

static void report(const mipr_gen_stats *st, unsigned long allocs_startup,
                   unsigned long allocs_generate, uint64_t t_end)
{
    unsigned long decoding = board_allocations() - story.allocs_decoding;
    printf("--- text ---\n%.*s\n--- end ---\n", (int)story.len, story.text);
    printf("prompt %u tokens, generated %u tokens; %llu instructions per generated token\n",
           (unsigned)st->prompt_tokens, (unsigned)st->generated,
           st->generated > 1 ? (unsigned long long)((t_end - story.t_decode) / (st->generated - 1))
                             : 0ull);
    printf("allocations: %lu at start-up (%llu bytes), %lu in mipr_generate, %lu while "
           "decoding\n", allocs_startup, board_allocated_bytes(), allocs_generate, decoding);
    printf("arena: %lu of %lu bytes used\n", (unsigned long)board_arena_used(),
           (unsigned long)board_arena_size());
}

static mipr_status run(mipr_error *err, int *decode_allocated)
{
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    mipr_engine *e = NULL;
    mipr_sampler smp = {0};
    size_t size = (size_t)(mipr_fw_model_end - mipr_fw_model);
    mipr_status st = mipr_mpk_open_memory(&m, &tok, mipr_fw_model, size, NULL, err);
    if (!st) {
        printf("story: %s, %llu parameters, %lu-byte .mpk in place at %p\n", m->name,
               (unsigned long long)mipr_model_n_params(m), (unsigned long)size,
               (const void *)mipr_fw_model);
        uint32_t ctx = MIPR_FW_STEPS < m->hp.seq_len ? MIPR_FW_STEPS : m->hp.seq_len;
        st = mipr_engine_new(&e, m, ctx, 0, err);
    }
    if (!st)
        st = mipr_sampler_init(&smp, m->hp.vocab_size, 0.0f, 1.0f, 1, err);
    if (!st) {
        const char *prompt = MIPR_FW_PROMPT;
        uint32_t n = (uint32_t)mipr_tokenizer_encode(tok, prompt, strlen(prompt), 1, prompt_ids);
        story.tok = tok;
        story.n_pre = n - 1 < MIPR_FW_STEPS ? n - 1 : MIPR_FW_STEPS;
        unsigned long allocs = board_allocations();
        mipr_gen_stats gs;
        st = mipr_generate(e, &smp, tok, prompt_ids, n, MIPR_FW_STEPS, emit, &story, NULL, &gs,
                           err);
        uint64_t t_end = board_instructions();
        unsigned long generate_allocs = story.calls > story.n_pre
                                            ? story.allocs_decoding - allocs
                                            : board_allocations() - allocs;
        if (!st) {
            report(&gs, allocs, generate_allocs, t_end);
            /* nothing may be allocated once generation starts (prefill included) */
            *decode_allocated = board_allocations() != allocs;
        }
    }
    mipr_sampler_free(&smp);
    mipr_engine_free(e);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    return st;
}

int main(void)
{
    char msg[128];
    if (mipr_kernels_init(msg, sizeof msg))
        printf("note: %s\n", msg);
    printf("kernel table: %s\n", mipr_kernels()->isa);
    mipr_error err = {0};
    int decode_allocated = 0;
    mipr_status st = run(&err, &decode_allocated);
    if (st)
        printf("story: FAIL: %s: %s\n", mipr_status_name(st), err.msg);
    if (decode_allocated)
        printf("story: FAIL: the runtime allocated while decoding\n");
    int ok = !st && !decode_allocated;
    printf("story: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
