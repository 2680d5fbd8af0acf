/*
 * The internal CBOR codec (libmigstream/common/cbor_codec.h) against RFC 8949 and
 * the profile of FORMAT.md section 10, including the libcbor 0.8 pitfalls
 * listed in STYLE.md: counts that promise more than the input holds must be
 * refused before anything is allocated. To check "nothing allocated", this
 * file watches every heap allocation of the process: through ASan's hooks in
 * sanitized builds, else by wrapping glibc's malloc family.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cbor_codec.h"
#include "format/payload.h"

#define assert_status(actual, expected)                                                            \
    do {                                                                                           \
        int a_ = (actual), e_ = (expected);                                                        \
        if (a_ != e_) {                                                                            \
            print_error("status %d (%s), expected %d (%s)\n", a_, ms_strerror(a_), e_,             \
                        ms_strerror(e_));                                                          \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------ allocation watch */

static volatile int watching;
static volatile size_t watched_allocs, watched_bytes;

static void note_alloc(size_t n)
{
    if (watching) {
        watched_allocs++;
        watched_bytes += n;
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define WATCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WATCH_ASAN 1
#elif __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define WATCH_NONE 1
#endif
#endif
#if !defined(WATCH_ASAN) && (!defined(__GLIBC__) || defined(__SANITIZE_THREAD__))
#define WATCH_NONE 1
#endif

#if defined(WATCH_ASAN)
/* ASan owns malloc; it offers hooks instead (sanitizer/allocator_interface.h,
 * which Debian's gcc does not install). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static void asan_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    note_alloc(n);
}
static void asan_free_hook(const volatile void *p)
{
    (void)p;
}
static int watch_setup(void)
{
    return __sanitizer_install_malloc_and_free_hooks(asan_malloc_hook, asan_free_hook) != 0;
}
#elif !defined(WATCH_NONE)
/* glibc: the executable's malloc family interposes the C library's for the
 * whole process (libcbor, libzstd included); glibc exports its own under
 * __libc_*. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
void *malloc(size_t n)
{
    note_alloc(n);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m)
{
    note_alloc(n * m);
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n)
{
    note_alloc(n);
    return __libc_realloc(p, n);
}
void free(void *p)
{
    __libc_free(p);
}
static int watch_setup(void)
{
    return 1;
}
#else
static int watch_setup(void)
{
    return 0;
}
#endif

static int have_watch;

static void watch_start(void)
{
    watched_allocs = watched_bytes = 0;
    watching = 1;
}

/* Stops watching; fails the test if anything was allocated meanwhile. */
static void watch_expect_none(const char *what)
{
    watching = 0;
    if (!have_watch)
        return;
    if (watched_allocs)
        fail_msg("%s: %zu allocations (%zu bytes) while decoding", what, (size_t)watched_allocs,
                 (size_t)watched_bytes);
}

/* ----------------------------------------------------------------- helpers */

typedef struct bytes {
    uint8_t b[64];
    size_t n;
} bytes;

static bytes hex(const char *h)
{
    bytes r = {{0}, 0};
    while (*h) {
        if (*h == ' ') {
            h++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(h, "%2x", &v), 1);
        assert_true(r.n < sizeof r.b);
        r.b[r.n++] = (uint8_t)v;
        h += 2;
    }
    return r;
}

/* Decodes one head of @h; checks kind, u and the bytes consumed. */
static void tok(const char *h, msi_cbor_kind kind, uint64_t u, size_t used)
{
    bytes in = hex(h);
    msi_cbor_in c;
    msi_cbor_tok t;
    msi_cbor_in_init(&c, in.b, in.n);
    int rc = msi_cbor_next(&c, &t);
    if (rc)
        fail_msg("%s: %s", h, c.err);
    assert_int_equal(t.kind, kind);
    assert_int_equal(t.u, u);
    assert_int_equal(c.pos, used);
}

/* @h must be refused by msi_cbor_next (or msi_cbor_skip when @skip), with
 * a message containing @frag, without allocating. */
static void refused(const char *h, bool skip, const char *frag)
{
    bytes in = hex(h);
    msi_cbor_in c;
    msi_cbor_tok t;
    msi_cbor_in_init(&c, in.b, in.n);
    watch_start();
    int rc = skip ? msi_cbor_skip(&c, 256, true) : msi_cbor_next(&c, &t);
    watch_expect_none(h);
    if (rc != MS_ECBOR)
        fail_msg("%s: status %d, expected MS_ECBOR", h, rc);
    assert_non_null(c.err);
    if (!strstr(c.err, frag))
        fail_msg("%s: message \"%s\" lacks \"%s\"", h, c.err, frag);
    assert_true(c.err_pos <= in.n);
}

/* ------------------------------------------------------------------- tests */

static void test_tokens(void **state)
{
    (void)state;
    tok("00", MSI_CBOR_UINT, 0, 1);
    tok("17", MSI_CBOR_UINT, 23, 1);
    tok("18 18", MSI_CBOR_UINT, 24, 2);
    tok("18 ff", MSI_CBOR_UINT, 255, 2);
    tok("19 01 00", MSI_CBOR_UINT, 256, 3);
    tok("1a 00 01 00 00", MSI_CBOR_UINT, 65536, 5);
    tok("1b 00 00 00 01 00 00 00 00", MSI_CBOR_UINT, 1ull << 32, 9);
    tok("1b ff ff ff ff ff ff ff ff", MSI_CBOR_UINT, UINT64_MAX, 9);
    tok("18 01", MSI_CBOR_UINT, 1, 2);  /* longer forms are accepted (section 10) */
    tok("20", MSI_CBOR_NINT, 0, 1);     /* -1 */
    tok("38 63", MSI_CBOR_NINT, 99, 2); /* -100 */
    tok("3b ff ff ff ff ff ff ff ff", MSI_CBOR_NINT, UINT64_MAX, 9);
    tok("80", MSI_CBOR_ARRAY, 0, 1);
    tok("83 01 02 03", MSI_CBOR_ARRAY, 3, 1);
    tok("98 03 01 02 03", MSI_CBOR_ARRAY, 3, 2);
    tok("a0", MSI_CBOR_MAP, 0, 1);
    tok("a2 01 02 03 04", MSI_CBOR_MAP, 2, 1);
    tok("f4", MSI_CBOR_SIMPLE, 0, 1);
    tok("f5", MSI_CBOR_SIMPLE, 1, 1);
    tok("f6", MSI_CBOR_SIMPLE, 2, 1);

    /* strings: a view into the input, the head and the bytes consumed */
    bytes in = hex("43 01 02 03 64 74 65 78 74 40 60");
    msi_cbor_in c;
    msi_cbor_tok t;
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_next(&c, &t), 0);
    assert_int_equal(t.kind, MSI_CBOR_BYTES);
    assert_int_equal(t.len, 3);
    assert_ptr_equal(t.str, in.b + 1);
    assert_status(msi_cbor_next(&c, &t), 0);
    assert_int_equal(t.kind, MSI_CBOR_TEXT);
    assert_int_equal(t.len, 4);
    assert_memory_equal(t.str, "text", 4);
    assert_status(msi_cbor_next(&c, &t), 0);
    assert_int_equal(t.kind, MSI_CBOR_BYTES);
    assert_int_equal(t.len, 0);
    assert_status(msi_cbor_next(&c, &t), 0);
    assert_int_equal(t.kind, MSI_CBOR_TEXT);
    assert_int_equal(t.len, 0);
    assert_int_equal(c.pos, in.n);

    /* floats: half, single, double */
    static const struct {
        const char *h;
        double v;
        size_t used;
    } floats[] = {{"f9 3c 00", 1.0, 3},
                  {"f9 c4 00", -4.0, 3},
                  {"fa 3f c0 00 00", 1.5, 5},
                  {"fb 40 09 21 fb 54 44 2d 18", 3.141592653589793, 9}};
    for (size_t i = 0; i < 4; i++) {
        in = hex(floats[i].h);
        msi_cbor_in_init(&c, in.b, in.n);
        assert_status(msi_cbor_next(&c, &t), 0);
        assert_int_equal(t.kind, MSI_CBOR_FLOAT);
        assert_true(t.f == floats[i].v);
        assert_int_equal(c.pos, floats[i].used);
    }
}

static void test_encoder(void **state)
{
    (void)state;
    /* preferred serialization: the shortest head for each value (RFC 8949
     * section 4.2.1; FORMAT.md section 10: writers MUST) */
    /* clang-format off */
    static const struct {
        uint64_t v;
        const char *h;
    } ints[] = {
        {0, "00"}, {23, "17"}, {24, "18 18"}, {255, "18 ff"}, {256, "19 01 00"},
        {65535, "19 ff ff"}, {65536, "1a 00 01 00 00"}, {UINT32_MAX, "1a ff ff ff ff"},
        {1ull << 32, "1b 00 00 00 01 00 00 00 00"}, {UINT64_MAX, "1b ff ff ff ff ff ff ff ff"},
    };
    /* clang-format on */
    ms_allocator a;
    msi_allocator_set(&a, NULL);
    msi_buf b;
    msi_buf_init(&b, &a);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        bytes want = hex(ints[i].h);
        b.len = 0;
        assert_status(msi_cbor_put_uint(&b, ints[i].v), 0);
        assert_int_equal(b.len, want.n);
        assert_memory_equal(b.data, want.b, want.n);
        /* and the same heads for the other major types */
        b.len = 0;
        assert_status(msi_cbor_put_array(&b, (size_t)ints[i].v), 0);
        assert_int_equal(b.data[0], want.b[0] | 0x80);
        assert_int_equal(b.len, want.n);
        b.len = 0;
        assert_status(msi_cbor_put_map(&b, (size_t)ints[i].v), 0);
        assert_int_equal(b.data[0], want.b[0] | 0xa0);
        assert_memory_equal(b.data + 1, want.b + 1, want.n - 1);
    }
    b.len = 0;
    assert_status(msi_cbor_put_text(&b, "héllo", 6), 0);
    bytes want = hex("66 68 c3 a9 6c 6c 6f");
    assert_int_equal(b.len, want.n);
    assert_memory_equal(b.data, want.b, want.n);

    /* encode -> decode round trip of random values */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (x % 64);
        b.len = 0;
        assert_status(msi_cbor_put_uint(&b, v), 0);
        msi_cbor_in c;
        uint64_t got;
        msi_cbor_in_init(&c, b.data, b.len);
        assert_status(msi_cbor_get_uint(&c, &got), 0);
        assert_int_equal(got, v);
        assert_int_equal(c.pos, b.len);
    }
    msi_buf_free(&b);
}

