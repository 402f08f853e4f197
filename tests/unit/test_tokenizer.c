/* Tokenizer: llama2.c oracles, decode rules, the heap BPE against a quadratic reference
 * written here from run.c's description, throughput, and hostile tokenizer files. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define MAX_PIECE 1024

/* ---- reference encoder: run.c's quadratic algorithm over a sorted vocabulary ------------ */

typedef struct ref_entry {
    const char *p;
    size_t len;
    int32_t id;
} ref_entry;

typedef struct ref_vocab {
    const mipr_tokenizer *t;
    ref_entry *sorted;
    size_t n_sorted;
    unsigned char *text_piece; /* per id: the piece text becomes (only these merge) */
    int32_t byte_tok[256];
    int32_t space;
} ref_vocab;

static int cmp_bytes(const char *a, size_t la, const char *b, size_t lb)
{
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return (la > lb) - (la < lb);
}

static int cmp_entry(const void *a, const void *b)
{
    const ref_entry *x = a, *y = b;
    int c = cmp_bytes(x->p, x->len, y->p, y->len);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* -1 or the byte a piece spelled "<0xXX>" (uppercase hex) stands for */
static int ref_byte_value(const char *p, size_t len)
{
    unsigned v = 0;
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>')
        return -1;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9')
            v = v * 16 + (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            v = v * 16 + (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    return (int)v;
}

static int ref_text_type(enum mipr_token_type ty)
{
    return ty == MIPR_TOK_NORMAL || ty == MIPR_TOK_USER;
}

/* Lowest id whose piece is s among the pieces text may become, or -1. */
static int32_t ref_lookup(const ref_vocab *v, const char *s, size_t len)
{
    size_t lo = 0, hi = v->n_sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_bytes(v->sorted[mid].p, v->sorted[mid].len, s, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < v->n_sorted && cmp_bytes(v->sorted[lo].p, v->sorted[lo].len, s, len) == 0)
        return v->sorted[lo].id;
    return -1;
}

static void ref_byte_table(ref_vocab *v)
{
    uint32_t n = mipr_tokenizer_n_vocab(v->t);
    for (int b = 0; b < 256; b++)
        v->byte_tok[b] = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < n; i++) {
            size_t len;
            const char *p = mipr_tokenizer_piece(v->t, i, &len);
            enum mipr_token_type ty = mipr_tokenizer_type(v->t, i);
            int b = ref_byte_value(p, len);
            int ok = pass == 0 ? ty == MIPR_TOK_BYTE : ref_text_type(ty);
            if (b >= 0 && ok && v->byte_tok[b] < 0)
                v->byte_tok[b] = (int32_t)i;
        }
    }
}

static void ref_init(ref_vocab *v, const mipr_tokenizer *t)
{
    uint32_t n = mipr_tokenizer_n_vocab(t);
    v->t = t;
    v->sorted = malloc(n * sizeof *v->sorted);
    v->n_sorted = 0;
    for (uint32_t i = 0; i < n; i++) {
        ref_entry e;
        e.p = mipr_tokenizer_piece(t, i, &e.len);
        e.id = (int32_t)i;
        if (e.len > 0 && ref_text_type(mipr_tokenizer_type(t, i)) && ref_byte_value(e.p, e.len) < 0)
            v->sorted[v->n_sorted++] = e;
    }
    qsort(v->sorted, v->n_sorted, sizeof *v->sorted, cmp_entry);
    ref_byte_table(v);
    v->space = ref_lookup(v, " ", 1);
    v->text_piece = calloc(n, 1);
    for (size_t i = 0; i < v->n_sorted; i++)
        v->text_piece[v->sorted[i].id] = ref_lookup(v, v->sorted[i].p, v->sorted[i].len) ==
                                         v->sorted[i].id;
}

/* Code point (run.c's way) → piece, else byte tokens, else UNK. */
static size_t ref_symbols(const ref_vocab *v, const char *text, size_t len, int32_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80)
            j++;
        int32_t id = ref_lookup(v, text + i, j - i);
        int all = 1;
        for (size_t k = i; k < j; k++)
            all = all && v->byte_tok[(unsigned char)text[k]] >= 0;
        if (id >= 0)
            out[n++] = id;
        else if (all)
            for (size_t k = i; k < j; k++)
                out[n++] = v->byte_tok[(unsigned char)text[k]];
        else if (mipr_tokenizer_unk(v->t) >= 0)
            out[n++] = mipr_tokenizer_unk(v->t);
        i = j;
    }
    return n;
}

