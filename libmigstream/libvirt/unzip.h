/*
 * The QEMU stream of a compressed save image, decompressed as it is read
 * (docs/FORMATS.md section 2.3). libvirt pipes QEMU's stream through an
 * external program (`gzip -c`, `bzip2 -c`, `xz -c -3`, `zstd -c`) and reads
 * it back through `PROG -dc`; those programs write one stream (gzip member,
 * bzip2 stream, xz stream, zstd frame) and read concatenated ones, and so
 * does this decoder, with zlib, libbz2, liblzma and libzstd.
 *
 * Bounded: mlv_unzip_read() hands out at most the bytes its caller asks
 * for, reading at most MLV_UNZIP_IN_CAP compressed bytes at a time, and
 * stops at max_out decompressed bytes; the decoders' memory is fixed (gzip,
 * bzip2) or limited by max_memory (xz's memory limit, zstd's largest
 * window) before they allocate it. Nothing goes to disk.
 *
 * Owns: one decompression stream over an mlv_in. Calls: image.h and the
 * codecs; source.c is its one caller.
 */
#ifndef MSI_LIBVIRT_UNZIP_H
#define MSI_LIBVIRT_UNZIP_H

#include <stddef.h>
#include <stdint.h>

#include "libvirt/image.h"

/* Compressed bytes read from the image at a time. */
#define MLV_UNZIP_IN_CAP (64u * 1024)

typedef struct mlv_unzip_config {
    uint32_t format;     /* MLV_FORMAT_GZIP, _BZIP2, _XZ or _ZSTD */
    uint64_t max_memory; /* the decoder's memory */
    uint64_t max_out;    /* decompressed bytes */
} mlv_unzip_config;

typedef struct mlv_unzip mlv_unzip;

/* A decoder reading the compressed stream from @in (at its current
 * position), or NULL when out of memory. A decoder that could not be set
 * up is returned failed (mlv_unzip_status()). */
mlv_unzip *mlv_unzip_new(const ms_allocator *a, mlv_in *in, const mlv_unzip_config *c);
/* NULL is fine. */
void mlv_unzip_free(mlv_unzip *z);

/* An ms_read_fn over the decompressed stream (@ctx: the mlv_unzip): up to
 * @len bytes, 0 once every compressed stream in the image has ended with
 * the image, or a negative status (sticky; mlv_unzip_errmsg() says what
 * and where). */
ssize_t mlv_unzip_read(void *ctx, void *buf, size_t len);

/* 0, or the failure that stopped the decoder. */
int mlv_unzip_status(const mlv_unzip *z);
/* What failed, naming the compressed byte in the image and the
 * decompressed byte; "" before any failure. */
const char *mlv_unzip_errmsg(const mlv_unzip *z);
/* The image byte at which the failure was found. */
uint64_t mlv_unzip_err_offset(const mlv_unzip *z);
/* Decompressed bytes handed out. */
uint64_t mlv_unzip_out_bytes(const mlv_unzip *z);

#endif /* MSI_LIBVIRT_UNZIP_H */
