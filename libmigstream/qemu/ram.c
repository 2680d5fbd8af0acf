/*
 * The "ram" section (ram.h; docs/QEMU.md section 2). An item starts with a
 * big-endian u64: the page offset within its block, with flags in the bits
 * below the page size (QEMU's migration/ram.c). Pages go to the sink,
 * decoded in its slot where they are decoded at all. Calls input.h,
 * sink.h and zlib only.
 */
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "qemu/ram.h"
#include "qemu/wire.h"

struct mq_ram {
    const ms_allocator *alloc;
    mq_error *err;
    mq_in *in;
    mq_sink *sink;
    mq_ram_config c;
    uint32_t last_block; /* for CONTINUE; UINT32_MAX: none yet */
    uint8_t *enc, *zbuf;
    size_t zbound;
    z_stream z;
    bool z_ready;
    /* Where multifd channels sync: unknown until the first EOS or
     * MULTIFD_FLUSH item of the section (see mq_ram_step). */
    enum { SYNC_UNKNOWN, SYNC_AT_EOS, SYNC_AT_FLUSH } sync_mode;
    uint64_t sync_off;
    bool eos_pending; /* an EOS that synced: the part ends at the next step */
    /* The MEM_SIZE table: read an entry a step. */
    bool have_table, in_table;
    uint64_t table_off, table_left;
    uint32_t block;
    uint64_t block_entry;
    mq_ram_counts n;
};

mq_ram *mq_ram_new(const ms_allocator *a, mq_error *err, mq_in *in, mq_sink *sink,
                   const mq_ram_config *c)
{
    mq_ram *r = msi_calloc(a, 1, sizeof *r);
    if (!r)
        return NULL;
    r->alloc = a;
    r->err = err;
    r->in = in;
    r->sink = sink;
    r->c = *c;
    r->last_block = UINT32_MAX;
    r->zbound = compressBound(c->page_size);
    r->enc = msi_alloc(a, c->page_size);
    r->zbuf = msi_alloc(a, r->zbound);
    if (!r->enc || !r->zbuf) {
        mq_ram_free(r);
        return NULL;
    }
    return r;
}

void mq_ram_free(mq_ram *r)
{
    if (!r)
        return;
    msi_free(r->alloc, r->enc);
    msi_free(r->alloc, r->zbuf);
    if (r->z_ready)
        inflateEnd(&r->z);
    msi_free(r->alloc, r);
}

uint64_t mq_ram_sync_offset(const mq_ram *r)
{
    return r->sync_off;
}

uint32_t mq_ram_last_block(const mq_ram *r, uint64_t *entry)
{
    *entry = r->block_entry;
    return r->block;
}

uint64_t mq_ram_table_offset(const mq_ram *r)
{
    return r->table_off;
}

const mq_ram_counts *mq_ram_counts_of(const mq_ram *r)
{
    return &r->n;
}

/* ------------------------------------------------------------- decoding */

/* QEMU's uleb128_decode_small: at most two bytes, a value below 2^14. */
static int uleb_small(const uint8_t *p, size_t avail, uint32_t *n)
{
    if (avail < 1)
        return -1;
    if (!(p[0] & 0x80)) {
        *n = p[0];
        return 1;
    }
    if (avail < 2 || (p[1] & 0x80))
        return -1;
    *n = (uint32_t)(p[0] & 0x7f) | ((uint32_t)p[1] << 7);
    return 2;
}

/* XBZRLE (migration/xbzrle.c): pairs of a run of unchanged bytes and a run
 * of new bytes (with its bytes), lengths as ULEB128. Only the first
 * unchanged run may be empty; a new run never is. Applied to @dst in place.
 * NULL on success, else what was wrong. */
