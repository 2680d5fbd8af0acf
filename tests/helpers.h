/*
 * Shared helpers of the cmocka tests: a memory sink for the writer, a
 * deterministic PRNG and page generator, a counting/failing allocator, a
 * small CBOR encoder, and an editable stream that rebuilds the checksum
 * chain, so a test can plant exactly one semantic fault in an otherwise valid
 * stream. Everything here follows docs/FORMAT.md, not the library's code:
 * the helpers are an independent second implementation of the framing.
 */
#ifndef MS_TEST_HELPERS_H
#define MS_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <cmocka.h>

#include <migstream/migstream.h>

/* ---- assertions with readable failures ---- */

/* Compares two ms_status values, naming both on failure. */
#define assert_status(actual, expected)                                                            \
    do {                                                                                           \
        int th_a_ = (actual), th_e_ = (expected);                                                  \
        if (th_a_ != th_e_) {                                                                      \
            print_error("status %d (%s), expected %d (%s)\n", th_a_, ms_strerror(th_a_), th_e_,    \
                        ms_strerror(th_e_));                                                       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* Fails unless @hay contains @needle. */
#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        const char *th_h_ = (hay), *th_n_ = (needle);                                              \
        if (!th_h_ || !strstr(th_h_, th_n_)) {                                                     \
            print_error("\"%s\" does not contain \"%s\"\n", th_h_ ? th_h_ : "(null)", th_n_);      \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- running ---- */

/* Runs a cmocka group; MS_TEST_FILTER=pattern runs only matching tests. */
#define th_run_tests(tests) (th_apply_filter(), cmocka_run_group_tests(tests, NULL, NULL))
void th_apply_filter(void);

/* ---- little-endian fields (FORMAT.md section 1) ---- */
uint16_t th_get16(const uint8_t *p);
uint32_t th_get32(const uint8_t *p);
uint64_t th_get64(const uint8_t *p);
void th_put16(uint8_t *p, uint16_t v);
void th_put32(uint8_t *p, uint32_t v);
void th_put64(uint8_t *p, uint64_t v);

/* ---- growable byte buffer, also the writer's memory sink ---- */
typedef struct th_buf {
    uint8_t *data;
    size_t len, cap;
} th_buf;

void th_buf_append(th_buf *b, const void *p, size_t n);
void th_buf_u8(th_buf *b, uint8_t v);
void th_buf_free(th_buf *b);
/* ms_write_fn appending every iovec to the th_buf in @ctx. */
int th_sink_write(void *ctx, const struct iovec *iov, int iovcnt);

/* ---- deterministic PRNG (splitmix64) and page contents ---- */
uint64_t th_rand(uint64_t *state);
/* Uniform in [0, n). */
uint64_t th_rand_below(uint64_t *state, uint64_t n);
void th_rand_fill(uint64_t *state, void *p, size_t n);

typedef enum th_page_kind {
    TH_PAGE_ZERO,       /* all zero */
    TH_PAGE_RANDOM,     /* random bytes: incompressible */
    TH_PAGE_TEXT,       /* repetitive text: compresses well */
    TH_PAGE_BYTE_FIRST, /* zero but one non-zero byte at offset 0 */
    TH_PAGE_BYTE_MID,   /* ... at offset size / 2 */
    TH_PAGE_BYTE_LAST,  /* ... at offset size - 1 */
    TH_PAGE_KINDS
} th_page_kind;

void th_make_page(uint8_t *p, size_t page_size, th_page_kind kind, uint64_t *rng);
bool th_all_zero(const void *p, size_t n);

/* ---- reading ---- */

/* Reads records until END or a failure. Counts records (END excluded) in
 * *records when non-NULL. Returns 0 at END or the failing status. */
int th_read_all(ms_reader *r, size_t *records);

/* ---- a small stream most refusal tests start from ---- */

/* Writes: region 1 "ram" (gpa 0, 16 pages of 4096), pages 0..15 with a mix of
 * DATA and ZERO, region 2 "vram" (no gpa, 4 pages of 8192) all DATA, one
 * DEVICE record, END. Deterministic. @o may be NULL. */
void th_write_small_stream(th_buf *out, const ms_writer_options *o);

/* ---- counting allocator, optionally failing the Nth allocation ---- */
typedef struct th_alloc {
    size_t calls;      /* alloc + realloc calls so far */
    size_t fail_at;    /* the call (0-based) to fail; SIZE_MAX: never */
    bool failed;       /* the failure was injected */
    size_t live;       /* blocks not yet freed */
    size_t bytes;      /* bytes currently allocated */
    size_t peak_bytes; /* largest value of bytes */
    size_t peak_block; /* largest single block requested */
} th_alloc;

void th_alloc_init(th_alloc *a, size_t fail_at);
ms_allocator th_allocator(th_alloc *a);

/* ---- CBOR encoding (RFC 8949, preferred serialization) ---- */
void th_cbor_head(th_buf *b, unsigned major, uint64_t v);
void th_cbor_uint(th_buf *b, uint64_t v);
void th_cbor_text(th_buf *b, const char *s);
/* Any integer: major type 0 for v >= 0, major type 1 below. */
void th_cbor_int(th_buf *b, int64_t v);
void th_cbor_bool(th_buf *b, bool v);
void th_cbor_bytes(th_buf *b, const void *p, size_t n);
/* The element count of the array that starts @p (n bytes); false when @p
 * does not start with a definite-length array head. */
bool th_cbor_array_count(const uint8_t *p, size_t n, uint64_t *count);
/* An END payload (FORMAT.md section 8) for @t, writer's canonical form:
 * keys 4 (rounds) and 5 (overlays) only when non-zero. */
void th_cbor_end(th_buf *b, const ms_totals *t);
/* A ROUND payload (FORMAT.md section 6.4), writer's canonical form. */
void th_cbor_round(th_buf *b, const ms_round *r);
/* One overlay map (FORMAT.md section 7.2), writer's canonical form; an
 * OVERLAY payload is th_cbor_head(b, 4, n) followed by n of these. */
void th_cbor_overlay(th_buf *b, const ms_overlay *o);
/* One region map (FORMAT.md section 5.2). */
void th_cbor_region(th_buf *b, uint32_t id, const char *name, bool has_gpa, uint64_t gpa,
                    uint64_t size, uint32_t page_size);

/* ---- PAGES payloads (FORMAT.md section 6) ---- */
void th_pages_head(th_buf *b, uint32_t region_id, uint32_t extents, uint8_t encoding);
void th_pages_extent(th_buf *b, uint64_t first, uint32_t count, uint8_t state);
/* An extent with a state-specific argument (FILL word, IN_PLACE address). */
void th_pages_extent_arg(th_buf *b, uint64_t first, uint32_t count, uint8_t state, uint64_t arg);

/* ---- an editable stream ---- */
typedef struct th_rec {
    uint16_t type, flags;
    th_buf payload;
} th_rec;

typedef struct th_stream {
    th_buf pre; /* the preamble, checksum included */
    th_rec *rec;
    size_t n, cap;
    th_buf trailer; /* bytes after the last record */
} th_stream;

/* Splits @s into preamble and records; fails the test if the framing is
 * broken. Checksums are not checked (th_check_chain does). */
void th_stream_parse(th_stream *ts, const uint8_t *s, size_t n);
void th_stream_free(th_stream *ts);
/* Index of the @nth record of @type; fails the test if there is none. */
size_t th_stream_find(const th_stream *ts, uint16_t type, size_t nth);
void th_stream_insert(th_stream *ts, size_t at, uint16_t type, uint16_t flags, const void *p,
                      size_t n);
void th_stream_remove(th_stream *ts, size_t at);
void th_stream_set(th_stream *ts, size_t at, const void *p, size_t n);
/* Byte offset of record @at in the built stream (at == n: the end). */
uint64_t th_stream_offset(const th_stream *ts, size_t at);
/* Recomputes the preamble checksum over bytes [0, header_size - 8). */
void th_stream_fix_preamble(th_stream *ts);
/* Rewrites the last record (which must be END) with the totals the records
 * before it imply, from FORMAT.md section 8 alone. */
void th_stream_fix_end(th_stream *ts);
/* Totals implied by the records before record @upto (section 8 rules):
 * records, bytes, pages per state, DEVICE records, ROUND records and the
 * overlays of OVERLAY records. */
void th_stream_totals(const th_stream *ts, size_t upto, ms_totals *t);
/* Serializes with a freshly computed checksum chain (section 4.2). */
void th_stream_build(const th_stream *ts, th_buf *out);

/* Checks that every stored checksum in @s follows section 4.2; returns the
 * number of records, or fails the test. */
size_t th_check_chain(const uint8_t *s, size_t n);

#endif /* MS_TEST_HELPERS_H */