/* A count larger than what remains cannot be honest (section 10). */
static void test_counts_beyond_input(void **state)
{
    (void)state;
    refused("82 01", false, "count");
    refused("81", false, "count");
    refused("98 05 01 02 03 04", false, "count");
    refused("9a 10 00 00 00", false, "count");
    refused("9b ff ff ff ff ff ff ff ff 00", false, "count");
    refused("a1 01", false, "count");       /* one pair needs two bytes */
    refused("a2 01 02 03", false, "count"); /* two pairs, three bytes */
    refused("bb 00 00 00 01 00 00 00 00 00 00", false, "count");
    /* the boundary: exactly enough bytes is fine */
    tok("82 01 02", MSI_CBOR_ARRAY, 2, 1);
    tok("a1 01 02", MSI_CBOR_MAP, 1, 1);
    /* strings longer than the input */
    refused("43 01 02", false, "truncated");
    refused("5a ff ff ff ff 00", false, "truncated");
    refused("5b ff ff ff ff ff ff ff ff 00", false, "truncated");
    refused("7b 7f ff ff ff ff ff ff ff 61", false, "truncated");
    /* heads cut short */
    refused("18", false, "truncated");
    refused("19 01", false, "truncated");
    refused("1b 00 00 00 00", false, "truncated");
    refused("fb 00 00", false, "truncated");
    /* nested promises are refused at the first one */
    refused("82 9a 10 00 00 00 00", true, "count");
}

