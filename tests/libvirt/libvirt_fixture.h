/*
 * The libvirt save images of tests/data/libvirt (zstd-compressed), and what
 * the tests need to check the module against them: libvirt's header as the
 * tests read it, written here from libvirt's source (src/qemu/
 * qemu_saveimage.h) apart from the module, and the QEMU stream inside,
 * decompressed with the codecs' one-shot calls rather than the module's
 * decoder.
 */
#ifndef MS_TEST_LIBVIRT_FIXTURE_H
#define MS_TEST_LIBVIRT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The header's size and the offsets of its fields. */
#define TH_LV_HEADER 92u
#define TH_LV_VERSION 16u
#define TH_LV_DATA_LEN 20u
#define TH_LV_WAS_RUNNING 24u
#define TH_LV_FORMAT 28u
#define TH_LV_COOKIE 32u
#define TH_LV_UNUSED 36u

typedef struct th_lv_header {
    uint32_t version, data_len, was_running, format, cookie_offset;
} th_lv_header;

/* Decompresses tests/data/libvirt/NAME.libvirt.zst into a malloc'd buffer;
 * fails the running test when it cannot. */
uint8_t *th_libvirt_image(const char *name, size_t *size);

/* The little-endian header of @img. */
void th_lv_header_get(const uint8_t *img, th_lv_header *h);

/* Where the QEMU stream starts: 92 + data_len. */
size_t th_lv_stream_start(const uint8_t *img);

/* The QEMU stream of @img (any format but lzop), decompressed: malloc'd. */
uint8_t *th_libvirt_inner(const uint8_t *img, size_t n, size_t *size);

/* Compresses @p (@n bytes) as @format (1 gzip, 2 bzip2, 3 xz, 5 zstd) in
 * @pieces independent streams (gzip members, bzip2 and xz streams, zstd
 * frames) one after another, as concatenating `PROG -c` outputs gives:
 * malloc'd. */
uint8_t *th_lv_compress(uint32_t format, const uint8_t *p, size_t n, unsigned pieces, size_t *size);

/* A save image: @img's header and data area (format set to @format), then
 * @stream: malloc'd. */
uint8_t *th_lv_rewrap(const uint8_t *img, uint32_t format, const uint8_t *stream, size_t n,
                      size_t *size);

/* Writes @n bytes to a new temporary file: its path, malloc'd. */
char *th_lv_temp(const void *p, size_t n);

#endif