static const char *xbzrle_decode(const uint8_t *src, size_t slen, uint8_t *dst, size_t dlen)
{
    size_t i = 0, d = 0;
    uint32_t count;
    while (i < slen) {
        int k;
        if (slen - i < 2 || (k = uleb_small(src + i, slen - i, &count)) < 0)
            return "unchanged-run length is malformed";
        if (i && !count)
            return "empty unchanged run after the first";
        i += (size_t)k;
        if (count > dlen - d)
            return "unchanged run passes the end of the page";
        d += count;
        if (slen - i < 2 || (k = uleb_small(src + i, slen - i, &count)) < 0)
            return "new-bytes run length is malformed";
        if (!count)
            return "empty new-bytes run";
        i += (size_t)k;
        if (count > dlen - d || count > slen - i)
            return "new-bytes run passes the end of the page or of the data";
        memcpy(dst + d, src + i, count);
        d += count;
        i += count;
    }
    return NULL;
}

/* One MEM_SIZE entry (u8 length + name, u64 used length, and with
 * x-ignore-shared u64 address), or the end of the table. */
static int table_entry(mq_ram *r)
{
    const uint32_t ps = r->c.page_size;
    if (!r->table_left) {
        r->in_table = false;
        return MQ_RAM_TABLE;
    }
    uint64_t boff = mq_in_offset(r->in), length, mr_addr;
    char name[256];
    int rc;
    if ((rc = mq_name(r->in, name, boff, "RAM block entry")) ||
        (rc = mq_u64(r->in, &length, boff, "RAM block entry")))
        return rc;
    if (r->c.ignore_shared && (rc = mq_u64(r->in, &mr_addr, boff, "RAM block entry")))
        return rc;
    if (length == 0 || length % ps)
        return mq_fail(r->err, MS_ECORRUPT, boff, "RAM block entry",
                       "block '%s' length 0x%llx is not a non-zero multiple of the page "
                       "size %u",
                       name, (unsigned long long)length, ps);
    if (length > r->table_left)
        return mq_fail(r->err, MS_ECORRUPT, boff, "RAM block entry",
                       "block '%s' length 0x%llx exceeds the 0x%llx bytes the MEM_SIZE "
                       "total leaves",
                       name, (unsigned long long)length, (unsigned long long)r->table_left);
    if ((rc = mq_sink_add_block(r->sink, name, length, boff)))
        return rc;
    r->table_left -= length;
    r->block = mq_sink_blocks(r->sink) - 1;
    r->block_entry = boff;
    r->n.blocks++;
    r->n.bytes += length;
    return MQ_RAM_BLOCK;
}

static int start_table(mq_ram *r, uint64_t total, uint64_t off)
{
    const char *what = "RAM MEM_SIZE block table";
    if (r->have_table)
        return mq_fail(r->err, MS_ECORRUPT, off, what, "a second MEM_SIZE item");
    r->have_table = true;
    if (total > r->c.max_ram_bytes)
        return mq_fail(r->err, MS_ELIMIT, off, what,
                       "total RAM 0x%llx exceeds max_ram_bytes (0x%llx)", (unsigned long long)total,
                       (unsigned long long)r->c.max_ram_bytes);
    r->in_table = true;
    r->table_off = off;
    r->table_left = total;
    return table_entry(r);
}

static int read_compressed(mq_ram *r, uint32_t bi, uint64_t addr, const mq_where *w)
{
    const uint32_t ps = r->c.page_size;
    const uint64_t off = w->offset;
    uint32_t len;
    int rc = mq_u32(r->in, &len, off, "RAM item");
    if (rc)
        return rc;
    if (len == 0 || len > r->zbound)
        return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                       "COMPRESS_PAGE of %u bytes (1 to %zu expected)", len, r->zbound);
    if ((rc = mq_bytes(r->in, r->zbuf, len, off, "RAM item")))
        return rc;
    if (!r->z_ready) {
        memset(&r->z, 0, sizeof r->z);
        if (inflateInit(&r->z) != Z_OK)
            return mq_fail(r->err, MS_ENOMEM, off, "RAM item", "cannot set up zlib");
        r->z_ready = true;
    } else if (inflateReset(&r->z) != Z_OK) {
        return mq_fail(r->err, MS_ECOMPRESS, off, "RAM item", "cannot reset zlib");
    }
    uint8_t *page = mq_sink_slot(r->sink, w);
    if (!page)
        return r->err->status;
    r->z.next_in = r->zbuf;
    r->z.avail_in = len;
    r->z.next_out = page;
    r->z.avail_out = ps;
    int zrc = inflate(&r->z, Z_FINISH);
    if (zrc != Z_STREAM_END || r->z.avail_out != 0 || r->z.avail_in != 0)
        return mq_fail(r->err, MS_ECOMPRESS, off, "RAM item",
                       "COMPRESS_PAGE does not inflate to exactly one %u-byte page (zlib: %s, "
                       "%u bytes out)",
                       ps,
                       zrc == Z_STREAM_END ? "trailing data"
                       : r->z.msg          ? r->z.msg
                                           : "incomplete",
                       (unsigned)(ps - r->z.avail_out));
    r->n.compressed_pages++;
    return mq_sink_page(r->sink, bi, addr, page, w);
}