static void nested(uint8_t *b, size_t depth)
{
    memset(b, 0x81, depth); /* [[[...0...]]] */
    b[depth] = 0x00;
}

static int skip_depth(size_t depth, unsigned max, size_t *err_pos)
{
    static uint8_t b[4000];
    assert_true(depth + 1 <= sizeof b);
    nested(b, depth);
    msi_cbor_in c;
    msi_cbor_in_init(&c, b, depth + 1);
    watch_start();
    int rc = msi_cbor_skip(&c, max, true);
    watch_expect_none("skip");
    if (!rc)
        assert_int_equal(c.pos, depth + 1);
    if (err_pos)
        *err_pos = c.err_pos;
    return rc;
}

static void test_depth_limit(void **state)
{
    (void)state;
    size_t at;
    for (unsigned max = 1; max < 8; max++) {
        assert_status(skip_depth(max, max, NULL), 0);
        assert_status(skip_depth(max + 1, max, &at), MS_ECBOR);
        assert_int_equal(at, max); /* the head of the first container too deep */
    }
    assert_status(skip_depth(0, 1, NULL), 0); /* a scalar has depth 0 */
    assert_status(skip_depth(256, 256, NULL), 0);
    assert_status(skip_depth(257, 256, NULL), MS_ECBOR);
    /* the option cannot raise the ceiling of 256 (MSI_CBOR_MAX_DEPTH) */
    assert_status(skip_depth(257, 100000, NULL), MS_ECBOR);
    /* libcbor fact 8: beyond 2048 is where libcbor itself gives up */
    assert_status(skip_depth(3000, 256, &at), MS_ECBOR);
    assert_int_equal(at, 256);

    /* maps count too: {0: {0: {0: 0}}} is three deep */
    static const uint8_t m3[] = {0xa1, 0x00, 0xa1, 0x00, 0xa1, 0x00, 0x00};
    msi_cbor_in c;
    msi_cbor_in_init(&c, m3, sizeof m3);
    assert_status(msi_cbor_skip(&c, 3, true), 0);
    msi_cbor_in_init(&c, m3, sizeof m3);
    assert_status(msi_cbor_skip(&c, 2, true), MS_ECBOR);
    /* siblings do not add depth: [[0], [0], [[0]]] is three deep */
    static const uint8_t sib[] = {0x83, 0x81, 0x00, 0x81, 0x00, 0x81, 0x81, 0x00};
    msi_cbor_in_init(&c, sib, sizeof sib);
    assert_status(msi_cbor_skip(&c, 3, true), 0);
    assert_int_equal(c.pos, sizeof sib);
    msi_cbor_in_init(&c, sib, sizeof sib);
    assert_status(msi_cbor_skip(&c, 2, true), MS_ECBOR);
}

