/*
 * Decompression of a save image's QEMU stream (unzip.h; docs/FORMATS.md
 * section 2.3). One loop for the four codecs: fill the input buffer when it
 * is empty, step the codec into the caller's buffer, hand out what it made;
 * when a stream (gzip member, bzip2 stream, zstd frame) ends and the image
 * goes on, the next one starts, as `PROG -dc` does. Each pass of the loop
 * either consumes compressed bytes, makes output or ends, so a call costs
 * at most the compressed bytes that yield no output.
 */
#include <bzlib.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdio.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "libvirt/unzip.h"

/* zstd's largest window log (ZSTD_LOG_MAX, which zstd.h only
 * shows to static linkers). */
#define ZSTD_LOG_MAX 31

/* Largest output of one step: zlib and bzip2 count in unsigned int. */
#define STEP_MAX (1u << 30)

struct mlv_unzip {
    const ms_allocator *alloc;
    mlv_in *in;
    mlv_unzip_config c;
    const char *name; /* "gzip" ... */
    uint8_t *ibuf;
    size_t ipos, iend;
    bool in_eof;
    uint64_t out;      /* decompressed bytes handed out */
    unsigned streams;  /* streams started: the current one's number */
    bool stream_ended; /* the current stream ended; the next not started */
    bool done;
    int status;
    uint64_t err_offset;
    char msg[512];

    z_stream zs;
    bool zs_init;
    bz_stream bs;
    bool bs_init;
    lzma_stream ls;
    lzma_allocator la;
    bool ls_init;
    ZSTD_DStream *zd;
};

/* The image offset of the next compressed byte not consumed. */
static uint64_t in_offset(const mlv_unzip *z)
{
    return z->in->pos - (z->iend - z->ipos);
}

static int zfail(mlv_unzip *z, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int zfail(mlv_unzip *z, int status, const char *fmt, ...)
{
    if (z->status)
        return z->status;
    char detail[320];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    z->status = status;
    z->err_offset = in_offset(z);
    snprintf(z->msg, sizeof z->msg,
             "%s data at offset %llu of the image (%s stream %u, %llu bytes decompressed): %s",
             z->name, (unsigned long long)z->err_offset, z->name, z->streams ? z->streams : 1,
             (unsigned long long)z->out, detail);
    return status;
}

/* ------------------------------------------------------------- allocators */

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size)
{
    return msi_calloc(opaque, items, size);
}

static void zlib_free(voidpf opaque, voidpf p)
{
    msi_free(opaque, p);
}

static void *bz_alloc(void *opaque, int items, int size)
{
    return items < 0 || size < 0 ? NULL : msi_calloc(opaque, (size_t)items, (size_t)size);
}

static void bz_free(void *opaque, void *p)
{
    msi_free(opaque, p);
}

static void *xz_alloc(void *opaque, size_t items, size_t size)
{
    return msi_calloc(opaque, items, size);
}

static void xz_free(void *opaque, void *p)
{
    msi_free(opaque, p);
}

/* ------------------------------------------------------------- the codecs */

/* Sets up the codec for a new stream (the first, or one after another). */
static int codec_start(mlv_unzip *z)
{
    int r;
    switch (z->c.format) {
    case MLV_FORMAT_GZIP:
        if (z->zs_init)
            r = inflateReset(&z->zs);
        else {
            z->zs.zalloc = zlib_alloc;
            z->zs.zfree = zlib_free;
            z->zs.opaque = (voidpf)z->alloc;
            r = inflateInit2(&z->zs, 16 + MAX_WBITS); /* gzip only, a 32 KiB window */
            z->zs_init = r == Z_OK;
        }
        return r == Z_OK ? 0 : r == Z_MEM_ERROR ? MS_ENOMEM : MS_ECOMPRESS;
    case MLV_FORMAT_BZIP2:
        if (z->bs_init) {
            BZ2_bzDecompressEnd(&z->bs);
            z->bs_init = false;
        }
        memset(&z->bs, 0, sizeof z->bs);
        z->bs.bzalloc = bz_alloc;
        z->bs.bzfree = bz_free;
        z->bs.opaque = (void *)(uintptr_t)z->alloc;
        r = BZ2_bzDecompressInit(&z->bs, 0, 0);
        z->bs_init = r == BZ_OK;
        return r == BZ_OK ? 0 : r == BZ_MEM_ERROR ? MS_ENOMEM : MS_ECOMPRESS;
    case MLV_FORMAT_XZ: {
        if (z->ls_init) /* concatenated streams are liblzma's: never here */
            return 0;
        lzma_stream init = LZMA_STREAM_INIT;
        z->ls = init;
        z->la.alloc = xz_alloc;
        z->la.free = xz_free;
        z->la.opaque = (void *)(uintptr_t)z->alloc;
        z->ls.allocator = &z->la;
        lzma_ret lr = lzma_stream_decoder(&z->ls, z->c.max_memory, LZMA_CONCATENATED);
        z->ls_init = lr == LZMA_OK;
        return lr == LZMA_OK ? 0 : lr == LZMA_MEM_ERROR ? MS_ENOMEM : MS_ECOMPRESS;
    }
    case MLV_FORMAT_ZSTD: {
        if (z->zd) /* the next frame starts by itself */
            return 0;
        /* The largest window that fits max_memory (zstd allocates the
         * window the frame header asks for, up to this). */
        int log = 10;
        while (log < ZSTD_LOG_MAX && (2ull << log) <= z->c.max_memory)
            log++;
        if (!(z->zd = ZSTD_createDStream()))
            return MS_ENOMEM;
        return ZSTD_isError(ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax, log)) ? MS_ECOMPRESS
                                                                                     : 0;
    }
    default:
        return MS_EINVAL;
    }
}

