/*
 * Internal helpers every part of the library uses: the allocator wrappers,
 * little-endian integers on the wire (FORMAT.md section 1: all fixed-width
 * integers are little-endian), overflow-checked size arithmetic and a
 * growable byte buffer. Nothing here is exported.
 */
#ifndef MSI_UTIL_H
#define MSI_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "migstream/common.h"

/* ---- allocation through the caller's allocator (or libc) ---- */
void msi_allocator_set(ms_allocator *dst, const ms_allocator *src);
void *msi_alloc(const ms_allocator *a, size_t size);
void *msi_calloc(const ms_allocator *a, size_t n, size_t size);
void *msi_realloc(const ms_allocator *a, void *p, size_t size);
void msi_free(const ms_allocator *a, void *p);
char *msi_strdup(const ms_allocator *a, const char *s);

/* ---- integers on the wire: always through these, never pointer casts ---- */
static inline void msi_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void msi_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void msi_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t msi_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t msi_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t msi_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- overflow-checked arithmetic: true when the result overflowed ---- */
static inline bool msi_add_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
    return __builtin_add_overflow(a, b, r);
}
static inline bool msi_mul_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
    return __builtin_mul_overflow(a, b, r);
}
/* Whether @n items of @item bytes (not 0), and @slack bytes more, fit in
 * what is left of @limit after @done: the exporters' check of an extent's
 * output against max_output before they write it. */
static inline bool msi_output_fits(uint64_t done, uint64_t limit, uint64_t n, uint64_t item,
                                   uint64_t slack)
{
    uint64_t room = done < limit ? limit - done : 0;
    return n <= room / item && n * item + slack <= room;
}

/* @n bytes in KiB, MiB or GiB for messages ("16.0 MiB"), as the replay,
 * the exporters and diff say how much an output past its limit would
 * take. */
static inline const char *msi_mib_gib(uint64_t n, double *shown)
{
    int shift = n >= (UINT64_C(1) << 30) ? 30 : n >= (UINT64_C(1) << 20) ? 20 : 10;
    *shown = (double)n / (double)(UINT64_C(1) << shift);
    return shift == 30 ? "GiB" : shift == 20 ? "MiB" : "KiB";
}

/* What @n items of @item bytes and @slack more would bring the output to
 * after @done, saturated at UINT64_MAX. */
static inline uint64_t msi_output_total(uint64_t done, uint64_t n, uint64_t item, uint64_t slack)
{
    uint64_t t;
    if (msi_mul_overflow(n, item, &t) || msi_add_overflow(t, slack, &t) ||
        msi_add_overflow(t, done, &t))
        return UINT64_MAX;
    return t;
}

static inline bool msi_is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* ---- structs the caller passes in (common.h, "Growing structs") ---- */

/* The end of the last field this library knows of a struct: the bytes
 * after it, tail padding included, belong to fields a later version adds. */
#define MSI_STRUCT_END(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/*
 * Takes a caller's struct that starts with `size_t struct_size` by the ABI
 * rule: copies its first min(@given, @known) bytes over @dst (which holds
 * the defaults, so an older caller's shorter struct leaves the fields it
 * lacks at their defaults) and returns NULL; or returns, copying nothing,
 * why the struct cannot be taken: @given (its struct_size) is 0 or too
 * small to hold struct_size itself (the struct was never initialized), or a
 * byte past @known, which only a newer caller can have set, is not zero.
 * @known is MSI_STRUCT_END() of the struct's last field. The message is
 * static and reads well after "options: " or "callbacks: ".
 */
const char *msi_struct_take(void *dst, size_t known, const void *src, size_t given);

/* True when the @n words of a value struct's reserved tail are all zero. */
bool msi_reserved_zero(const uint64_t *reserved, size_t n);

/* ---- messages ---- */

/* Describes what an I/O callback returned (@ret) and the errno seen right
 * after it (@err) for a message: "returned -32 (Broken pipe)", "returned
 * -1, errno 104 (Connection reset by peer)", "returned -42". Names a
 * strerror() only where the callback convention (common.h, "Callbacks")
 * says there is one: -errno, or -1 with errno set. */
void msi_io_cause(char *buf, size_t size, long long ret, int err);

/* ---- growable byte buffer ---- */
typedef struct msi_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    const ms_allocator *alloc;
} msi_buf;

void msi_buf_init(msi_buf *b, const ms_allocator *a);
void msi_buf_free(msi_buf *b);
/* Makes room for @extra more bytes; MS_ENOMEM or MS_ELIMIT on failure. */
int msi_buf_reserve(msi_buf *b, size_t extra);
int msi_buf_append(msi_buf *b, const void *p, size_t n);
/* Appends @n bytes and returns where they start (for filling in), or NULL. */
uint8_t *msi_buf_grow(msi_buf *b, size_t n);

/* Copies the first bytes of a NUL-terminated string's prefix of length n
 * into dst, NUL-terminating it; used for fixed-width preamble fields. */
size_t msi_strnlen(const char *s, size_t max);

/* True when s[0..len) is valid UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF); NUL bytes only when @allow_nul. */
bool msi_utf8_ok(const uint8_t *s, size_t len, bool allow_nul);

/* vsnprintf into @buf, then every control character of the result
 * escaped (ms_escape_text): how every message of the library is made, so
 * that the stream's strings it quotes reach no terminal raw. */
void msi_vformat(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif /* MSI_UTIL_H */
