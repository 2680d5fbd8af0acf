/* The libvirt save images and their parts (libvirt_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bzlib.h>
#include <cmocka.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "libvirt_fixture.h"

#ifndef MS_LIBVIRT_DATA
#error "MS_LIBVIRT_DATA must name tests/data/libvirt"
#endif

uint8_t *th_libvirt_image(const char *name, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.libvirt.zst", MS_LIBVIRT_DATA, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        fail();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *z = malloc((size_t)n);
    assert_non_null(z);
    assert_int_equal(fread(z, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unsigned long long want = ZSTD_getFrameContentSize(z, (size_t)n);
    assert_true(want != ZSTD_CONTENTSIZE_ERROR && want != ZSTD_CONTENTSIZE_UNKNOWN);
    assert_true(want < (64u << 20));
    uint8_t *out = malloc((size_t)want);
    assert_non_null(out);
    size_t got = ZSTD_decompress(out, (size_t)want, z, (size_t)n);
    assert_false(ZSTD_isError(got));
    assert_int_equal(got, want);
    free(z);
    *size = got;
    return out;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void th_lv_header_get(const uint8_t *img, th_lv_header *h)
{
    assert_memory_equal(img, "LibvirtQemudSave", 16);
    h->version = le32(img + TH_LV_VERSION);
    h->data_len = le32(img + TH_LV_DATA_LEN);
    h->was_running = le32(img + TH_LV_WAS_RUNNING);
    h->format = le32(img + TH_LV_FORMAT);
    h->cookie_offset = le32(img + TH_LV_COOKIE);
}

size_t th_lv_stream_start(const uint8_t *img)
{
    th_lv_header h;
    th_lv_header_get(img, &h);
    return TH_LV_HEADER + (size_t)h.data_len;
}

/* ------------------------------------------------------------ decompress */

/* A growable output buffer. */
typedef struct obuf {
    uint8_t *p;
    size_t len, cap;
} obuf;

static uint8_t *room(obuf *o, size_t *avail)
{
    if (o->cap - o->len < 65536) {
        o->cap = o->cap ? o->cap * 2 : 1u << 20;
        o->p = realloc(o->p, o->cap);
        assert_non_null(o->p);
    }
    *avail = o->cap - o->len;
    return o->p + o->len;
}

static void gunzip_all(const uint8_t *in, size_t n, obuf *o)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    for (;;) {
        size_t avail;
        zs.next_out = room(o, &avail);
        zs.avail_out = (uInt)avail;
        int r = inflate(&zs, Z_NO_FLUSH);
        o->len += avail - zs.avail_out;
        if (r == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            assert_int_equal(inflateReset(&zs), Z_OK); /* the next member */
            continue;
        }
        assert_int_equal(r, Z_OK);
    }
    inflateEnd(&zs);
}

static void bunzip_all(const uint8_t *in, size_t n, obuf *o)
{
    size_t used = 0;
    while (used < n) {
        bz_stream bs;
        memset(&bs, 0, sizeof bs);
        assert_int_equal(BZ2_bzDecompressInit(&bs, 0, 0), BZ_OK);
        bs.next_in = (char *)(uintptr_t)(in + used);
        bs.avail_in = (unsigned)(n - used);
        int r;
        do {
            size_t avail;
            bs.next_out = (char *)room(o, &avail);
            bs.avail_out = (unsigned)avail;
            r = BZ2_bzDecompress(&bs);
            o->len += avail - bs.avail_out;
            assert_true(r == BZ_OK || r == BZ_STREAM_END);
        } while (r != BZ_STREAM_END);
        used = n - bs.avail_in;
        BZ2_bzDecompressEnd(&bs);
    }
}

static void unxz_all(const uint8_t *in, size_t n, obuf *o)
{
    lzma_stream ls = LZMA_STREAM_INIT;
    assert_int_equal(lzma_stream_decoder(&ls, UINT64_MAX, LZMA_CONCATENATED), LZMA_OK);
    ls.next_in = in;
    ls.avail_in = n;
    lzma_ret r;
    do {
        size_t avail;
        ls.next_out = room(o, &avail);
        ls.avail_out = avail;
        r = lzma_code(&ls, LZMA_FINISH);
        o->len += avail - ls.avail_out;
        assert_true(r == LZMA_OK || r == LZMA_STREAM_END);
    } while (r != LZMA_STREAM_END);
    lzma_end(&ls);
}

