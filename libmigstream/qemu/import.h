/*
 * Internal interface of the QEMU importer, shared by import_qemu.c (input,
 * sections, errors, the public API), qemu_ram.c (the "ram" section),
 * qemu_multifd.c (multifd channels), qemu_mapped_ram.c (mapped-ram pages)
 * and qemu_vmsd.c (the JSON trailer and device state). docs/QEMU.md describes
 * the mapping; QEMU's byte order is big-endian throughout.
 */
#ifndef MSI_IMPORT_QEMU_H
#define MSI_IMPORT_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migstream/qemu.h"
#include "common/util.h"

/* Section types (QEMU's migration/savevm.h). */
enum {
    QV_EOF = 0x00,
    QV_START = 0x01,
    QV_PART = 0x02,
    QV_END = 0x03,
    QV_FULL = 0x04,
    QV_SUBSECTION = 0x05,
    QV_VMDESCRIPTION = 0x06,
    QV_CONFIGURATION = 0x07,
    QV_COMMAND = 0x08,
    QV_FOOTER = 0x7e,
};

/* Buffered input over the caller's read callback (or positional reads,
 * when pread is set), with look-ahead. */
typedef struct qi_in {
    ms_read_fn fn;
    void *ctx;
    ms_qemu_pread_fn pread;
    void *pread_ctx;
    uint8_t *buf;
    size_t cap;
    size_t pos, end; /* unread bytes are buf[pos, end) */
    uint64_t base;   /* stream offset of buf[0] */
    bool eof;
} qi_in;

#define QI_IN_CAP (256u * 1024)

/* A section as its header named it. */
typedef struct qi_section {
    uint32_t id;
    uint32_t instance;
    uint32_t version;
    char idstr[256];
    bool iterable; /* opened by START */
    bool ended;    /* END seen */
    bool is_ram;
    size_t held; /* index in qi.held, or SIZE_MAX for RAM */
} qi_section;

/* Raw bytes of a non-RAM section, held until the end of the stream. A
 * section opened by START also keeps the length of each part (START, PARTs,
 * END) in stream order: QEMU's loader reads each part up to its own end
 * marker, so the export must cut the bytes where QEMU did. */
typedef struct qi_held {
    size_t section; /* index in qi.sections */
    msi_buf data;
    uint64_t *parts;
    size_t nparts, parts_cap;
} qi_held;

/* What one part of an iterable section costs against max_device_bytes
 * besides its bytes: its length here and in the DEVICE record. Empty parts
 * would otherwise cost nothing. */
#define QI_PART_COST 16u

/* The DEVICE path, schema and version that carry CONFIGURATION's subsections
 * (docs/QEMU.md section 3.3): QEMU's vmstate_configuration, version 1. */
#define QI_CONFIG_PATH "configuration"
#define QI_CONFIG_VERSION 1u

typedef struct qr_state qr_state; /* qemu_ram.c */
typedef struct qm_state qm_state; /* qemu_multifd.c */

/* The importer (ms_qemu_import in the public API). */
typedef struct ms_qemu_import qi;
struct ms_qemu_import {
    ms_qemu_import_options opts;
    ms_allocator alloc;
    char *tmpdir;
    int status;
    bool ran;
    char msg[512];
    uint64_t err_offset;
    ms_qemu_import_stats stats;

    qi_in in;
    ms_writer *w;
    ms_writer_options user_wopts; /* the caller's, copied */
    bool have_user_wopts;
    ms_writer_options wopts; /* what the writer was created with */
    uint32_t page_size;      /* QEMU's target page size */
    bool ignore_shared;      /* x-ignore-shared: MEM_SIZE carries an address */
    bool mapped_ram;         /* capability mapped-ram: pages at file offsets */
    bool have_uuid;          /* configuration/uuid was sent */
    uint8_t uuid[16];
    msi_buf config;          /* CONFIGURATION's subsections, as sent */
    size_t cur;              /* section being read (index), or SIZE_MAX */

    qi_section *sections;
    size_t nsections, sections_cap;
    qi_held *held;
    size_t nheld, held_cap;
    uint64_t held_bytes;

    qr_state *ram;
    qm_state *mfd;             /* channels added, or NULL */
    struct qmr_state *mram;    /* mapped-ram block headers, or NULL */
};

/* ---- import_qemu.c ---- */

/* Records the failure (first one wins) and returns @status. The message
 * reads "[section N 'name' instance I: ]WHAT at offset OFF: DETAIL". */
