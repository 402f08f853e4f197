/* A minimal app embedding the mipr runtime: load an .mpk into memory as a device would
 * (from flash, a download, an asset), generate greedily, print the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mipr_runtime.h"

static int print_token(void *ctx, int32_t prev, int32_t token)
{
    size_t len;
    const char *s = mipr_tokenizer_decode(ctx, prev, token, &len);
    fwrite(s, 1, len, stdout);
    return 0;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size)) &&
        fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    *n = (size_t)size;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s\n", mipr_version()); /* the loaded library's, not the header's */
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: story MODEL.mpk STEPS\n");
        return 2;
    }
    size_t n;
    char *buf = slurp(argv[1], &n);
    if (!buf) {
        fprintf(stderr, "story: cannot read %s\n", argv[1]);
        return 1;
    }
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    mipr_engine *e = NULL;
    mipr_sampler s = {0};
    mipr_mpk_options opt = {.low_ram = 1};
    int32_t bos = 1;
    mipr_status st = mipr_mpk_open_memory(&m, &tok, buf, n, &opt, &err);
    if (st == MIPR_OK)
        st = mipr_engine_new(&e, m, 0, 0, &err);
    if (st == MIPR_OK)
        st = mipr_sampler_init(&s, m->hp.vocab_size, 0.0f, 0.9f, 1, &err);
    if (st == MIPR_OK) {
        bos = mipr_tokenizer_bos(tok);
        st = mipr_generate(e, &s, tok, &bos, 1, (uint32_t)atoi(argv[2]), print_token, tok, NULL,
                           NULL, &err);
    }
    printf("\n");
    if (st)
        fprintf(stderr, "story: %s\n", err.msg);
    mipr_sampler_free(&s);
    mipr_engine_free(e);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    free(buf);
    return st ? 1 : 0;
}
