/* Tokenizer speed and size on real vocabularies: load time of each tokenizer.json (cJSON
 * parse + tables), the runtime tokenizer's memory, and encode throughput (tokens/s, MB/s)
 * over real text, one thread. Prints a table; --json FILE writes the rows. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mipr.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long n;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = 0;
        *len = (size_t)n;
    } else {
        free(b);
        b = NULL;
    }
    if (f)
        fclose(f);
    return b;
}

typedef struct row {
    const char *vocab, *text;
    uint32_t n_vocab, n_merges;
    double load_s, mib, tokens_per_s, mb_per_s, bytes_per_token;
} row;

static int bench(const char *data, const char *vocab, const char *rel, const char *text_rel,
                 size_t max_bytes, int reps, row *r)
{
    char path[1024];
    mipr_error err = {0};
    mipr_tokenizer *t = NULL;
    snprintf(path, sizeof path, "%s/%s", data, rel);
    double t0 = now();
    if (mipr_tokenizer_json_load(&t, path, &err) != MIPR_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 0;
    }
    r->load_s = now() - t0;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", data, text_rel);
    char *text = read_all(path, &len);
    int32_t *ids = text ? malloc((len + 3) * sizeof *ids) : NULL;
    if (!ids) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", path);
        free(text);
        mipr_tokenizer_free(t);
        return 0;
    }
    len = len < max_bytes ? len : max_bytes;
    size_t n = 0;
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double a = now();
        n = mipr_tokenizer_encode_ex(t, text, len, 0, ids);
        double s = now() - a;
        best = s < best ? s : best;
    }
    r->vocab = vocab;
    r->text = text_rel;
    r->n_vocab = mipr_tokenizer_n_vocab(t);
    r->n_merges = mipr_tokenizer_n_merges(t);
    r->mib = (double)mipr_tokenizer_memory(t) / (1024.0 * 1024.0);
    r->tokens_per_s = (double)n / best;
    r->mb_per_s = (double)len / best / 1e6;
    r->bytes_per_token = (double)len / (double)n;
    free(ids);
    free(text);
    mipr_tokenizer_free(t);
    return 1;
}

int main(int argc, char **argv)
{
    const char *json = NULL, *data = getenv("MIPR_TEST_DATA");
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr, "usage: bench_tokenizer [--data DIR] [--quick] [--json FILE]\n");
            return 2;
        }
    }
    if (!data)
        data = "../shared/data";
    static const struct {
        const char *name, *rel;
    } vocabs[] = {
        {"llama3-128k", "vocab/hf/llama3/tokenizer.json"},
        {"qwen2.5-151k", "vocab/hf/qwen2.5/tokenizer.json"},
        {"smollm2-49k", "vocab/hf/smollm2/tokenizer.json"},
        {"tinystories-2k", "tinystories-656k/tokenizer.json"},
    };
    static const char *texts[] = {"text/wikitext-2/wiki.test.raw",
                                  "text/tinystories/tinystories_val.txt"};
    row rows[8];
    size_t n = 0;
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++)
        for (size_t x = 0; x < 2; x++)
            if (!bench(data, vocabs[v].name, vocabs[v].rel, texts[x], quick ? 256u << 10 : 8u << 20,
                       quick ? 2 : 3, &rows[n++]))
                return 1;
    printf("%-15s %-38s %8s %8s %8s %9s %12s %8s %7s\n", "vocabulary", "text", "tokens",
           "merges", "load s", "memory", "tokens/s", "MB/s", "B/tok");
    for (size_t i = 0; i < n; i++)
        printf("%-15s %-38s %8u %8u %8.3f %7.2f M %12.0f %8.2f %7.2f\n", rows[i].vocab,
               rows[i].text, rows[i].n_vocab, rows[i].n_merges, rows[i].load_s, rows[i].mib,
               rows[i].tokens_per_s, rows[i].mb_per_s, rows[i].bytes_per_token);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f)
            return 1;
        fprintf(f, "{\"bench\": \"tokenizer\", \"threads\": 1, \"rows\": [\n");
        for (size_t i = 0; i < n; i++)
            fprintf(f, "  {\"vocab\": \"%s\", \"text\": \"%s\", \"n_vocab\": %u, \"n_merges\": %u, "
                    "\"load_s\": %.4f, \"memory_mib\": %.3f, \"tokens_per_s\": %.0f, "
                    "\"mb_per_s\": %.3f, \"bytes_per_token\": %.3f}%s\n",
                    rows[i].vocab, rows[i].text, rows[i].n_vocab, rows[i].n_merges,
                    rows[i].load_s, rows[i].mib, rows[i].tokens_per_s, rows[i].mb_per_s,
                    rows[i].bytes_per_token, i + 1 < n ? "," : "");
        fprintf(f, "]}\n");
        if (fclose(f) != 0)
            return 1;
    }
    return 0;
}