/* One step of the codec from the input buffer into @out: *@made bytes made,
 * *@ended when the current stream ended (for xz: every stream and the
 * input). @finish: the input has no byte more. */
static int codec_step(mlv_unzip *z, uint8_t *out, size_t len, bool finish, size_t *made,
                      bool *ended)
{
    const uint8_t *in = z->ibuf + z->ipos;
    size_t avail = z->iend - z->ipos;
    *made = 0;
    *ended = false;
    switch (z->c.format) {
    case MLV_FORMAT_GZIP: {
        z->zs.next_in = (Bytef *)(uintptr_t)in;
        z->zs.avail_in = (uInt)avail;
        z->zs.next_out = out;
        z->zs.avail_out = (uInt)len;
        int r = inflate(&z->zs, Z_NO_FLUSH);
        z->ipos += avail - z->zs.avail_in;
        *made = len - z->zs.avail_out;
        switch (r) {
        case Z_OK:
        case Z_BUF_ERROR: /* no progress without more input */
            return 0;
        case Z_STREAM_END:
            *ended = true;
            return 0;
        case Z_MEM_ERROR:
            return zfail(z, MS_ENOMEM, "out of memory");
        case Z_NEED_DICT:
            return zfail(z, MS_ECOMPRESS, "the data asks for a preset dictionary");
        default:
            return zfail(z, MS_ECOMPRESS, "%s", z->zs.msg ? z->zs.msg : "corrupt data");
        }
    }
    case MLV_FORMAT_BZIP2: {
        z->bs.next_in = (char *)(uintptr_t)in;
        z->bs.avail_in = (unsigned)avail;
        z->bs.next_out = (char *)out;
        z->bs.avail_out = (unsigned)len;
        int r = BZ2_bzDecompress(&z->bs);
        z->ipos += avail - z->bs.avail_in;
        *made = len - z->bs.avail_out;
        switch (r) {
        case BZ_OK:
            return 0;
        case BZ_STREAM_END:
            *ended = true;
            return 0;
        case BZ_MEM_ERROR:
            return zfail(z, MS_ENOMEM, "out of memory");
        case BZ_DATA_ERROR_MAGIC:
            return zfail(z, MS_ECOMPRESS, "no bzip2 stream starts here (magic \"BZh\")");
        default:
            return zfail(z, MS_ECOMPRESS, "corrupt data (libbz2 error %d)", r);
        }
    }
    case MLV_FORMAT_XZ: {
        z->ls.next_in = in;
        z->ls.avail_in = avail;
        z->ls.next_out = out;
        z->ls.avail_out = len;
        lzma_ret r = lzma_code(&z->ls, finish ? LZMA_FINISH : LZMA_RUN);
        z->ipos += avail - z->ls.avail_in;
        *made = len - z->ls.avail_out;
        switch (r) {
        case LZMA_OK:
            return 0;
        case LZMA_STREAM_END:
            *ended = true;
            return 0;
        case LZMA_BUF_ERROR: /* no progress: the caller sees whether input remains */
            return 0;
        case LZMA_MEM_ERROR:
            return zfail(z, MS_ENOMEM, "out of memory");
        case LZMA_MEMLIMIT_ERROR:
            return zfail(
                z, MS_ELIMIT, "the decoder needs %llu bytes, more than max_decoder_memory (%llu)",
                (unsigned long long)lzma_memusage(&z->ls), (unsigned long long)z->c.max_memory);
        case LZMA_FORMAT_ERROR:
            return zfail(z, MS_ECOMPRESS, "no xz stream starts here");
        case LZMA_OPTIONS_ERROR:
            return zfail(z, MS_ECOMPRESS, "options liblzma does not support");
        default:
            return zfail(z, MS_ECOMPRESS, "corrupt data (liblzma error %d)", (int)r);
        }
    }
    default: { /* zstd */
        ZSTD_inBuffer ib = {in, avail, 0};
        ZSTD_outBuffer ob = {out, len, 0};
        size_t r = ZSTD_decompressStream(z->zd, &ob, &ib);
        z->ipos += ib.pos;
        *made = ob.pos;
        if (ZSTD_isError(r)) {
            switch (ZSTD_getErrorCode(r)) {
            case ZSTD_error_memory_allocation:
                return zfail(z, MS_ENOMEM, "out of memory");
            case ZSTD_error_frameParameter_windowTooLarge:
                return zfail(z, MS_ELIMIT,
                             "the frame's window exceeds what max_decoder_memory (%llu) allows",
                             (unsigned long long)z->c.max_memory);
            default:
                return zfail(z, MS_ECOMPRESS, "%s", ZSTD_getErrorName(r));
            }
        }
        *ended = r == 0 && (ib.pos > 0 || ob.pos > 0 || avail == 0);
        return 0;
    }
    }
}