static int read_xbzrle(mq_ram *r, uint32_t bi, uint64_t addr, const mq_where *w)
{
    const uint32_t ps = r->c.page_size;
    const uint64_t off = w->offset;
    uint8_t enc;
    uint16_t len;
    int rc;
    if ((rc = mq_u8(r->in, &enc, off, "RAM item")) || (rc = mq_u16(r->in, &len, off, "RAM item")))
        return rc;
    if (enc != MQ_XBZRLE_ENCODING)
        return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                       "XBZRLE encoding byte 0x%02x (0x01 expected)", enc);
    if (len > ps)
        return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                       "XBZRLE data of %u bytes exceeds the page size %u", len, ps);
    if (!r->c.page_file)
        return mq_fail(r->err, MS_EFEATURE, off, "RAM item",
                       "XBZRLE page, but the importer keeps no page file (no_page_cache)");
    if ((rc = mq_bytes(r->in, r->enc, len, off, "RAM item")))
        return rc;
    uint8_t *page = mq_sink_slot(r->sink, w);
    if (!page)
        return r->err->status;
    if ((rc = mq_sink_previous(r->sink, bi, addr, page, off)))
        return rc;
    const char *why = xbzrle_decode(r->enc, len, page, ps);
    if (why)
        return mq_fail(r->err, MS_ECOMPRESS, off, "RAM item", "XBZRLE page: %s", why);
    r->n.xbzrle_pages++;
    mq_where again = *w;
    again.again = true;
    return mq_sink_page(r->sink, bi, addr, page, &again);
}

/* A page item: the block by name, or the last one named (CONTINUE). */
static int read_page(mq_ram *r, unsigned flags, uint64_t addr, uint64_t off)
{
    const unsigned kind = flags & ~(unsigned)MQ_RAM_FLAG_CONTINUE;
    const mq_where w = {.what = "RAM item", .offset = off, .origin = MQ_ORIGIN_RAM};
    uint32_t bi;
    int rc;
    if (r->c.mapped_ram)
        return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                       "a page item (flags 0x%x) in a mapped-ram stream, whose pages are "
                       "in the file's page areas",
                       flags);
    if (!r->have_table)
        return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                       "a page (flags 0x%x) before the MEM_SIZE block table", flags);
    if (flags & MQ_RAM_FLAG_CONTINUE) {
        if (r->last_block == UINT32_MAX)
            return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                           "flags 0x%x: CONTINUE, but no block was named before", flags);
        bi = r->last_block;
    } else {
        char name[256];
        if ((rc = mq_name(r->in, name, off, "RAM item")))
            return rc;
        if ((bi = mq_sink_find_block(r->sink, name)) == UINT32_MAX)
            return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                           "unknown RAM block '%s' (not in the MEM_SIZE table)", name);
        r->last_block = bi;
    }
    const uint64_t length = mq_sink_block_length(r->sink, bi);
    if (addr >= length)
        return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                       "page at 0x%llx lies outside block '%s' (used length 0x%llx)",
                       (unsigned long long)addr, mq_sink_block_name(r->sink, bi),
                       (unsigned long long)length);
    switch (kind) {
    case MQ_RAM_FLAG_ZERO: {
        uint8_t fill;
        if ((rc = mq_u8(r->in, &fill, off, "RAM item")))
            return rc;
        if (fill != 0)
            return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                           "ZERO page with fill byte 0x%02x (QEMU sends only 0)", fill);
        r->n.zero_pages++;
        return mq_sink_page(r->sink, bi, addr, NULL, &w);
    }
    case MQ_RAM_FLAG_PAGE: {
        uint8_t *page = mq_sink_slot(r->sink, &w);
        if (!page)
            return r->err->status;
        if ((rc = mq_bytes(r->in, page, r->c.page_size, off, "RAM item")))
            return rc;
        r->n.normal_pages++;
        return mq_sink_page(r->sink, bi, addr, page, &w);
    }
    case MQ_RAM_FLAG_XBZRLE:
        return read_xbzrle(r, bi, addr, &w);
    default:
        return read_compressed(r, bi, addr, &w);
    }
}

