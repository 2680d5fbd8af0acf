/*
 * Allocation wrappers, the growable buffer and the struct ABI rule (see
 * util.h).
 */
#include <stdlib.h>

#include "common/util.h"

static void *libc_alloc(void *opaque, size_t size)
{
    (void)opaque;
    return malloc(size);
}
static void *libc_realloc(void *opaque, void *p, size_t size)
{
    (void)opaque;
    return realloc(p, size);
}
static void libc_free(void *opaque, void *p)
{
    (void)opaque;
    free(p);
}

void msi_allocator_set(ms_allocator *dst, const ms_allocator *src)
{
    if (src && src->alloc && src->realloc && src->free) {
        *dst = *src;
    } else {
        dst->alloc = libc_alloc;
        dst->realloc = libc_realloc;
        dst->free = libc_free;
        dst->opaque = NULL;
    }
}

void *msi_alloc(const ms_allocator *a, size_t size)
{
    return a->alloc(a->opaque, size ? size : 1);
}

void *msi_calloc(const ms_allocator *a, size_t n, size_t size)
{
    uint64_t total;
    if (msi_mul_overflow(n, size, &total) || total > SIZE_MAX)
        return NULL;
    void *p = msi_alloc(a, (size_t)total);
    if (p)
        memset(p, 0, (size_t)total);
    return p;
}

void *msi_realloc(const ms_allocator *a, void *p, size_t size)
{
    return a->realloc(a->opaque, p, size ? size : 1);
}

void msi_free(const ms_allocator *a, void *p)
{
    if (p)
        a->free(a->opaque, p);
}

char *msi_strdup(const ms_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = msi_alloc(a, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

size_t msi_strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

void msi_buf_init(msi_buf *b, const ms_allocator *a)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->alloc = a;
}

void msi_buf_free(msi_buf *b)
{
    msi_free(b->alloc, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int msi_buf_reserve(msi_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return MS_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return MS_ELIMIT;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    uint8_t *p = msi_realloc(b->alloc, b->data, cap);
    if (!p)
        return MS_ENOMEM;
    b->data = p;
    b->cap = cap;
    return MS_OK;
}

int msi_buf_append(msi_buf *b, const void *p, size_t n)
{
    int rc = msi_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return MS_OK;
}

uint8_t *msi_buf_grow(msi_buf *b, size_t n)
{
    if (msi_buf_reserve(b, n))
        return NULL;
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

bool msi_utf8_ok(const uint8_t *s, size_t len, bool allow_nul)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0 && !allow_nul)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

/* ------------------------------------------------------ the struct ABI rule */

const char *msi_struct_take(void *dst, size_t known, const void *src, size_t given)
{
    if (given < sizeof(size_t))
        return "struct_size is 0: the struct was not set up by its _init function";
    if (given > known) {
        const uint8_t *p = (const uint8_t *)src;
        for (size_t i = known; i < given; i++)
            if (p[i])
                return "a newer struct sets fields this library does not know (non-zero bytes "
                       "past its end)";
    }
    memcpy(dst, src, given < known ? given : known);
    return NULL;
}

bool msi_reserved_zero(const uint64_t *reserved, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reserved[i])
            return false;
    return true;
}
