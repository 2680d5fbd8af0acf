/*
 * The decompression streams of compressed multifd channels (docs/QEMU.md,
 * "multifd"). QEMU (migration/multifd-zlib.c, multifd-zstd.c, 7.2 to 10.x)
 * sets up one deflate or ZSTD_CStream per channel and never resets it: each
 * packet's normal pages are compressed as a continuation of the same stream
 * and flushed at the packet's end (Z_SYNC_FLUSH, ZSTD_e_flush), so the zlib
 * header or zstd frame header only appears in the channel's first
 * compressed packet, and every packet ends on a byte boundary with all of
 * its pages decodable. Calls common/ and the codecs only.
 */
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "qemu/multifd_zip.h"

struct mq_zip {
    uint32_t method;
    const ms_allocator *alloc;
    z_stream zs;
    ZSTD_DStream *zd;
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return msi_calloc(opaque, items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    msi_free(opaque, p);
}

mq_zip *mq_zip_new(const ms_allocator *a, uint32_t method)
{
    mq_zip *z = msi_calloc(a, 1, sizeof *z);
    if (!z)
        return NULL;
    z->method = method;
    z->alloc = a;
    if (method == MQ_MF_ZLIB) {
        z->zs.zalloc = z_alloc;
        z->zs.zfree = z_free;
        z->zs.opaque = (voidpf)a;
        if (inflateInit(&z->zs) != Z_OK) {
            msi_free(a, z);
            return NULL;
        }
        return z;
    }
    /* Untrusted frames: the window is allocated as the frame header says. */
    if (!(z->zd = ZSTD_createDStream()) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax,
                                            MQ_ZIP_ZSTD_WINDOW_LOG_MAX))) {
        ZSTD_freeDStream(z->zd);
        msi_free(a, z);
        return NULL;
    }
    return z;
}

void mq_zip_free(mq_zip *z)
{
    if (!z)
        return;
    if (z->method == MQ_MF_ZLIB)
        inflateEnd(&z->zs);
    else
        ZSTD_freeDStream(z->zd);
    msi_free(z->alloc, z);
}

int mq_zip_step(mq_zip *z, const uint8_t *in, size_t in_len, size_t *in_used, uint8_t *out,
             size_t out_len, size_t *out_made, const char **why)
{
    *in_used = *out_made = 0;
    if (z->method == MQ_MF_ZSTD) {
        ZSTD_inBuffer ib = {in, in_len, 0};
        ZSTD_outBuffer ob = {out, out_len, 0};
        size_t r = ZSTD_decompressStream(z->zd, &ob, &ib);
        *in_used = ib.pos;
        *out_made = ob.pos;
        if (ZSTD_isError(r)) {
            *why = ZSTD_getErrorName(r);
            return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? MS_ENOMEM
                                                                         : MS_ECOMPRESS;
        }
        return 0;
    }
    /* zlib counts in uInt: the caller's pieces are far smaller. */
    uint8_t none;
    z->zs.next_in = (Bytef *)(uintptr_t)in;
    z->zs.avail_in = (uInt)in_len;
    z->zs.next_out = out_len ? out : &none;
    z->zs.avail_out = (uInt)out_len;
    int r = inflate(&z->zs, Z_SYNC_FLUSH);
    *in_used = in_len - z->zs.avail_in;
    *out_made = out_len - z->zs.avail_out;
    switch (r) {
    case Z_OK:
    case Z_BUF_ERROR: /* no progress possible: more input or more room */
        return 0;
    case Z_STREAM_END:
        *why = "the zlib stream ends (QEMU's never does)";
        return MS_ECOMPRESS;
    case Z_NEED_DICT:
        *why = "the zlib stream asks for a preset dictionary";
        return MS_ECOMPRESS;
    case Z_MEM_ERROR:
        *why = "out of memory";
        return MS_ENOMEM;
    default:
        *why = z->zs.msg ? z->zs.msg : "corrupt zlib data";
        return MS_ECOMPRESS;
    }
}
