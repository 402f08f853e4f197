/* CRC-32 (zlib's: reflected, polynomial 0xEDB88320), slicing by 8 bytes: model files are
 * checked end to end at load, so this runs at several GB/s rather than byte by byte. */
#include "mipr_runtime.h"

void mipr_crc32_init(mipr_crc32_table *c)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t v = i;
        for (int k = 0; k < 8; k++)
            v = v & 1 ? (v >> 1) ^ 0xEDB88320u : v >> 1;
        c->t[0][i] = v;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            c->t[s][i] = (c->t[s - 1][i] >> 8) ^ c->t[0][c->t[s - 1][i] & 0xFF];
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t mipr_crc32(const mipr_crc32_table *c, uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t a = load_le32(p) ^ crc, b = load_le32(p + 4);
        crc = c->t[7][a & 0xFF] ^ c->t[6][(a >> 8) & 0xFF] ^ c->t[5][(a >> 16) & 0xFF] ^
              c->t[4][a >> 24] ^ c->t[3][b & 0xFF] ^ c->t[2][(b >> 8) & 0xFF] ^
              c->t[1][(b >> 16) & 0xFF] ^ c->t[0][b >> 24];
    }
    while (n--)
        crc = c->t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
