/* mipr tokenize: a text's token ids, printed as llama.cpp's llama-tokenize prints them. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mipr tokenize MODEL [-p TEXT | -f FILE] [--ids] [-z TOKENIZER] [--no-bos]\n"
    "                     [--no-parse-special] [--no-escape]\n\n"
    "Tokenizes TEXT with the tokenizer of MODEL: a GGUF (a vocab-only one too), an .mpk, a\n"
    "Hugging Face folder (DIR/tokenizer.json), a tokenizer.json, or a llama2.c checkpoint with\n"
    "-z. Output matches llama.cpp's llama-tokenize: one \"ID -> 'piece'\" line per token, or\n"
    "with --ids the ids on one line as [1, 2, 3]. BOS is added when the model asks for it.\n\n"
    "  -p, --prompt TEXT       the text\n"
    "  -f, --file FILE         read the text from FILE\n"
    "      --ids               print only the ids\n"
    "  -z, --tokenizer FILE    llama2.c tokenizer.bin (see mipr generate --help)\n"
    "      --no-bos            never add BOS\n"
    "      --no-parse-special  control tokens written in the text stay text\n"
    "      --no-escape         keep \\n, \\t, ... as written (they are unescaped by default,\n"
    "                          as llama-tokenize does)\n";

static const cli_opt opts[] = {{"prompt", 'p', 1},      {"file", 'f', 1},
                               {"ids", 0, 0},           {"tokenizer", 'z', 1},
                               {"no-bos", 0, 0},        {"no-parse-special", 0, 0},
                               {"no-escape", 0, 0},     {NULL, 0, 0}};

typedef struct tok_args {
    const char *prompt, *file, *tokp;
    int ids, no_bos, no_special, no_escape;
} tok_args;

static int on_opt(cli_parser *p, int opt, const char *v, void *ctx)
{
    tok_args *a = ctx;
    (void)p;
    switch (opt) {
    case 0: a->prompt = v; break;
    case 1: a->file = v; break;
    case 2: a->ids = 1; break;
    case 3: a->tokp = v; break;
    case 4: a->no_bos = 1; break;
    case 5: a->no_special = 1; break;
    default: a->no_escape = 1; break;
    }
    return 1;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* The tokenizer of whatever MODEL is (no weights are read for GGUF or JSON). */
static mipr_status open_tokenizer(mipr_tokenizer **tok, const char *path, const char *tokp,
                                  mipr_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(path);
        char *json = malloc(n + sizeof "/tokenizer.json");
        if (!json)
            return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
        snprintf(json, n + sizeof "/tokenizer.json", "%s/tokenizer.json", path);
        mipr_status s = mipr_tokenizer_json_load(tok, json, err);
        free(json);
        return s;
    }
    if (ends_with(path, ".json"))
        return mipr_tokenizer_json_load(tok, path, err);
    if (mipr_detect_file(path, err) == MIPR_FILE_GGUF) {
        mipr_gguf *g;
        mipr_status s = mipr_gguf_open(&g, path, err);
        if (s == MIPR_OK) {
            s = mipr_gguf_load_tokenizer(tok, g, err);
            mipr_gguf_close(g);
        }
        return s;
    }
    mipr_model *m = NULL;
    mipr_status s = mipr_load(&m, tok, path, tokp, err);
    mipr_model_free(m);
    return s;
}

/* llama.cpp's escapes: \n \r \t \' \" \\ and \xHH. */
static size_t unescape(char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 >= len) {
            s[w++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'n') {
            s[w++] = '\n';
        } else if (c == 'r') {
            s[w++] = '\r';
        } else if (c == 't') {
            s[w++] = '\t';
        } else if (c == '\'' || c == '"' || c == '\\') {
            s[w++] = c;
        } else if (c == 'x' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
                   isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            s[w++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            s[w++] = '\\';
            s[w++] = c;
        }
    }
    return w;
}

static void print_tokens(const mipr_tokenizer *tok, const int32_t *ids, size_t n, int only_ids)
{
    if (only_ids)
        printf("[");
    for (size_t i = 0; i < n; i++) {
        if (only_ids) {
            printf("%s%d", i ? ", " : "", ids[i]);
            continue;
        }
        size_t len;
        const char *p = mipr_tokenizer_type(tok, (uint32_t)ids[i]) == MIPR_TOK_CONTROL
                            ? mipr_tokenizer_piece(tok, (uint32_t)ids[i], &len)
                            : mipr_tokenizer_decode(tok, -1, ids[i], &len);
        printf("%6d -> '", ids[i]);
        fwrite(p, 1, len, stdout);
        printf("'\n");
    }
    if (only_ids)
        printf("]\n");
}

int cmd_tokenize(int argc, char **argv)
{
    cli_parser p = {argc, 1, argv, "mipr tokenize", usage_text, opts};
    tok_args a = {0};
    const char *model = NULL;
    int rc = cli_parse(&p, &model, on_opt, &a);
    if (rc >= 0)
        return rc;
    if (!model)
        return cli_usage_error(&p, "missing MODEL");
    if (!a.prompt == !a.file)
        return cli_usage_error(&p, "give exactly one of -p TEXT and -f FILE");
    mipr_error err = {0};
    size_t len = a.prompt ? strlen(a.prompt) : 0;
    char *text = a.file ? cli_read_text(a.file, &len, &err) : malloc(len + 1);
    if (!text)
        return a.file ? cli_fail(&err) : EXIT_FAIL;
    if (a.prompt)
        memcpy(text, a.prompt, len + 1);
    if (!a.no_escape)
        len = unescape(text, len);
    mipr_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    rc = EXIT_FAIL;
    if (open_tokenizer(&tok, model, a.tokp, &err) != MIPR_OK || !tok) {
        if (!tok && err.msg[0] == 0)
            mipr_error_set(&err, MIPR_ERR_FORMAT, "%s: no tokenizer", model);
        cli_fail(&err);
    } else if (!(ids = malloc((len + 3) * sizeof *ids))) {
        mipr_error_set(&err, MIPR_ERR_NOMEM, "out of memory for %zu bytes of text", len);
        cli_fail(&err);
    } else {
        unsigned flags = (mipr_tokenizer_add_bos(tok) && !a.no_bos ? MIPR_ENC_BOS : 0) |
                         (a.no_special ? 0 : MIPR_ENC_SPECIAL);
        size_t n = mipr_tokenizer_encode_ex(tok, text, len, flags, ids);
        if (n == SIZE_MAX) {
            mipr_error_set(&err, MIPR_ERR_NOMEM, "out of memory while tokenizing");
            cli_fail(&err);
        } else {
            print_tokens(tok, ids, n, a.ids);
            rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
        }
    }
    free(ids);
    mipr_tokenizer_free(tok);
    free(text);
    return rc;
}