/* ------------------------------------------------------------------- API */

static const char *codec_name(uint32_t format)
{
    return mlv_format_name(format) ? mlv_format_name(format) : "compressed";
}

mlv_unzip *mlv_unzip_new(const ms_allocator *a, mlv_in *in, const mlv_unzip_config *c)
{
    mlv_unzip *z = msi_calloc(a, 1, sizeof *z);
    if (!z)
        return NULL;
    z->alloc = a;
    z->in = in;
    z->c = *c;
    z->name = codec_name(c->format);
    if (!(z->ibuf = msi_alloc(a, MLV_UNZIP_IN_CAP))) {
        msi_free(a, z);
        return NULL;
    }
    z->streams = 1;
    int rc = codec_start(z);
    if (rc == MS_ENOMEM) {
        mlv_unzip_free(z);
        return NULL;
    }
    if (rc)
        zfail(z, rc, "the decoder could not be set up");
    return z;
}

void mlv_unzip_free(mlv_unzip *z)
{
    if (!z)
        return;
    if (z->zs_init)
        inflateEnd(&z->zs);
    if (z->bs_init)
        BZ2_bzDecompressEnd(&z->bs);
    if (z->ls_init)
        lzma_end(&z->ls);
    ZSTD_freeDStream(z->zd);
    msi_free(z->alloc, z->ibuf);
    msi_free(z->alloc, z);
}

static int refill(mlv_unzip *z)
{
    z->ipos = z->iend = 0;
    ssize_t k = mlv_in_read(z->in, z->ibuf, MLV_UNZIP_IN_CAP);
    if (k < 0)
        return zfail(z, MS_EIO, "reading the image failed");
    if (k == 0)
        z->in_eof = true;
    z->iend = (size_t)k;
    return 0;
}

ssize_t mlv_unzip_read(void *ctx, void *buf, size_t len)
{
    mlv_unzip *z = ctx;
    if (z->status)
        return z->status;
    if (z->done || len == 0)
        return 0;
    /* One byte beyond max_out is decoded, never handed out: it tells a
     * stream that ends at the limit from one that goes on. */
    const uint64_t room = z->c.max_out - z->out;
    size_t want = len < STEP_MAX ? len : STEP_MAX;
    if (room < want)
        want = (size_t)room + 1;
    for (;;) {
        int rc;
        if (z->ipos == z->iend && !z->in_eof && (rc = refill(z)))
            return rc;
        const bool at_end = z->in_eof && z->ipos == z->iend;
        if (z->stream_ended) {
            if (at_end) {
                z->done = true;
                return 0;
            }
            z->stream_ended = false;
            z->streams++;
            if ((rc = codec_start(z)))
                return zfail(z, rc, "the decoder could not be set up for the next stream");
        }
        const size_t before = z->ipos;
        size_t made;
        bool ended;
        if ((rc = codec_step(z, buf, want, at_end, &made, &ended)))
            return rc;
        if (ended)
            z->stream_ended = true;
        if (made > room)
            return zfail(z, MS_ELIMIT,
                         "the QEMU stream decompresses to more than max_stream_size (%llu bytes)",
                         (unsigned long long)z->c.max_out);
        if (made) {
            z->out += made;
            return (ssize_t)made;
        }
        if (ended)
            continue;
        if (at_end)
            return zfail(z, MS_ETRUNCATED, "the image ends before the %s stream does", z->name);
        if (z->ipos == before && z->ipos < z->iend)
            return zfail(z, MS_ECOMPRESS, "the decoder makes no progress");
    }
}

int mlv_unzip_status(const mlv_unzip *z)
{
    return z->status;
}

const char *mlv_unzip_errmsg(const mlv_unzip *z)
{
    return z->msg;
}

uint64_t mlv_unzip_err_offset(const mlv_unzip *z)
{
    return z->err_offset;
}

uint64_t mlv_unzip_out_bytes(const mlv_unzip *z)
{
    return z->out;
}
