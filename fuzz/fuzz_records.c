/*
 * Fuzz target: record payloads behind valid framing. The input is a list of
 * records, each "type (1 byte, taken mod 8), flags (1 byte, bit 0 kept),
 * length (2 bytes LE), payload"; the harness puts a valid preamble in front
 * and frames each record with the correct chained checksum (FORMAT.md 4.2),
 * so every input reaches the payload decoders (INFO, REGIONS, PAGES,
 * DEVICE, END) instead of stopping at a checksum.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Every record adds 12 bytes of framing to at least 4 input bytes. */
    size_t cap = 112 + size * 4 + 16;
    uint8_t *s = malloc(cap);
    if (!s)
        return 0;
    memset(s, 0, 112);
    static const uint8_t magic[8] = {0x89, 'M', 'I', 'G', 'S', '\r', '\n', 0x1a};
    memcpy(s, magic, 8);
    put16(s + 8, 1);
    put32(s + 12, 112);
    put32(s + 32, 4096);
    memcpy(s + 40, "fuzz", 4);
    uint64_t chain = XXH3_64bits_withSeed(s, 104, 0);
    put64(s + 104, chain);
    size_t n = 112, i = 0;
    while (i + 4 <= size) {
        uint16_t type = data[i] % 8;
        uint16_t flags = data[i + 1] & 1;
        size_t len = (size_t)(data[i + 2] | data[i + 3] << 8);
        i += 4;
        if (len > size - i)
            len = size - i;
        uint8_t *h = s + n;
        put16(h, type);
        put16(h + 2, flags);
        put32(h + 4, (uint32_t)len);
        memcpy(h + 16, data + i, len);
        XXH3_state_t *st = XXH3_createState();
        XXH3_64bits_reset_withSeed(st, chain);
        XXH3_64bits_update(st, h, 8);
        XXH3_64bits_update(st, h + 16, len);
        chain = XXH3_64bits_digest(st);
        XXH3_freeState(st);
        put64(h + 8, chain);
        n += 16 + len;
        i += len;
    }
    fz_read_stream(s, n);
    free(s);
    return 0;
}
