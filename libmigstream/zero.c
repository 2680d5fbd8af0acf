/*
 * Uniform-page detection (see zero.h).
 *
 * Data pages usually differ from a repeated word in their first bytes, so
 * the test exits at the first 256-byte block that differs; uniform pages
 * are read once at memory bandwidth. The fixed 32-word inner loop is written
 * so that the compiler vectorizes the reduction; memcpy keeps unaligned
 * guest buffers free of undefined behaviour and compiles to plain loads.
 */
#include <string.h>

#include "zero.h"

#define BLOCK_WORDS 32

bool msi_page_uniform(const void *p, size_t len, uint64_t *word)
{
    const unsigned char *b = p;
    uint64_t w;
    memcpy(&w, b, sizeof w);
    *word = w;
    for (size_t off = 0; off < len; off += BLOCK_WORDS * 8) {
        uint64_t v[BLOCK_WORDS], acc = 0;
        memcpy(v, b + off, sizeof v);
        for (int i = 0; i < BLOCK_WORDS; i++)
            acc |= v[i] ^ w;
        if (acc)
            return false;
    }
    return true;
}

bool msi_is_zero(const void *p, size_t len)
{
    uint64_t w;
    return msi_page_uniform(p, len, &w) && w == 0;
}