static int32_t ref_pair(const ref_vocab *v, int32_t a, int32_t b)
{
    char buf[2 * MAX_PIECE];
    size_t la, lb;
    const char *pa = mipr_tokenizer_piece(v->t, (uint32_t)a, &la);
    const char *pb = mipr_tokenizer_piece(v->t, (uint32_t)b, &lb);
    if (!v->text_piece[a] || !v->text_piece[b])
        return -1;
    memcpy(buf, pa, la);
    memcpy(buf + la, pb, lb);
    return ref_lookup(v, buf, la + lb);
}

static size_t ref_merge(const ref_vocab *v, int32_t *tok, size_t n)
{
    for (;;) {
        float best = -1e10f;
        int32_t best_id = -1;
        size_t best_i = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t id = ref_pair(v, tok[i], tok[i + 1]);
            if (id >= 0 && mipr_tokenizer_score(v->t, (uint32_t)id) > best) {
                best = mipr_tokenizer_score(v->t, (uint32_t)id);
                best_id = id;
                best_i = i;
            }
        }
        if (best_id < 0)
            return n;
        tok[best_i] = best_id;
        for (size_t i = best_i + 1; i + 1 < n; i++)
            tok[i] = tok[i + 1];
        n--;
    }
}

static size_t ref_encode(const ref_vocab *v, const char *text, size_t len, int32_t *out)
{
    size_t n = 0;
    if (mipr_tokenizer_bos(v->t) >= 0)
        out[n++] = mipr_tokenizer_bos(v->t);
    if (len == 0)
        return n;
    size_t first = n;
    if (mipr_tokenizer_add_space_prefix(v->t) && v->space >= 0)
        out[n++] = v->space;
    n += ref_symbols(v, text, len, out + n);
    return first + ref_merge(v, out + first, n - first);
}

/* ---- helpers -------------------------------------------------------------------------------- */

static mipr_tokenizer *load_tok(const char *rel, uint32_t n_vocab)
{
    mipr_error err;
    mipr_tokenizer *t;
    CHECK_OK(mipr_llama2c_load_tokenizer(&t, mipr_test_data(rel), n_vocab, &err), &err);
    return t;
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "%s\n", n > 64 ? " ..." : "");
}

