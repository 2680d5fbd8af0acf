/*
 * A libFuzzer custom mutator shared by every target (linked into the
 * libFuzzer executables only): structure-aware steps toward the inputs of
 * docs/SECURITY.md's cost classes, which byte flips reach rarely. Half the
 * time libFuzzer's own mutation; otherwise one of:
 *   - a 32- or 64-bit little-endian field at a 4-byte boundary set to an
 *     extreme (extent counts and first pages, FILL words, lengths: 2^31,
 *     2^32 - 1, 2^40, 2^63 ...);
 *   - the same big-endian, at any offset (QEMU's lengths, offsets and
 *     RAM addresses);
 *   - a decimal number in JSON text (QEMU's trailer: "size",
 *     "array_len") made large;
 *   - a slice of the input repeated (many extents, records, sections or
 *     trailer objects of one kind).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static const uint64_t extremes[] = {
    0, 1, 0x7f, 0xff, 0xffff, 1u << 16, 1u << 20, 1u << 24, 0x7fffffff, 0x80000000, 0xffffffff,
    UINT64_C(1) << 32, UINT64_C(1) << 40, UINT64_C(1) << 44, UINT64_C(1) << 52,
    UINT64_C(0x7fffffffffffffff), UINT64_MAX,
};

static void put(uint8_t *p, uint64_t v, unsigned bytes, int big)
{
    for (unsigned i = 0; i < bytes; i++)
        p[big ? bytes - 1 - i : i] = (uint8_t)(v >> (8 * i));
}

/* A decimal number in JSON (after a colon) made large: 1 to 9 digits more. */
static size_t grow_number(uint8_t *data, size_t size, size_t max_size, uint32_t *s)
{
    if (size < 2)
        return 0;
    size_t start = next(s) % size;
    for (size_t i = start; i + 1 < size; i++) {
        if (data[i] != ':' || data[i + 1] < '0' || data[i + 1] > '9')
            continue;
        size_t at = i + 1, more = 1 + next(s) % 9;
        if (size + more > max_size)
            return 0;
        memmove(data + at + more, data + at, size - at);
        for (size_t k = 0; k < more; k++)
            data[at + k] = (uint8_t)('1' + next(s) % 9);
        return size + more;
    }
    return 0;
}

/* A slice of the input appended again and again, up to max_size. */
static size_t repeat_slice(uint8_t *data, size_t size, size_t max_size, uint32_t *s)
{
    if (size < 2 || size >= max_size)
        return 0;
    size_t a = next(s) % size, len = 1 + next(s) % (size - a < 256 ? size - a : 256);
    size_t times = 1 + next(s) % 64, at = a + len;
    while (times-- && size + len <= max_size) {
        memmove(data + at + len, data + at, size - at);
        memcpy(data + at, data + a, len);
        size += len;
    }
    return size;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint32_t s = seed | 1;
    unsigned pick = next(&s) % 8;
    size_t got = 0;
    if (pick >= 4 || size < 8)
        return LLVMFuzzerMutate(data, size, max_size);
    if (pick == 0 || pick == 1) {
        unsigned bytes = next(&s) % 2 ? 8 : 4;
        int big = pick == 1;
        size_t room = size - bytes + 1;
        size_t at = big ? next(&s) % room : next(&s) % room / 4 * 4;
        put(data + at, extremes[next(&s) % (sizeof extremes / sizeof extremes[0])], bytes, big);
        return size;
    }
    got = pick == 2 ? grow_number(data, size, max_size, &s) : repeat_slice(data, size, max_size, &s);
    return got ? got : LLVMFuzzerMutate(data, size, max_size);
}
