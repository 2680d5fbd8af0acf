/*
 * Zero-page detection (see zero.h).
 *
 * Data pages usually differ from zero in their first bytes, so the test
 * exits at the first 256-byte block that holds a non-zero word; zero pages
 * are read once at memory bandwidth. The fixed 32-word inner loop is written
 * so that the compiler vectorizes the OR reduction; memcpy keeps unaligned
 * guest buffers free of undefined behaviour and compiles to plain loads.
 */
#include <stdint.h>
#include <string.h>

#include "zero.h"

#define BLOCK_WORDS 32

bool msi_is_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    /* A cheap first look: most data pages fail here. */
    uint64_t head;
    memcpy(&head, b, sizeof head);
    if (head)
        return false;
    for (size_t off = 0; off < len; off += BLOCK_WORDS * 8) {
        uint64_t w[BLOCK_WORDS], acc = 0;
        memcpy(w, b + off, sizeof w);
        for (int i = 0; i < BLOCK_WORDS; i++)
            acc |= w[i];
        if (acc)
            return false;
    }
    return true;
}