/* Decoding the ids (after BOS) must give the text back when every byte has a token. */
static int round_trips(const mipr_tokenizer *t, const int32_t *ids, size_t n, const char *text,
                       size_t len)
{
    size_t at = 0;
    for (size_t i = 1; i < n; i++) {
        size_t l;
        const char *p = mipr_tokenizer_decode(t, ids[i - 1], ids[i], &l);
        if (at + l > len || (l && memcmp(text + at, p, l)))
            return 0;
        at += l;
    }
    return at == len;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- oracles --------------------------------------------------------------------------------- */

static void test_llama2c_oracles(const mipr_tokenizer *t)
{
    size_t jlen;
    char *json = mipr_test_read_file(mipr_test_data("oracles/oracles.json"), &jlen);
    const char *p = strstr(json, "\"llama2c_tokenizer_encodings\"");
    CHECK(p != NULL);
    p = p ? strstr(p, "\"cases\"") : NULL;
    CHECK(p != NULL);
    int n_cases = 0;
    while (p && (p = strstr(p, "\"text\":")) != NULL) {
        p += 7;
        while (*p == ' ')
            p++;
        char *text = mipr_test_json_string(p, &p);
        p = strstr(p, "\"tokens\":") + 9;
        while (*p == ' ' || *p == '\n')
            p++;
        int32_t want[256], got[512];
        size_t n_want = mipr_test_json_ints(p, want, 256, &p);
        size_t n_got = mipr_tokenizer_encode(t, text, strlen(text), 1, got);
        CHECK(same_ids(got, n_got, want, n_want));
        if (!same_ids(got, n_got, want, n_want)) {
            fprintf(stderr, "  text: \"%s\"\n", text);
            print_ids("want", want, n_want);
            print_ids("got", got, n_got);
        }
        free(text);
        n_cases++;
    }
    CHECK(n_cases == 5);
    free(json);
}

static void test_tok512_basics(const mipr_tokenizer *t)
{
    const char *text = "Once upon a time";
    int32_t got[32], want[] = {1, 403, 407, 261, 378};
    size_t n = mipr_tokenizer_encode(t, text, strlen(text), 1, got);
    CHECK(same_ids(got, n, want, 5));
    CHECK(mipr_tokenizer_encode(t, "", 0, 1, got) == 1 && got[0] == 1);
    CHECK(mipr_tokenizer_encode(t, "", 0, 0, got) == 0);
    CHECK(mipr_tokenizer_encode(t, NULL, 5, 1, got) == 1);
    n = mipr_tokenizer_encode(t, text, strlen(text), 0, got);
    CHECK(same_ids(got, n, want + 1, 4));

    CHECK(mipr_tokenizer_n_vocab(t) == 512);
    CHECK(mipr_tokenizer_bos(t) == 1 && mipr_tokenizer_eos(t) == 2 && mipr_tokenizer_unk(t) == 0);
    CHECK(mipr_tokenizer_add_space_prefix(t) == 1);
    size_t len;
    CHECK(strcmp(mipr_tokenizer_piece(t, 1, &len), "<s>") == 0 && len == 3);
    CHECK(strcmp(mipr_tokenizer_piece(t, 2, &len), "</s>") == 0 && len == 4);
    CHECK(strcmp(mipr_tokenizer_piece(t, 0, &len), "<unk>") == 0 && len == 5);
    CHECK(strcmp(mipr_tokenizer_piece(t, 13, &len), "<0x0A>") == 0);
    CHECK(mipr_tokenizer_type(t, 0) == MIPR_TOK_UNKNOWN);
    CHECK(mipr_tokenizer_type(t, 1) == MIPR_TOK_CONTROL);
    CHECK(mipr_tokenizer_type(t, 2) == MIPR_TOK_CONTROL);
    CHECK(mipr_tokenizer_type(t, 3) == MIPR_TOK_BYTE);
    CHECK(mipr_tokenizer_type(t, 258) == MIPR_TOK_BYTE);
    CHECK(mipr_tokenizer_type(t, 259) == MIPR_TOK_NORMAL);
    CHECK(strcmp(mipr_tokenizer_piece(t, 512, &len), "") == 0 && len == 0);
    CHECK(mipr_tokenizer_score(t, 259) > mipr_tokenizer_score(t, 511));
    /* the text "<s>" is characters, never BOS */
    n = mipr_tokenizer_encode(t, "<s></s>", 7, 0, got);
    for (size_t i = 0; i < n; i++)
        CHECK(got[i] != 1 && got[i] != 2);
}

static void test_decode(const mipr_tokenizer *t)
{
    size_t len;
    const char *p = mipr_tokenizer_decode(t, 1, 403, &len); /* " Once" after BOS */
    CHECK(len == 4 && memcmp(p, "Once", 4) == 0);
    p = mipr_tokenizer_decode(t, 378, 403, &len);
    CHECK(len == 5 && memcmp(p, " Once", 5) == 0);
    p = mipr_tokenizer_decode(t, 5, 3 + '\n', &len);
    CHECK(len == 1 && p[0] == '\n');
    p = mipr_tokenizer_decode(t, 1, 3, &len);
    CHECK(len == 1 && p[0] == 0);
    p = mipr_tokenizer_decode(t, 1, 3 + 0xFF, &len);
    CHECK(len == 1 && (unsigned char)p[0] == 0xFF);
    p = mipr_tokenizer_decode(t, 1, 3 + ' ', &len); /* a byte token keeps its space */
    CHECK(len == 1 && p[0] == ' ');
    p = mipr_tokenizer_decode(t, 5, 1, &len);
    CHECK(len == 0 && p[0] == 0);
    p = mipr_tokenizer_decode(t, 5, 2, &len);
    CHECK(len == 0);
    p = mipr_tokenizer_decode(t, 5, 0, &len);
    CHECK(len == 5 && memcmp(p, "<unk>", 5) == 0);
    p = mipr_tokenizer_decode(t, 1, 512, &len);
    CHECK(len == 0 && p);
    p = mipr_tokenizer_decode(t, 1, -7, &len);
    CHECK(len == 0 && p);
    CHECK(mipr_tokenizer_decode(t, -1, 403, NULL) != NULL);
}

static void test_tok105(void)
{
    mipr_tokenizer *t = load_tok("babyllama-tok105/tok105.bin", 105);
    const char *text = "Hi {@} \xe6\x97\xa5\xe6\x9c\xac #\xc3\xa9";
    int32_t got[64];
    int32_t want[] = {1, 3, 33, 10, 3, 0, 0, 0, 3, 0, 0, 3, 0, 78};
    size_t n = mipr_tokenizer_encode(t, text, strlen(text), 1, got);
    CHECK(same_ids(got, n, want, sizeof want / sizeof want[0]));
    if (!same_ids(got, n, want, sizeof want / sizeof want[0]))
        print_ids("tok105 got", got, n);
    char bin[300];
    for (int i = 0; i < 300; i++)
        bin[i] = (char)(i * 37 + 11);
    int32_t *ids = malloc((sizeof bin + 2) * sizeof *ids);
    n = mipr_tokenizer_encode(t, bin, sizeof bin, 1, ids);
    CHECK(n > 1 && n <= sizeof bin + 2);
    free(ids);
    mipr_tokenizer_free(t);
}

/* ---- heap BPE == quadratic reference --------------------------------------------------------- */

static size_t random_text(uint64_t *rng, char *buf, size_t cap, const char *corpus, size_t clen)
{
    size_t len = (size_t)(rng_next(rng) % cap);
    int kind = (int)(rng_next(rng) % 4);
    if (kind == 0) { /* any bytes: invalid UTF-8, NUL */
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(rng_next(rng) >> 56);
    } else if (kind == 1) { /* few letters: long merge chains and many ties */
        static const char alpha[] = "ab e\nth";
        for (size_t i = 0; i < len; i++)
            buf[i] = alpha[rng_next(rng) % (sizeof alpha - 1)];
    } else { /* real text, cut anywhere (also inside a code point) */
        if (len > clen)
            len = clen;
        size_t at = (size_t)(rng_next(rng) % (clen - len + 1));
        memcpy(buf, corpus + at, len);
    }
    return len;
}

static int compare_one(const mipr_tokenizer *t, const ref_vocab *v, const char *text, size_t len,
                       int full_bytes)
{
    int32_t *a = malloc((len + 2) * sizeof *a), *b = malloc((len + 2) * sizeof *b);
    size_t na = mipr_tokenizer_encode(t, text, len, 1, a);
    size_t nb = ref_encode(v, text, len, b);
    int ok = same_ids(a, na, b, nb);
    if (!ok) {
        fprintf(stderr, "  heap != reference for a %zu-byte text\n", len);
        print_ids("heap", a, na);
        print_ids("reference", b, nb);
    }
    if (full_bytes && !round_trips(t, a, na, text, len)) {
        fprintf(stderr, "  decode does not give back a %zu-byte text\n", len);
        ok = 0;
    }
    free(a);
    free(b);
    return ok;
}

static void test_heap_vs_reference(const mipr_tokenizer *t, int n_texts, size_t max_len,
                                   uint64_t seed)
{
    size_t clen;
    char *corpus = mipr_test_read_file(
        mipr_test_data("text/tinystories/tinystories_train_head.txt"), &clen);
    ref_vocab v;
    ref_init(&v, t);
    int full_bytes = 1;
    for (int b = 0; b < 256; b++)
        full_bytes = full_bytes && v.byte_tok[b] >= 0;
    char *buf = malloc(max_len);
    uint64_t rng = seed;
    int bad = 0;
    for (int i = 0; i < n_texts && bad < 3; i++) {
        size_t len = random_text(&rng, buf, max_len, corpus, clen);
        bad += !compare_one(t, &v, buf, len, full_bytes);
    }
    CHECK(bad == 0);
    free(buf);
    free(v.sorted);
    free(v.text_piece);
    free(corpus);
}

/* A made-up vocabulary where most merges tie, so the leftmost rule decides; with a
 * duplicate piece (the lower id must win) and pieces holding NUL. */
typedef struct toy_piece {
    const char *p;
    size_t len;
    float score;
} toy_piece;

static mipr_tokenizer *toy_tokenizer(void)
{
    static const toy_piece pieces[] = {
        {"<unk>", 5, 0}, {"<s>", 3, 0}, {"a", 1, -1}, {"b", 1, -1}, {" ", 1, -1},
        {"ab", 2, -1}, {"ba", 2, -1}, {"aa", 2, NAN}, {"bb", 2, -2e10f}, {"aab", 3, -1},
        {"ab", 2, -1}, {"bab", 3, -1}, {" a", 2, -1}, {"abab", 4, -1}, {"\0", 1, -1},
        {"a\0", 2, 0}, {"a\0b", 3, 0}};
    uint32_t n = sizeof pieces / sizeof pieces[0];
    mipr_error err;
    mipr_tokenizer *t;
    CHECK_OK(mipr_tokenizer_new(&t, n, &err), &err);
    for (uint32_t i = 0; i < n; i++) {
        enum mipr_token_type ty = i == 0 ? MIPR_TOK_UNKNOWN : i == 1 ? MIPR_TOK_CONTROL
                                                                     : MIPR_TOK_NORMAL;
        CHECK_OK(mipr_tokenizer_set(t, i, pieces[i].p, pieces[i].len, pieces[i].score, ty, &err),
                 &err);
    }
    CHECK_OK(mipr_tokenizer_finish(t, 1, -1, 0, 1, &err), &err);
    return t;
}

static void test_ties(void)
{
    mipr_tokenizer *t = toy_tokenizer();
    ref_vocab v;
    ref_init(&v, t);
    int32_t ids[8];
    /* " a" is left of "ab" at the same score */
    CHECK(mipr_tokenizer_encode(t, "ab", 2, 0, ids) == 2 && ids[0] == 12 && ids[1] == 3);
    /* "ab" is ids 5 and 10: the lower one */
    CHECK(mipr_tokenizer_encode(t, "aab", 3, 0, ids) == 2 && ids[0] == 12 && ids[1] == 5);
    CHECK(mipr_tokenizer_encode(t, "a\0b", 3, 0, ids) == 2 && ids[0] == 4 && ids[1] == 16);
    /* NaN and scores at or below run.c's -1e10 never merge */
    CHECK(mipr_tokenizer_encode(t, "bb", 2, 0, ids) == 3);
    CHECK(mipr_tokenizer_encode(t, "aa", 2, 0, ids) == 2 && ids[0] == 12 && ids[1] == 2);
    /* 'c' is unknown and there are no byte tokens: UNK, which never merges */
    CHECK(mipr_tokenizer_encode(t, "acb", 3, 0, ids) == 3 && ids[0] == 12 && ids[1] == 0);
    uint64_t rng = 7;
    char buf[64];
    int bad = 0;
    for (int i = 0; i < 3000 && bad < 3; i++) {
        size_t len = (size_t)(rng_next(&rng) % sizeof buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = "ab \0c"[rng_next(&rng) % 5];
        bad += !compare_one(t, &v, buf, len, 0);
    }
    CHECK(bad == 0);
    free(v.sorted);
    free(v.text_piece);
    mipr_tokenizer_free(t);
}

/* Text with no cut points is one long segment: the heap alone must keep it fast. The
 * result is checked for greedy completeness (no adjacent pair still merges). */
static void test_long_segment(void)
{
    mipr_tokenizer *t = toy_tokenizer();
    ref_vocab v;
    ref_init(&v, t);
    size_t len = 300000;
    char *text = malloc(len);
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    uint64_t rng = 3;
    for (size_t i = 0; i < len; i++)
        text[i] = "ab"[rng_next(&rng) % 2];
    double t0 = now_s();
    size_t n = mipr_tokenizer_encode(t, text, len, 1, ids);
    double dt = now_s() - t0;
    printf("encode of one %zu-byte segment: %zu tokens in %.3f s\n", len, n, dt);
    int stuck = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        int32_t id = ref_pair(&v, ids[i], ids[i + 1]);
        stuck += id >= 0 && mipr_tokenizer_score(t, (uint32_t)id) > -1e10f;
    }
    CHECK(n > 1 && n < len && stuck == 0);
    free(ids);
    free(text);
    free(v.sorted);
    free(v.text_piece);
    mipr_tokenizer_free(t);
}

static void test_construction_errors(void)
{
    mipr_error err;
    mipr_tokenizer *t;
    CHECK(mipr_tokenizer_new(&t, 0, &err) == MIPR_ERR_ARG && t == NULL);
    CHECK_OK(mipr_tokenizer_new(&t, 4, &err), &err);
    static char big[MAX_PIECE + 1];
    CHECK(mipr_tokenizer_set(t, 4, "a", 1, 0, MIPR_TOK_NORMAL, &err) == MIPR_ERR_ARG);
    CHECK(mipr_tokenizer_set(t, 0, big, sizeof big, 0, MIPR_TOK_NORMAL, &err) == MIPR_ERR_ARG);
    CHECK(mipr_tokenizer_set(t, 0, big, MAX_PIECE, 0, MIPR_TOK_NORMAL, &err) == MIPR_OK);
    CHECK(mipr_tokenizer_set(t, 0, "a", 1, 0, (enum mipr_token_type)9, &err) == MIPR_ERR_ARG);
    CHECK(mipr_tokenizer_finish(t, 4, -1, -1, 1, &err) == MIPR_ERR_ARG);
    CHECK_OK(mipr_tokenizer_finish(t, -1, -1, -1, 0, &err), &err);
    CHECK(mipr_tokenizer_set(t, 1, "b", 1, 0, MIPR_TOK_NORMAL, &err) == MIPR_ERR_ARG);
    int32_t ids[8];
    /* nothing known, no byte tokens, no UNK: the text vanishes, safely */
    CHECK(mipr_tokenizer_encode(t, "xyz", 3, 1, ids) == 0);
    mipr_tokenizer_free(t);
    mipr_tokenizer_free(NULL);
}

static void test_throughput(const mipr_tokenizer *t, const char *name)
{
    size_t len;
    char *text = mipr_test_read_file(mipr_test_data("text/tinystories/tinystories_val.txt"), &len);
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    double t0 = now_s();
    size_t n = mipr_tokenizer_encode(t, text, len, 1, ids);
    double dt = now_s() - t0;
    printf("encode %s: %zu bytes -> %zu tokens in %.3f s (%.2f MB/s)\n", name, len, n, dt,
           dt > 0 ? len / dt / 1e6 : 0.0);
    CHECK(n > 1 && n < len);
    CHECK(round_trips(t, ids, n, text, len));
    free(ids);
    free(text);
}

/* ---- hostile files -------------------------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* Loading must fail with status want and a message naming the file (and need, if given). */
static void expect_fail(const void *data, size_t len, uint32_t n_vocab, mipr_status want,
                        const char *need)
{
    const char *path = mipr_test_tmp("hostile-tokenizer.bin");
    write_file(path, data, len);
    mipr_error err = {MIPR_OK, ""};
    mipr_tokenizer *t = (mipr_tokenizer *)&err;
    mipr_status st = mipr_llama2c_load_tokenizer(&t, path, n_vocab, &err);
    CHECK(st == want && t == NULL && strstr(err.msg, path) != NULL);
    if (need && !strstr(err.msg, need)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, need);
        CHECK(0);
    }
    if (st == MIPR_OK)
        mipr_tokenizer_free(t);
    remove(path);
}

