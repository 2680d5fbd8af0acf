/*
 * zstd wrappers (see compress.h). Contexts are created once per writer or
 * reader and reused for every record.
 */
#include <zstd.h>

#include "format/compress.h"

int msi_zstd_compress(void **cctx, int level, const struct iovec *iov, int iovcnt, size_t total,
                      const void *window, size_t window_len, msi_buf *out)
{
    if (!*cctx && !(*cctx = ZSTD_createCCtx()))
        return MS_ENOMEM;
    ZSTD_CCtx *c = *cctx;
    ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
    /* Levels 1 and 2 look for matches of at least 6 or 7 bytes (zstd 1.4 to
     * 1.5's tables); 5 suits page batches better. A batch holds only the
     * non-zero pages, so the fast matcher, which skips ahead faster the
     * longer it finds nothing, leaves incompressible pages straight into
     * the next data page instead of resynchronizing on a zero page as it
     * does on a raw image. With 5, level 1 streams come out 1 to 5 %
     * smaller (a real guest, huge-2m, idle-linux; 0.06 % on busy-db) at the
     * same speed: docs/PERFORMANCE.md. 0 restores the level's own value. */
    int min_match = level >= 1 && level <= 2 ? 5 : 0;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, min_match)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(c, total)))
        return MS_ECOMPRESS;
    /* The prefix is for this frame only (zstd forgets it at the frame's
     * end), and its bytes must stay put until then. */
    if (window_len && ZSTD_isError(ZSTD_CCtx_refPrefix(c, window, window_len)))
        return MS_ECOMPRESS;
    out->len = 0;
    int rc = msi_buf_reserve(out, ZSTD_compressBound(total));
    if (rc)
        return rc;
    ZSTD_outBuffer ob = {out->data, out->cap, 0};
    for (int i = 0; i < iovcnt; i++) {
        ZSTD_inBuffer ib = {iov[i].iov_base, iov[i].iov_len, 0};
        while (ib.pos < ib.size) {
            size_t r = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_continue);
            if (ZSTD_isError(r))
                return MS_ECOMPRESS;
        }
    }
    ZSTD_inBuffer empty = {NULL, 0, 0};
    size_t left;
    do {
        left = ZSTD_compressStream2(c, &ob, &empty, ZSTD_e_end);
        if (ZSTD_isError(left))
            return MS_ECOMPRESS;
    } while (left);
    out->len = ob.pos;
    return MS_OK;
}

int msi_zstd_decompress(void **dctx, const void *src, size_t n, void *dst, size_t expected,
                        const void *window, size_t window_len, const char **why)
{
    unsigned long long declared = ZSTD_getFrameContentSize(src, n);
    if (declared == ZSTD_CONTENTSIZE_ERROR) {
        *why = "data section is not a zstd frame";
        return MS_ECOMPRESS;
    }
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
        *why = "zstd frame does not declare its content size";
        return MS_ECOMPRESS;
    }
    if (declared != expected) {
        *why = "zstd frame's content size differs from the DATA pages the extents declare";
        return MS_ECOMPRESS;
    }
    size_t frame = ZSTD_findFrameCompressedSize(src, n);
    if (ZSTD_isError(frame) || frame != n) {
        *why = "data section is not exactly one zstd frame";
        return MS_ECOMPRESS;
    }
    if (!*dctx && !(*dctx = ZSTD_createDCtx())) {
        *why = "out of memory";
        return MS_ENOMEM;
    }
    ZSTD_DCtx *d = *dctx;
    ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
    if (window_len && ZSTD_isError(ZSTD_DCtx_refPrefix(d, window, window_len))) {
        *why = "zstd refused the window";
        return MS_ECOMPRESS;
    }
    size_t got = ZSTD_decompressDCtx(d, dst, expected, src, n);
    if (ZSTD_isError(got)) {
        *why = ZSTD_getErrorName(got);
        return MS_ECOMPRESS;
    }
    if (got != expected) {
        *why = "zstd frame decoded to another size than it declared";
        return MS_ECOMPRESS;
    }
    return MS_OK;
}

void msi_zstd_free(void *cctx, void *dctx)
{
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
}