static void test_skip_profile(void **state)
{
    (void)state;
    /* skip consumes exactly one item, whatever follows */
    bytes in = hex("82 a1 61 6b 43 01 02 03 f6 01 02");
    msi_cbor_in c;
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_skip(&c, 4, false), 0);
    assert_int_equal(c.pos, 9);
    /* floats only where allowed (device state) */
    in = hex("82 01 fa 3f c0 00 00");
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_skip(&c, 4, true), 0);
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_skip(&c, 4, false), MS_ECBOR);
    assert_int_equal(c.err_pos, 2);
    /* out-of-profile items anywhere inside */
    refused("82 01 9f ff", true, "indefinite");
    refused("a1 01 5f 41 00 ff", true, "indefinite");
    refused("a1 01 7f ff", true, "indefinite");
    refused("81 bf ff", true, "indefinite");
    refused("81 c1 00", true, "tag");
    refused("d9 d9 f7 00", true, "tag"); /* the self-describe tag */
    refused("81 f7", true, "undefined");
    refused("ff", true, "");
    refused("1c", true, "");
    refused("f8 20", true, "");
    refused("f0", true, "");
}

static void test_structural_maps(void **state)
{
    (void)state;
    bytes in = hex("a3 00 01 01 02 18 40 03");
    msi_cbor_in c;
    msi_cbor_map m;
    uint64_t key, v;
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_map_open(&c, &m), 0);
    for (uint64_t want = 0; want < 2; want++) {
        assert_int_equal(msi_cbor_map_key(&c, &m, &key), 1);
        assert_int_equal(key, want);
        assert_status(msi_cbor_get_uint(&c, &v), 0);
        assert_int_equal(v, want + 1);
    }
    assert_int_equal(msi_cbor_map_key(&c, &m, &key), 1);
    assert_int_equal(key, 64);
    assert_status(msi_cbor_get_uint(&c, &v), 0);
    assert_int_equal(msi_cbor_map_key(&c, &m, &key), 0); /* done */
    assert_int_equal(c.pos, in.n);

    /* duplicate keys */
    static const char *dups[] = {"a2 00 00 00 00", "a3 05 00 01 00 05 00", "a2 18 3f 00 18 3f 00"};
    for (size_t i = 0; i < 3; i++) {
        in = hex(dups[i]);
        msi_cbor_in_init(&c, in.b, in.n);
        assert_status(msi_cbor_map_open(&c, &m), 0);
        int rc;
        while ((rc = msi_cbor_map_key(&c, &m, &key)) == 1)
            assert_status(msi_cbor_get_uint(&c, &v), 0);
        assert_status(rc, MS_ECBOR);
        /* a repeat right after itself is named a duplicate; any other
         * repeat breaks the ascending order first */
        assert_non_null(strstr(c.err, i == 1 ? "ascending" : "duplicate"));
    }

    /* keys that are not unsigned integers */
    static const char *keys[] = {"a1 61 6b 00", "a1 20 00", "a1 41 00 00",
                                 "a1 80 00",    "a1 f5 00", "a1 f9 3c 00 00"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        in = hex(keys[i]);
        msi_cbor_in_init(&c, in.b, in.n);
        assert_status(msi_cbor_map_open(&c, &m), 0);
        assert_status(msi_cbor_map_key(&c, &m, &key), MS_ECBOR);
        assert_int_equal(c.err_pos, 1);
        assert_non_null(strstr(c.err, "key"));
    }

    /* typed getters */
    in = hex("80");
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_map_open(&c, &m), MS_ECBOR);
    in = hex("61 61");
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_get_uint(&c, &v), MS_ECBOR);
    in = hex("20");
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_get_uint(&c, &v), MS_ECBOR);
    in = hex("01");
    const uint8_t *s;
    size_t n;
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_get_text(&c, &s, &n), MS_ECBOR);
    in = hex("41 61");
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_get_text(&c, &s, &n), MS_ECBOR);
}

