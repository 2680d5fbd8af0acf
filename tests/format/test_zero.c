/*
 * Uniform-page detection (libmigstream/format/zero.h): the portable and the AVX2
 * routine, each called directly, and the dispatching msi_page_uniform(),
 * checked against a reference that shares no code with them: a page is the
 * repetition of its first 8 bytes exactly when it equals itself shifted by 8
 * bytes. Page sizes 4096, 65536 and 2 MiB, aligned and unaligned buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format/zero.h"

typedef bool (*uniform_fn)(const void *p, size_t len, uint64_t *word);

typedef struct variant {
    const char *name;
    uniform_fn fn;
    bool needs_avx2;
} variant;

static const variant v_portable = {"portable", msi_page_uniform_portable, false};
static const variant v_avx2 = {"avx2", msi_page_uniform_avx2, true};
static const variant v_dispatch = {"dispatch", msi_page_uniform, false};

static const size_t sizes[] = {4096, 65536, 2u << 20};
/* Offsets from a 64-byte boundary: aligned, odd, and across a vector. */
static const size_t offsets[] = {0, 1, 7, 8, 31, 33, 63};

#define MAX_LEN (2u << 20)

static unsigned char *arena; /* MAX_LEN + 64 bytes, 64-byte aligned */

static int setup(void **state)
{
    (void)state;
    arena = aligned_alloc(64, MAX_LEN + 64);
    return arena ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(arena);
    arena = NULL;
    return 0;
}

/* Returns the variant to test, or skips the test when the CPU lacks it. */
static const variant *get(void **state)
{
    const variant *v = *state;
    if (v->needs_avx2 && !msi_cpu_has_avx2()) {
        print_message("%s: this CPU has no AVX2, so the AVX2 routine cannot run here\n",
                      v->name);
        skip();
    }
    return v;
}

static bool reference(const unsigned char *p, size_t len, uint64_t *word)
{
    unsigned char first[8];
    memcpy(first, p, 8);
    memcpy(word, first, 8);
    return memcmp(p, p + 8, len - 8) == 0;
}

/* Runs @v on @p and checks result and word against the reference. */
static void check(const variant *v, const unsigned char *p, size_t len, const char *what,
                  size_t k)
{
    uint64_t got_word = 0x5555555555555555u, want_word;
    bool want = reference(p, len, &want_word);
    bool got = v->fn(p, len, &got_word);
    if (got != want || got_word != want_word) {
        print_error("%s: %s, len %zu, offset %zu, k %zu: got %d word %016llx, expected %d "
                    "word %016llx\n", v->name, what, len, (size_t)((uintptr_t)p % 64), k,
                    got, (unsigned long long)got_word, want, (unsigned long long)want_word);
        fail();
    }
}

static unsigned char *fill_word(size_t off, size_t len, uint64_t w)
{
    unsigned char *p = arena + off;
    for (size_t i = 0; i < len; i += 8)
        memcpy(p + i, &w, 8);
    return p;
}

static const uint64_t fills[] = {
    0,
    0xccccccccccccccccu, /* int3 fill */
    0xffffffffffffffffu,
    0x0123456789abcdefu, /* every byte of the word distinct */
    0xdeadbeefdeadbeefu, /* a 4-byte pattern */
    0x0000000000000001u,
    0x8000000000000000u,
};

static void test_uniform_pages(void **state)
{
    const variant *v = get(state);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
            for (size_t f = 0; f < sizeof fills / sizeof *fills; f++) {
                unsigned char *p = fill_word(offsets[o], sizes[s], fills[f]);
                uint64_t w;
                assert_true(v->fn(p, sizes[s], &w));
                assert_memory_equal(&w, p, 8);
                check(v, p, sizes[s], "uniform page", 0);
            }
}

static void test_minimum_length(void **state)
{
    const variant *v = get(state);
    unsigned char *p = fill_word(3, 256, 0x1122334455667788u);
    check(v, p, 256, "256-byte page", 0);
    for (size_t k = 0; k < 256; k++) {
        p[k] ^= 0x10;
        check(v, p, 256, "256-byte page, one byte changed", k);
        p[k] ^= 0x10;
    }
}

/* Pages that repeat with a period longer than a word are not uniform, even
 * though every 16- or 32-byte vector looks alike. */
