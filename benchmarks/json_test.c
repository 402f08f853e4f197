/* ctest bench.json: the report's JSON reader accepts valid documents, reads values back,
 * and rejects every truncation and a few classic mistakes without crashing. */
#include <stdio.h>
#include <string.h>

#include "json.h"

static int failures;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "FAIL: %s\n", what);
        failures++;
    }
}

int main(void)
{
    static const char doc[] =
        "{\"a\": [1, -2.5e3, true, false, null], \"b\": {\"c\": \"x\\u00e9\\n\\\"\"},\n"
        " \"d\": [], \"e\": {}, \"f\": 0.125}";
    char msg[128];
    bench_json *j = bench_json_parse(doc, sizeof doc - 1, msg, sizeof msg);
    check(j != NULL, "valid document parses");
    check(bench_json_num(j, "a.1", 0) == -2500.0, "a.1 is -2500");
    check(bench_json_num(j, "a.2", 0) == 1.0, "a.2 is true");
    check(bench_json_get(j, "a.4") && bench_json_get(j, "a.4")->type == BJ_NULL, "a.4 null");
    check(!strcmp(bench_json_str(j, "b.c", ""), "x\xc3\xa9\n\""), "escapes decoded");
    check(bench_json_get(j, "d")->n == 0 && bench_json_get(j, "e")->n == 0, "empty containers");
    check(bench_json_num(j, "f", 0) == 0.125 && !bench_json_get(j, "g"), "lookups");
    bench_json_free(j);
    for (size_t n = 0; n + 1 < sizeof doc - 1; n++) {
        bench_json *t = bench_json_parse(doc, n, msg, sizeof msg);
        check(t == NULL, "a truncated document is rejected");
        bench_json_free(t);
    }
    static const char *const bad[] = {"[1,]", "{\"a\":1,}", "[01]", "[1.]", "{a:1}", "\"\t\"",
                                      "[1] 2", "nul", "[\"\\x\"]", "{\"a\" 1}", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bench_json *t = bench_json_parse(bad[i], strlen(bad[i]), msg, sizeof msg);
        check(t == NULL, bad[i]);
        bench_json_free(t);
    }
    if (!failures)
        printf("bench.json: all checks passed\n");
    return failures != 0;
}