/* FORMAT.md sections 5 and 10: a map holding a key twice, or keys out of
 * ascending order, MUST be refused, whatever the keys. */
static void test_duplicate_large_keys(void **state)
{
    (void)state;
    static const char *dups[] = {"a2 18 40 00 18 40 00", "a2 18 64 00 18 64 00",
                                 "a2 1b ff ff ff ff ff ff ff ff 00 1b ff ff ff ff ff ff ff ff 00",
                                 "a2 01 00 00 00", "a3 00 00 18 41 00 18 40 00"};
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        bytes in = hex(dups[i]);
        msi_cbor_in c;
        msi_cbor_map m;
        uint64_t key, v;
        msi_cbor_in_init(&c, in.b, in.n);
        assert_status(msi_cbor_map_open(&c, &m), 0);
        int rc;
        while ((rc = msi_cbor_map_key(&c, &m, &key)) == 1)
            assert_status(msi_cbor_get_uint(&c, &v), 0);
        assert_status(rc, MS_ECBOR);
    }
}

static void test_empty_input(void **state)
{
    (void)state;
    msi_cbor_in c;
    msi_cbor_tok t;
    msi_cbor_map m;
    uint64_t v;
    const uint8_t *s;
    size_t n;
    static const uint8_t one[1] = {0};
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = i ? one : NULL; /* libcbor fact 6: len 0 leaves read unset */
        msi_cbor_in_init(&c, p, 0);
        assert_status(msi_cbor_next(&c, &t), MS_ECBOR);
        assert_non_null(strstr(c.err, "truncated"));
        msi_cbor_in_init(&c, p, 0);
        assert_status(msi_cbor_skip(&c, 8, true), MS_ECBOR);
        msi_cbor_in_init(&c, p, 0);
        assert_status(msi_cbor_map_open(&c, &m), MS_ECBOR);
        msi_cbor_in_init(&c, p, 0);
        assert_status(msi_cbor_get_uint(&c, &v), MS_ECBOR);
        msi_cbor_in_init(&c, p, 0);
        assert_status(msi_cbor_get_text(&c, &s, &n), MS_ECBOR);
    }
    /* at the end of a non-empty input */
    msi_cbor_in_init(&c, one, 1);
    assert_status(msi_cbor_next(&c, &t), 0);
    assert_status(msi_cbor_next(&c, &t), MS_ECBOR);
}