static size_t token_offset(const unsigned char *d, uint32_t idx)
{
    size_t off = 4;
    for (uint32_t i = 0; i < idx; i++)
        off += 8 + (size_t)(d[off + 4] | d[off + 5] << 8 | d[off + 6] << 16 | d[off + 7] << 24);
    return off;
}

static void put_i32(unsigned char *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static void test_hostile_files(void)
{
    size_t len;
    unsigned char *d =
        (unsigned char *)mipr_test_read_file(mipr_test_data("stories260K/tok512.bin"), &len);
    for (int k = 0; k < 64; k++)
        expect_fail(d, len * (size_t)k / 64, 512, MIPR_ERR_FORMAT, "truncated");
    for (size_t k = 0; k < 100; k++)
        expect_fail(d, k, 512, MIPR_ERR_FORMAT, "truncated");
    expect_fail(d, len - 1, 512, MIPR_ERR_FORMAT, "token 511");
    expect_fail(d, len, 511, MIPR_ERR_FORMAT, "holds more than 511 tokens");
    expect_fail(d, len, 513, MIPR_ERR_FORMAT, "has only 512 tokens, the model needs 513");
    /* refused before the 32000-token tables are allocated: 6227 bytes cannot hold them */
    expect_fail(d, len, 32000, MIPR_ERR_FORMAT, "cannot hold the 32000 tokens");

    unsigned char *m = malloc(len);
    size_t off = token_offset(d, 300);
    const int32_t bad_lengths[] = {-1, INT32_MIN, INT32_MAX, 8, 100000};
    for (size_t i = 0; i < sizeof bad_lengths / sizeof bad_lengths[0]; i++) {
        memcpy(m, d, len);
        put_i32(m + off + 4, bad_lengths[i]);
        expect_fail(m, len, 512, MIPR_ERR_FORMAT, "token 300");
    }
    memcpy(m, d, len);
    put_i32(m, -3); /* max_token_length */
    expect_fail(m, len, 512, MIPR_ERR_FORMAT, "max_token_length");
    memcpy(m, d, len);
    put_i32(m + off, 0x7fc00000); /* NaN score */
    expect_fail(m, len, 512, MIPR_ERR_FORMAT, "NaN");
    expect_fail(d, len, 0, MIPR_ERR_ARG, NULL);

    mipr_error err;
    mipr_tokenizer *t;
    CHECK(mipr_llama2c_load_tokenizer(&t, mipr_test_tmp("no-such-file.bin"), 512, &err) ==
          MIPR_ERR_IO);
    free(m);
    free(d);
}

int main(void)
{
    mipr_tokenizer *t32k = load_tok("llama2c-tokenizer/tokenizer.bin", 32000);
    mipr_tokenizer *t512 = load_tok("stories260K/tok512.bin", 512);
    test_llama2c_oracles(t32k);
    test_tok512_basics(t512);
    test_decode(t512);
    test_tok105();
    test_ties();
    test_long_segment();
    test_construction_errors();
    test_heap_vs_reference(t512, 300, 800, 1);
    test_heap_vs_reference(t32k, 300, 500, 2);
    test_throughput(t512, "tok512");
    test_throughput(t32k, "llama2 32K");
    test_hostile_files();
    mipr_tokenizer_free(t32k);
    mipr_tokenizer_free(t512);
    return mipr_test_finish("tokenizer");
}
