/* GPT-2's byte <-> unicode map: byte-level BPE vocabularies (GGUF "gpt2", tokenizer.json
 * ByteLevel) spell each byte as one printable code point; mipr's tokenizer holds raw bytes. */
#ifndef MIPR_BYTELEVEL_H
#define MIPR_BYTELEVEL_H

#include <stddef.h>

/* Decodes a byte-level spelled piece into raw bytes (dst: room for len bytes; a decoded
 * piece is never longer). Characters outside the map are kept as their UTF-8 bytes, which
 * is what the added tokens of such vocabularies are. Returns the length. */
size_t mipr_bytelevel_decode(char *dst, const char *src, size_t len);
/* The other way (dst: room for 2 * len bytes). */
size_t mipr_bytelevel_encode(char *dst, const char *src, size_t len);

#endif