int qi_fail(qi *q, int status, uint64_t off, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
uint64_t qi_offset(const qi *q);
/* Makes @n bytes available at q->in.buf + q->in.pos; MS_ETRUNCATED or
 * MS_EIO (with the message set, naming @what at @off) otherwise. */
int qi_need(qi *q, size_t n, uint64_t off, const char *what);
int qi_u8(qi *q, uint8_t *v, uint64_t off, const char *what);
int qi_u16(qi *q, uint16_t *v, uint64_t off, const char *what);
int qi_u32(qi *q, uint32_t *v, uint64_t off, const char *what);
int qi_u64(qi *q, uint64_t *v, uint64_t off, const char *what);
/* Copies @n bytes (n <= QI_IN_CAP) to @dst. */
int qi_bytes(qi *q, void *dst, size_t n, uint64_t off, const char *what);
/* Reads a u8 length and that many bytes as a NUL-terminated string; a
 * length of 0 is refused. */
int qi_name(qi *q, char out[256], uint64_t off, const char *what);
/* Reads into @in until @n bytes are buffered or the input ends: 0, or -1
 * when the callback failed. Shared by the main stream and the channels. */
int qi_in_fill(qi_in *in, size_t n);
/* Moves the main stream forward to offset @to (positional input only). */
int qi_seek(qi *q, uint64_t to, uint64_t off, const char *what);

static inline uint16_t qi_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t qi_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t qi_be64(const uint8_t *p)
{
    return ((uint64_t)qi_be32(p) << 32) | qi_be32(p + 4);
}

/* ---- qemu_ram.c ---- */

int qr_new(qi *q);
void qr_free(qi *q);
/* Reads RAM items of one START/PART/END section up to its EOS. */
int qr_load(qi *q);
/* Writes what is still batched. */
int qr_finish(qi *q);
/* A page that arrived outside the "ram" section's items (multifd channel,
 * mapped-ram file): @data NULL for a zero page. Errors name @what at @off. */
int qr_put_page(qi *q, uint32_t bi, uint64_t addr, const uint8_t *data, uint64_t off,
                const char *what);
/* The block named @name, or UINT32_MAX. */
uint32_t qr_block_find(const qi *q, const char *name);
const char *qr_block_name(const qi *q, uint32_t bi);
uint64_t qr_block_length(const qi *q, uint32_t bi);
uint32_t qr_block_count(const qi *q);

/* ---- qemu_multifd.c ---- */

int qm_add(qi *q, ms_read_fn fn, void *ctx, const char *name);
void qm_free(qi *q);
/* Reads every channel's init record (after the CONFIGURATION section). */
int qm_open(qi *q);
/* A sync point of the main stream at @off: reads each channel, in id order,
 * up to and including its next SYNC packet, writing its pages. */
int qm_sync(qi *q, uint64_t off);
/* After QEMU's EOF: every channel must end with nothing left to write, and
 * the channels must account for every packet QEMU numbered. */
int qm_finish(qi *q);

/* ---- qemu_mapped_ram.c ---- */

/* Reads block @bi's MappedRamHeader from the main stream (right after its
 * MEM_SIZE entry) and moves the main stream past the block's pages. */
int qmr_block_header(qi *q, uint32_t bi, uint64_t off);
/* After the MEM_SIZE table: writes every block's pages, as the bitmaps say. */
int qmr_load(qi *q, uint64_t off);
void qmr_free(qi *q);

/* ---- qemu_vmsd.c ---- */

typedef struct qv_desc qv_desc;
/* Parses the JSON trailer. MS_ECORRUPT (message set) when it is not JSON
 * or lacks "devices"; MS_ENOMEM. */
int qv_parse(qi *q, const char *json, size_t len, uint64_t off, qv_desc **out);
void qv_free(qi *q, qv_desc *d);
/* QEMU's page size as the trailer gives it, or 0. */
uint64_t qv_page_size(const qv_desc *d);
/* Encodes the device state of a held section as CBOR into @out (see
 * docs/QEMU.md section 3.1): {"raw": bytes[, "parts": [lengths]][, "fields":
 * {...}]}; "parts" when @nparts > 0 (a section opened by START). @desc may
 * be NULL. *decoded tells whether the field map is present; *schema points
 * to the vmsd name from the trailer, or NULL. MS_ENOMEM only. */
int qv_encode(qi *q, const qv_desc *desc, const qi_section *s, const uint8_t *raw, size_t n,
              const uint64_t *parts, size_t nparts, msi_buf *out, bool *decoded,
              const char **schema);

#endif /* MSI_IMPORT_QEMU_H */