static void unzstd_all(const uint8_t *in, size_t n, obuf *o)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    ZSTD_inBuffer ib = {in, n, 0};
    size_t r = 1;
    while (ib.pos < ib.size || r != 0) {
        size_t avail;
        ZSTD_outBuffer ob = {room(o, &avail), avail, 0};
        r = ZSTD_decompressStream(d, &ob, &ib);
        assert_false(ZSTD_isError(r));
        o->len += ob.pos;
        if (ob.pos == 0 && ib.pos == ib.size && r != 0)
            fail_msg("truncated zstd data");
    }
    ZSTD_freeDStream(d);
}

uint8_t *th_libvirt_inner(const uint8_t *img, size_t n, size_t *size)
{
    th_lv_header h;
    th_lv_header_get(img, &h);
    size_t start = th_lv_stream_start(img);
    assert_true(start <= n);
    obuf o = {0};
    const uint8_t *in = img + start;
    size_t len = n - start;
    switch (h.format) {
    case 0:
        o.p = malloc(len ? len : 1);
        assert_non_null(o.p);
        memcpy(o.p, in, len);
        o.len = len;
        break;
    case 1:
        gunzip_all(in, len, &o);
        break;
    case 2:
        bunzip_all(in, len, &o);
        break;
    case 3:
        unxz_all(in, len, &o);
        break;
    case 5:
        unzstd_all(in, len, &o);
        break;
    default:
        fail_msg("format %u has no decoder in the tests", h.format);
    }
    *size = o.len;
    return o.p;
}

/* -------------------------------------------------------------- compress */

static size_t compress_piece(uint32_t format, const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    switch (format) {
    case 1: {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                         Z_OK);
        zs.next_in = (Bytef *)(uintptr_t)p;
        zs.avail_in = (uInt)n;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        size_t k = cap - zs.avail_out;
        deflateEnd(&zs);
        return k;
    }
    case 2: {
        unsigned k = (unsigned)cap;
        assert_int_equal(
            BZ2_bzBuffToBuffCompress((char *)out, &k, (char *)(uintptr_t)p, (unsigned)n, 9, 0, 0),
            BZ_OK);
        return k;
    }
    case 3: {
        size_t k = 0;
        assert_int_equal(lzma_easy_buffer_encode(3, LZMA_CHECK_CRC64, NULL, p, n, out, &k, cap),
                         LZMA_OK);
        return k;
    }
    case 5: {
        size_t k = ZSTD_compress(out, cap, p, n, 3);
        assert_false(ZSTD_isError(k));
        return k;
    }
    default:
        fail_msg("format %u has no encoder in the tests", format);
        return 0;
    }
}

uint8_t *th_lv_compress(uint32_t format, const uint8_t *p, size_t n, unsigned pieces, size_t *size)
{
    size_t cap = n + n / 50 + 4096 * (pieces + 1), len = 0;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    for (unsigned i = 0; i < pieces; i++) {
        size_t from = n * i / pieces, to = n * (i + 1) / pieces;
        len += compress_piece(format, p + from, to - from, out + len, cap - len);
    }
    *size = len;
    return out;
}

uint8_t *th_lv_rewrap(const uint8_t *img, uint32_t format, const uint8_t *stream, size_t n,
                      size_t *size)
{
    size_t start = th_lv_stream_start(img);
    uint8_t *out = malloc(start + n);
    assert_non_null(out);
    memcpy(out, img, start);
    for (int i = 0; i < 4; i++)
        out[TH_LV_FORMAT + i] = (uint8_t)(format >> (8 * i));
    memcpy(out + start, stream, n);
    *size = start + n;
    return out;
}

char *th_lv_temp(const void *p, size_t n)
{
    char *path = strdup("/tmp/ms-test-libvirt-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
    return path;
}
