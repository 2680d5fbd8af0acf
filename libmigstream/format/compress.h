/*
 * zstd for PAGES data sections (FORMAT.md section 6.3): one frame per
 * record, content size always declared.
 */
#ifndef MSI_COMPRESS_H
#define MSI_COMPRESS_H

#include <stddef.h>
#include <sys/uio.h>

#include "common/util.h"

/* Compresses the concatenation of @iov (@total bytes) into @out (reset
 * first). With @window_len > 0 the frame may refer back into @window, the
 * previous record's decoded data section (encoding 2, FORMAT.md section
 * 6.3); the decoder needs the same bytes. Returns MS_OK, MS_ENOMEM or
 * MS_ECOMPRESS. */
int msi_zstd_compress(void **cctx, int level, const struct iovec *iov, int iovcnt, size_t total,
                      const void *window, size_t window_len, msi_buf *out);

/* Decompresses one frame of exactly @expected bytes into @dst, with
 * @window (@window_len bytes, 0 for none) as the frame's prefix. Fails with
 * a static message in *why when the frame is malformed, is not exactly one
 * frame, or declares or yields another size. */
int msi_zstd_decompress(void **dctx, const void *src, size_t n, void *dst, size_t expected,
                        const void *window, size_t window_len, const char **why);

void msi_zstd_free(void *cctx, void *dctx);

#endif
