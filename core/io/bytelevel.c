/* GPT-2's byte <-> unicode map. Bytes that are printable Latin-1 (33..126, 161..172,
 * 174..255) stand for themselves; the 68 others take U+0100 onwards in byte order. */
#include <stdint.h>

#include "bytelevel.h"

static int printable(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b != 173); }

/* The code point byte b is spelled as. */
static unsigned byte_cp(unsigned b)
{
    if (printable(b))
        return b;
    unsigned k = 0;
    for (unsigned x = 0; x < b; x++)
        k += !printable(x);
    return 256 + k;
}

/* The byte spelled as code point c, or -1. */
static int cp_byte(unsigned c)
{
    if (c < 256)
        return printable(c) ? (int)c : -1;
    if (c >= 256 + 68)
        return -1;
    unsigned k = c - 256;
    for (unsigned b = 0; b < 256; b++)
        if (!printable(b) && k-- == 0)
            return (int)b;
    return -1;
}

size_t mipr_bytelevel_decode(char *dst, const char *src, size_t len)
{
    const uint8_t *s = (const uint8_t *)src;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        int b = -1;
        size_t k = 1;
        if (s[i] < 0x80) {
            b = cp_byte(s[i]);
        } else if ((s[i] >> 5) == 6 && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            k = 2;
            b = cp_byte((s[i] & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu));
        }
        if (b >= 0) {
            dst[n++] = (char)b;
        } else {
            for (size_t j = 0; j < k; j++)
                dst[n++] = (char)s[i + j];
        }
        i += k;
    }
    return n;
}

size_t mipr_bytelevel_encode(char *dst, const char *src, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = byte_cp((uint8_t)src[i]);
        if (c < 0x80) {
            dst[n++] = (char)c;
        } else {
            dst[n++] = (char)(0xC0 | c >> 6);
            dst[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    return n;
}
