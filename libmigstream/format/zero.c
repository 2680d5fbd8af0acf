/*
 * Uniform-page detection (see zero.h).
 *
 * Every byte of guest memory goes through here once, so a uniform page must
 * be read at memory bandwidth and a data page rejected after a few bytes.
 * Both routines test the first 32 bytes, then the rest of the first cache
 * line, then the rest of the page in blocks whose words are XORed with the
 * page's first word and ORed together, one branch per block: a branch per
 * vector would cost more than it saves, since memory is fetched a line at a
 * time and the prefetcher runs ahead anyway.
 *
 * memcpy and unaligned loads keep unaligned guest buffers free of undefined
 * behaviour; both compile to plain loads.
 */
#include <stdatomic.h>
#include <string.h>

#include "format/zero.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_PATH 1
#include <immintrin.h>
#endif

/* --------------------------------------------------------------- portable */

#define BLOCK_WORDS 32 /* 256 bytes: the granularity len is promised in */

/* Nonzero when any of the @n words at @b differs from @w. The fixed-size
 * callers let the compiler unroll and vectorize this. */
static inline uint64_t words_differ(const unsigned char *b, size_t n, uint64_t w)
{
    uint64_t v[BLOCK_WORDS], acc = 0;
    memcpy(v, b, n * 8);
    for (size_t i = 0; i < n; i++)
        acc |= v[i] ^ w;
    return acc;
}

bool msi_page_uniform_portable(const void *p, size_t len, uint64_t *word)
{
    const unsigned char *b = p;
    uint64_t w;
    memcpy(&w, b, sizeof w);
    *word = w;
    if (words_differ(b, 4, w) || words_differ(b + 32, 4, w) ||
        words_differ(b + 64, BLOCK_WORDS - 8, w))
        return false;
    for (size_t off = BLOCK_WORDS * 8; off < len; off += BLOCK_WORDS * 8)
        if (words_differ(b + off, BLOCK_WORDS, w))
            return false;
    return true;
}

/* ------------------------------------------------------------------- AVX2 */

#ifdef HAVE_AVX2_PATH

#define AVX2_TARGET __attribute__((target("avx2")))

AVX2_TARGET static inline __m256i load_xor(const unsigned char *b, __m256i pat)
{
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)b), pat);
}

AVX2_TARGET bool msi_page_uniform_avx2(const void *p, size_t len, uint64_t *word)
{
    const unsigned char *b = p;
    uint64_t w;
    memcpy(&w, b, sizeof w);
    *word = w;
    const __m256i pat = _mm256_set1_epi64x((long long)w);

    __m256i d = load_xor(b, pat);
    if (!_mm256_testz_si256(d, d))
        return false;
    d = load_xor(b + 32, pat);
    if (!_mm256_testz_si256(d, d))
        return false;
    /* The rest of the first 256-byte block: six vectors. */
    d = _mm256_or_si256(_mm256_or_si256(load_xor(b + 64, pat), load_xor(b + 96, pat)),
                        _mm256_or_si256(load_xor(b + 128, pat), load_xor(b + 160, pat)));
    d = _mm256_or_si256(d, _mm256_or_si256(load_xor(b + 192, pat), load_xor(b + 224, pat)));
    if (!_mm256_testz_si256(d, d))
        return false;
    for (size_t off = 256; off < len; off += 256) {
        const unsigned char *q = b + off;
        __m256i a0 = _mm256_or_si256(load_xor(q, pat), load_xor(q + 32, pat));
        __m256i a1 = _mm256_or_si256(load_xor(q + 64, pat), load_xor(q + 96, pat));
        __m256i a2 = _mm256_or_si256(load_xor(q + 128, pat), load_xor(q + 160, pat));
        __m256i a3 = _mm256_or_si256(load_xor(q + 192, pat), load_xor(q + 224, pat));
        d = _mm256_or_si256(_mm256_or_si256(a0, a1), _mm256_or_si256(a2, a3));
        if (!_mm256_testz_si256(d, d))
            return false;
    }
    return true;
}

bool msi_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
}

#else

bool msi_page_uniform_avx2(const void *p, size_t len, uint64_t *word)
{
    return msi_page_uniform_portable(p, len, word);
}

bool msi_cpu_has_avx2(void)
{
    return false;
}

#endif

/* --------------------------------------------------------------- dispatch */

typedef bool (*uniform_fn)(const void *p, size_t len, uint64_t *word);

static bool resolve(const void *p, size_t len, uint64_t *word);

/* Starts at resolve(), which replaces itself on first use. Threads that race
 * there all store the same pointer, so no lock is needed; relaxed order is
 * enough because the pointer publishes no data, only code. */
static _Atomic uniform_fn chosen = resolve;

static bool resolve(const void *p, size_t len, uint64_t *word)
{
    uniform_fn f = msi_cpu_has_avx2() ? msi_page_uniform_avx2 : msi_page_uniform_portable;
    atomic_store_explicit(&chosen, f, memory_order_relaxed);
    return f(p, len, word);
}

bool msi_page_uniform(const void *p, size_t len, uint64_t *word)
{
    return atomic_load_explicit(&chosen, memory_order_relaxed)(p, len, word);
}

bool msi_is_zero(const void *p, size_t len)
{
    /* A fill page would be read to its end only to be refused: look first. */
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w == 0 && msi_page_uniform(p, len, &w);
}