static void test_longer_periods(void **state)
{
    const variant *v = get(state);
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++) {
        for (size_t period = 16; period <= 256; period *= 2) {
            unsigned char *p = fill_word(offsets[o], 4096, 0);
            for (size_t i = 8; i < 4096; i += period)
                memset(p + i, 0xa5, 8);
            check(v, p, 4096, "period longer than 8 bytes", period);
            uint64_t w;
            assert_false(v->fn(p, 4096, &w));
        }
    }
}

static void test_last_byte(void **state)
{
    const variant *v = get(state);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
            for (size_t f = 0; f < sizeof fills / sizeof *fills; f++) {
                unsigned char *p = fill_word(offsets[o], sizes[s], fills[f]);
                p[sizes[s] - 1] ^= 0x01;
                uint64_t w;
                assert_false(v->fn(p, sizes[s], &w));
                check(v, p, sizes[s], "last byte differs", sizes[s] - 1);
            }
}

/* Changes byte k of a uniform page, for each k of interest, and restores it. */
static void sweep(const variant *v, size_t off, size_t len, uint64_t fill, size_t k0, size_t k1,
                  size_t step)
{
    unsigned char *p = fill_word(off, len, fill);
    for (size_t k = k0; k < k1; k += step) {
        p[k] ^= 0x80;
        uint64_t w;
        if (v->fn(p, len, &w)) {
            print_error("%s: len %zu offset %zu fill %016llx: byte %zu changed, still uniform\n",
                        v->name, len, off, (unsigned long long)fill, k);
            fail();
        }
        check(v, p, len, "one byte differs", k);
        p[k] ^= 0x80;
    }
}

static void test_every_byte_4k(void **state)
{
    const variant *v = get(state);
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
        for (size_t f = 0; f < sizeof fills / sizeof *fills; f++)
            sweep(v, offsets[o], 4096, fills[f], 0, 4096, 1);
}

/* Every byte of a 64 KiB page, aligned and not; 2 MiB pages: every byte of
 * the first 4 KiB and the last 512 bytes, and every 2053rd byte between
 * (each check of a late byte reads the whole page twice). */
static void test_every_byte_large(void **state)
{
    const variant *v = get(state);
    sweep(v, 0, 65536, 0, 0, 65536, 1);
    sweep(v, 13, 65536, 0xccccccccccccccccu, 0, 65536, 1);
    for (size_t o = 0; o < 2; o++) {
        size_t off = o ? 33 : 0;
        size_t len = MAX_LEN;
        sweep(v, off, len, 0, 0, 4096, 1);
        sweep(v, off, len, 0, 4096, len - 512, 2053);
        sweep(v, off, len, 0x0123456789abcdefu, len - 512, len, 1);
    }
}

/* Pseudo-random pages hold data nearly everywhere: rejected at once. */
static void test_random_pages(void **state)
{
    const variant *v = get(state);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < 4096 + 64; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        arena[i] = (unsigned char)x;
    }
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
        check(v, arena + offsets[o], 4096, "random page", 0);
}

/* msi_is_zero() on top: zero only, never a fill page. */
static void test_is_zero(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        unsigned char *p = fill_word(1, sizes[s], 0);
        assert_true(msi_is_zero(p, sizes[s]));
        p[sizes[s] - 1] = 1;
        assert_false(msi_is_zero(p, sizes[s]));
        p = fill_word(0, sizes[s], 0xccccccccccccccccu);
        assert_false(msi_is_zero(p, sizes[s]));
    }
}

/* Each test once per variant, named after it. */
#define T(v, f) {#v ": " #f, f, setup, teardown, (void *)&v}
#define VARIANT_TESTS(v)                                                                           \
    T(v, test_uniform_pages), T(v, test_minimum_length), T(v, test_longer_periods),                \
        T(v, test_last_byte), T(v, test_every_byte_4k), T(v, test_every_byte_large),               \
        T(v, test_random_pages)

int main(void)
{
    const struct CMUnitTest tests[] = {
        VARIANT_TESTS(v_portable),
        VARIANT_TESTS(v_avx2),
        VARIANT_TESTS(v_dispatch),
        T(v_dispatch, test_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