/* STYLE.md "libcbor 0.8.0: facts to design around", each one. */
static void test_libcbor_pitfalls(void **state)
{
    (void)state;
    if (!have_watch) {
        print_message("allocation watch unavailable in this build: checking statuses only\n");
    } else {
        /* the watch itself sees an allocation made through libc */
        watch_start();
        void *volatile p = malloc(4096);
        watching = 0;
        free(p);
        assert_true(watched_allocs >= 1);
    }
    /* 1: 5 bytes that made cbor_load reserve 2 GiB; 20 bytes of nested
     *    arrays that made it reserve 513 MiB */
    refused("9a 10 00 00 00", false, "count");
    refused("9a 10 00 00 00", true, "count");
    refused("9a 00 ff ff ff 9a 00 ff ff ff 9a 00 ff ff ff 9a 00 ff ff ff", true, "count");
    refused("81 81 81 9a 00 ff ff ff", true, "count");
    refused("ba 10 00 00 00", true, "count");
    /* 2 and 3: huge string lengths, never buffered or wrapped */
    refused("5b 7f ff ff ff ff ff ff ff", false, "truncated");
    refused("7b ff ff ff ff ff ff ff f0 00", false, "truncated");
    refused("59 01 00 00 00 00 00 00 00 00 00 00 00", false, "truncated");
    /* 4: tags 6..20 and F8 simple values are refused (out of the profile) */
    refused("c6 00", true, "");
    refused("d4 00", true, "");
    refused("f8 ff", true, "");
    /* 5: every callback libcbor may call is set: each indefinite head and
     *    the break decode without crashing and are refused */
    refused("5f", false, "indefinite");
    refused("7f", false, "indefinite");
    refused("9f", false, "indefinite");
    refused("bf", false, "indefinite");
    refused("ff", false, "indefinite");
    /* 6: trailing bytes: one item is consumed, and the state check requires
     *    that it is all */
    bytes in = hex("01 02");
    msi_cbor_in c;
    msi_cbor_in_init(&c, in.b, in.n);
    assert_status(msi_cbor_skip(&c, 8, true), 0);
    assert_int_equal(c.pos, 1);
    msi_perr e;
    assert_status(msi_device_state_check(in.b, in.n, 8, &e), MS_ECBOR);
    assert_int_equal(e.at, 1);
    assert_status(msi_device_state_check(in.b, 1, 8, &e), 0);
    /* 8: deeper than 2048 is a profile error, not a memory error */
    assert_status(skip_depth(2100, 256, NULL), MS_ECBOR);
}

/* The decoder is a pure function of its input: random bytes never crash it
 * (ASan watches), never read past the end, never allocate. */
static void test_random_inputs(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15u;
    uint8_t *buf = malloc(64);
    assert_non_null(buf);
    for (int i = 0; i < 20000; i++) {
        size_t n = 1 + (size_t)(x % 63);
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[k] = (uint8_t)x;
        }
        /* bias towards containers and heads with long arguments */
        if (i % 3 == 0)
            buf[0] = (uint8_t)(0x80 | (buf[0] & 0x3f));
        msi_cbor_in c;
        msi_cbor_in_init(&c, buf, n);
        watch_start();
        int rc = msi_cbor_skip(&c, 16, i % 2 == 0);
        watch_expect_none("random input");
        assert_true(rc == 0 || rc == MS_ECBOR);
        assert_true(c.pos <= n);
        if (rc == 0)
            assert_true(c.pos >= 1);
    }
    free(buf);
}

int main(void)
{
    have_watch = watch_setup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_counts_beyond_input),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_skip_profile),
        cmocka_unit_test(test_structural_maps),
        cmocka_unit_test(test_duplicate_large_keys),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_libcbor_pitfalls),
        cmocka_unit_test(test_random_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
