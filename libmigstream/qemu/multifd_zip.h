/*
 * Decompression of multifd channels (multifd_zip.c): QEMU's
 * multifd-compression zlib and zstd. Each channel keeps one decompression
 * stream from its first compressed packet to its end; the caller feeds it a
 * packet's compressed bytes in pieces and takes the pages out one at a time.
 *
 * Owns: one channel's decompression stream. Calls: common/, wire.h, zlib
 * and zstd only; multifd.c is its one caller.
 */
#ifndef MSI_QEMU_MULTIFD_ZIP_H
#define MSI_QEMU_MULTIFD_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "qemu/wire.h"

/* The largest zstd window accepted (2^25: what multifd-zstd-level 20, QEMU's
 * highest, uses); a frame asking for more is refused before the decoder
 * allocates it. */
#define MQ_ZIP_ZSTD_WINDOW_LOG_MAX 25

typedef struct mq_zip mq_zip;

/* A decompression stream for @method (the packet flag naming it, MQ_MF_ZLIB
 * or MQ_MF_ZSTD), or NULL when out of memory. zlib's state goes through @a;
 * zstd's through libc. */
mq_zip *mq_zip_new(const ms_allocator *a, uint32_t method);
/* NULL is fine. */
void mq_zip_free(mq_zip *z);

/*
 * One step: decompresses from @in (@in_len bytes) into @out (@out_len
 * bytes, may be 0). *in_used and *out_made receive what was consumed and
 * produced, either of which may be 0 when the stream needs more input or
 * holds no more output. 0; MS_ECOMPRESS with *why set to a static
 * description of corrupt data (a zlib stream that ends is corrupt: QEMU
 * never ends it; a zstd window beyond MQ_ZIP_ZSTD_WINDOW_LOG_MAX too); MS_ENOMEM.
 */
int mq_zip_step(mq_zip *z, const uint8_t *in, size_t in_len, size_t *in_used, uint8_t *out,
             size_t out_len, size_t *out_made, const char **why);

#endif /* MSI_QEMU_MULTIFD_ZIP_H */
