/*
 * A libvirt save image's own parts (docs/FORMATS.md section 2): the cursor
 * that reads the image's bytes, libvirt's 92-byte header, and the data
 * area after it (domain XML, cookie, padding). Layout and rules are
 * libvirt's (src/qemu/qemu_saveimage.h and .c: virQEMUSaveHeader,
 * qemuSaveImageReadHeader, virQEMUSaveDataWrite).
 *
 * Owns: mlv_in, mlv_header, the reading and checking of the header and the
 * texts. Calls: format/source.h (failures and problems go to the source).
 * unzip.c and source.c sit above it.
 */
#ifndef MSI_LIBVIRT_IMAGE_H
#define MSI_LIBVIRT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "format/source.h"

/* ---- the header (virQEMUSaveHeader) ---- */

#define MLV_MAGIC_LEN 16u
#define MLV_HEADER_SIZE 92u /* magic, 5 u32, 14 unused u32 */
#define MLV_UNUSED_WORDS 14u

/* Header field offsets. */
#define MLV_OFF_VERSION 16u
#define MLV_OFF_DATA_LEN 20u
#define MLV_OFF_WAS_RUNNING 24u
#define MLV_OFF_FORMAT 28u
#define MLV_OFF_COOKIE 32u
#define MLV_OFF_UNUSED 36u

/* virQEMUSaveFormat: values on disk, never renumbered by libvirt. */
enum {
    MLV_FORMAT_RAW = 0,
    MLV_FORMAT_GZIP = 1,
    MLV_FORMAT_BZIP2 = 2,
    MLV_FORMAT_XZ = 3,
    MLV_FORMAT_LZOP = 4,
    MLV_FORMAT_ZSTD = 5,   /* libvirt after 9.0 */
    MLV_FORMAT_SPARSE = 6, /* mapped-ram at file offsets: newer libvirt */
    MLV_FORMAT_COUNT,
};

/* libvirt's name of a format ("raw", "gzip" ...), or NULL. */
const char *mlv_format_name(uint32_t format);

typedef struct mlv_header {
    bool swapped; /* the integers were written by a host of the other byte order */
    uint32_t version;
    uint32_t data_len;
    uint32_t was_running;
    uint32_t format;
    uint32_t cookie_offset; /* 0: no cookie */
} mlv_header;

/* Bytes of the image before the QEMU stream. */
static inline uint64_t mlv_stream_start(const mlv_header *h)
{
    return (uint64_t)MLV_HEADER_SIZE + h->data_len;
}

/* ---- reading the image ---- */

/* The image's bytes in order, from its sequential reader when it has one,
 * else by position. */
typedef struct mlv_in {
    ms_read_fn read;
    void *read_ctx;
    ms_pread_fn pread;
    void *pread_ctx;
    uint64_t pos; /* bytes of the image consumed */
} mlv_in;

/* Up to @len bytes: their count, 0 at the end, or a negative callback
 * failure (a callback that claims more than @len is one too). */
ssize_t mlv_in_read(mlv_in *in, void *buf, size_t len);

/* Reads the header: 0, or the source's failure (the image ends within it,
 * another magic, the incomplete save's magic, a version other than 2, a
 * data_len of 0 or above @max_data_len, a cookie offset outside data_len,
 * a format this module does not read). What libvirt ignores (unused words
 * not zero, was_running other than 0 or 1) goes to msi_source_problem() as
 * a warning (status 0). */
int mlv_header_read(msi_source *s, mlv_in *in, uint32_t max_data_len, mlv_header *h);

/* Reads the data area after the header: the domain XML into @xml and the
 * cookie, when the header has one, into @cookie, each NUL-terminated and
 * checked (UTF-8, no control characters but tab and line ends; the XML a
 * <domain> element). The padding is read and dropped; bytes other than
 * zero in it are a warning, not a failure (libvirt ignores them). 0, or
 * the source's failure. */
int mlv_data_read(msi_source *s, mlv_in *in, const mlv_header *h, msi_buf *xml, msi_buf *cookie);

/* The text of the first <@tag> element of @xml (NUL-terminated), with
 * XML's five predefined entities resolved, into @out (truncated to @size);
 * false when there is none. For the INFO description only. */
bool mlv_xml_element(const char *xml, const char *tag, char *out, size_t size);

#endif /* MSI_LIBVIRT_IMAGE_H */