int mq_ram_step(mq_ram *r)
{
    if (r->eos_pending) {
        r->eos_pending = false;
        return MQ_RAM_EOS;
    }
    if (r->in_table)
        return table_entry(r);
    const uint64_t mask = (uint64_t)r->c.page_size - 1;
    uint64_t off = mq_in_offset(r->in), word;
    int rc = mq_u64(r->in, &word, off, "RAM item");
    if (rc)
        return rc;
    unsigned flags = (unsigned)(word & mask);
    uint64_t addr = word & ~mask;
    unsigned kind = flags & ~(unsigned)MQ_RAM_FLAG_CONTINUE;
    switch (kind) {
    case MQ_RAM_FLAG_EOS:
    case MQ_RAM_FLAG_MULTIFD_FLUSH:
    case MQ_RAM_FLAG_MEM_SIZE:
        if (flags & MQ_RAM_FLAG_CONTINUE)
            return mq_fail(r->err, MS_ECORRUPT, off, "RAM item",
                           "flags 0x%x: CONTINUE only goes with a page", flags);
        if (kind == MQ_RAM_FLAG_MEM_SIZE)
            return start_table(r, addr, off);
        /* multifd channels sync with the main stream at EOS (QEMU 7.2, and
         * later versions for machine types up to 7.2:
         * multifd-flush-after-each-section) or at MULTIFD_FLUSH (8.0 and
         * later), which QEMU 8.0+ writes before the EOS of its setup part:
         * the first of the two in the stream tells. A destination that
         * syncs at EOS syncs at MULTIFD_FLUSH too. mapped-ram channels write
         * into the file and never sync here. */
        if (r->sync_mode == SYNC_UNKNOWN)
            r->sync_mode = kind == MQ_RAM_FLAG_EOS ? SYNC_AT_EOS : SYNC_AT_FLUSH;
        if (!r->c.mapped_ram &&
            (kind == MQ_RAM_FLAG_MULTIFD_FLUSH || r->sync_mode == SYNC_AT_EOS)) {
            if (kind == MQ_RAM_FLAG_MULTIFD_FLUSH && !r->c.channels)
                return mq_fail(r->err, MS_EFEATURE, off, "RAM item",
                               "MULTIFD_FLUSH: this is a multifd migration, whose pages "
                               "travel in its channel streams, and none was given");
            if (r->c.channels) {
                r->sync_off = off;
                r->eos_pending = kind == MQ_RAM_FLAG_EOS;
                return MQ_RAM_SYNC;
            }
        }
        return kind == MQ_RAM_FLAG_EOS ? MQ_RAM_EOS : MQ_RAM_ITEM;
    case MQ_RAM_FLAG_ZERO:
    case MQ_RAM_FLAG_PAGE:
    case MQ_RAM_FLAG_XBZRLE:
    case MQ_RAM_FLAG_COMPRESS_PAGE:
        rc = read_page(r, flags, addr, off);
        return rc < 0 ? rc : MQ_RAM_ITEM;
    case MQ_RAM_FLAG_HOOK:
        return mq_fail(r->err, MS_EFEATURE, off, "RAM item",
                       "flags 0x%x: RAM_SAVE_FLAG_HOOK (RDMA migration) is not supported", flags);
    default:
        return mq_fail(r->err, MS_ECORRUPT, off, "RAM item", "flags 0x%x unknown", flags);
    }
}
