/*
 * The QEMU importer's "ram" section (docs/QEMU.md, "RAM"): the MEM_SIZE
 * block table becomes regions; ZERO, PAGE, XBZRLE and COMPRESS_PAGE items
 * become ZERO and DATA pages; the previous copy of every page that XBZRLE
 * may refer to is kept in a sparse, unlinked temporary file.
 *
 * An item starts with a big-endian u64: the page offset within its block,
 * with flags in the bits below the page size (QEMU's migration/ram.c).
 * Pages also arrive from multifd channels (qemu_multifd.c, at the sync
 * points found here) and from mapped-ram files (qemu_mapped_ram.c): all go
 * through qr_put_page(), so that pass detection sees every page.
 */
#define _GNU_SOURCE /* fallocate, FALLOC_FL_PUNCH_HOLE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "qemu/import.h"
#include "migstream/writer.h"

/* RAM_SAVE_FLAG_* */
enum {
    F_ZERO = 0x002,
    F_MEM_SIZE = 0x004,
    F_PAGE = 0x008,
    F_EOS = 0x010,
    F_CONTINUE = 0x020,
    F_XBZRLE = 0x040,
    F_HOOK = 0x080,
    F_COMPRESS_PAGE = 0x100,
    F_MULTIFD_FLUSH = 0x200,
};

#define XBZRLE_ENCODING 0x01 /* ENCODING_FLAG_XBZRLE */

typedef struct qr_block {
    char *name;
    uint64_t length;     /* used length, bytes */
    uint64_t cache_base; /* where the block starts in the page file */
    uint64_t cache_high; /* end of the highest page written to the page file */
    uint64_t **sent;     /* pages sent in the current pass: bitmap chunks */
    size_t nchunks;
} qr_block;

struct qr_state {
    qr_block *blocks;
    uint32_t nblocks;
    bool have_table;
    uint32_t last_block; /* for CONTINUE; UINT32_MAX: none yet */
    uint32_t ps;
    uint8_t *page, *enc, *zbuf;
    size_t zbound;
    z_stream z;
    bool z_ready;
    int cache_fd;
    uint64_t cache_size;
    /* A run of zero pages not yet applied to the page file. */
    uint32_t zr_block;
    uint64_t zr_start, zr_end;
    /* Pass detection: which pages the current pass sent (SENT_* below),
     * or, past the memory budget, the position of the last page. */
    bool any_page;
    bool sent_overflow;
    size_t sent_bytes;
    uint32_t pos_block;
    uint64_t pos_addr;
    /* Where multifd channels sync: unknown until the first EOS or
     * MULTIFD_FLUSH item of the section (see qr_load). */
    enum { SYNC_UNKNOWN, SYNC_AT_EOS, SYNC_AT_FLUSH } sync_mode;
};

/* A pass's page bitmap: chunks of 2^15 pages (4 KiB), allocated when a page
 * of the chunk is sent, so memory follows the pages the stream holds. */
#define SENT_SHIFT 15
#define SENT_WORDS ((1u << SENT_SHIFT) / 64)
#define SENT_BUDGET (64u << 20)

int qr_new(qi *q)
{
    qr_state *r = msi_calloc(&q->alloc, 1, sizeof *r);
    if (!r)
        return qi_fail(q, MS_ENOMEM, qi_offset(q), "RAM", "out of memory");
    q->ram = r;
    r->last_block = UINT32_MAX;
    r->zr_block = UINT32_MAX;
    r->cache_fd = -1;
    r->ps = q->page_size;
    r->zbound = compressBound(r->ps);
    r->page = msi_alloc(&q->alloc, r->ps);
    r->enc = msi_alloc(&q->alloc, r->ps);
    r->zbuf = msi_alloc(&q->alloc, r->zbound);
    if (!r->page || !r->enc || !r->zbuf)
        return qi_fail(q, MS_ENOMEM, qi_offset(q), "RAM", "out of memory");
    return 0;
}

void qr_free(qi *q)
{
    qr_state *r = q->ram;
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nblocks; i++) {
        qr_block *b = &r->blocks[i];
        for (size_t c = 0; b->sent && c < b->nchunks; c++)
            msi_free(&q->alloc, b->sent[c]);
        msi_free(&q->alloc, b->sent);
        msi_free(&q->alloc, b->name);
    }
    msi_free(&q->alloc, r->blocks);
    msi_free(&q->alloc, r->page);
    msi_free(&q->alloc, r->enc);
    msi_free(&q->alloc, r->zbuf);
    if (r->z_ready)
        inflateEnd(&r->z);
    if (r->cache_fd >= 0)
        close(r->cache_fd);
    msi_free(&q->alloc, r);
    q->ram = NULL;
}

/* ------------------------------------------------------------ page file */

static int cache_open(qi *q, uint64_t off)
{
    qr_state *r = q->ram;
    if (r->cache_fd >= 0 || q->opts.no_page_cache)
        return 0;
    const char *dir = q->opts.tmpdir;
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    size_t n = strlen(dir) + 32;
    char *path = msi_alloc(&q->alloc, n);
    if (!path)
        return qi_fail(q, MS_ENOMEM, off, "RAM item", "out of memory");
    snprintf(path, n, "%s/migstream-qemu-XXXXXX", dir);
    r->cache_fd = mkstemp(path);
    int err = errno;
    if (r->cache_fd >= 0)
        unlink(path);
    msi_free(&q->alloc, path);
    if (r->cache_fd < 0)
        return qi_fail(q, MS_EIO, off, "RAM item",
                       "cannot create the temporary page file in %s: %s", dir, strerror(err));
    return 0;
}

static int cache_io_fail(qi *q, uint64_t off, const char *op, int err)
{
    return qi_fail(q, MS_EIO, off, "RAM item", "cannot %s the temporary page file: %s", op,
                   strerror(err));
}

/* Applies the pending zero run: only the part below what was ever written
 * needs a hole punched, the rest of the sparse file reads as zero already. */
static int cache_flush_zero(qi *q, uint64_t off)
{
    qr_state *r = q->ram;
    if (r->zr_block == UINT32_MAX)
        return 0;
    const qr_block *b = &r->blocks[r->zr_block];
    uint64_t lo = r->zr_start, hi = r->zr_end < b->cache_high ? r->zr_end : b->cache_high;
    r->zr_block = UINT32_MAX;
    if (r->cache_fd < 0 || lo >= hi)
        return 0;
    if (fallocate(r->cache_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)(b->cache_base + lo), (off_t)(hi - lo)) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return cache_io_fail(q, off, "punch a hole in", errno);
    memset(r->enc, 0, r->ps);
    for (uint64_t a = lo; a < hi; a += r->ps)
        if (pwrite(r->cache_fd, r->enc, r->ps, (off_t)(b->cache_base + a)) != (ssize_t)r->ps)
            return cache_io_fail(q, off, "write", errno ? errno : EIO);
    return 0;
}

static int cache_zero(qi *q, uint32_t bi, uint64_t addr, uint64_t off)
{
    qr_state *r = q->ram;
    if (r->cache_fd < 0)
        return 0; /* nothing written yet: the file will read as zero */
    if (r->zr_block == bi && r->zr_end == addr) {
        r->zr_end += r->ps;
        return 0;
    }
    int rc = cache_flush_zero(q, off);
    if (rc)
        return rc;
    r->zr_block = bi;
    r->zr_start = addr;
    r->zr_end = addr + r->ps;
    return 0;
}

static int cache_store(qi *q, uint32_t bi, uint64_t addr, const uint8_t *page, uint64_t off)
{
    qr_state *r = q->ram;
    int rc;
    if (q->opts.no_page_cache)
        return 0;
    if ((rc = cache_open(q, off)) || (rc = cache_flush_zero(q, off)))
        return rc;
    qr_block *b = &r->blocks[bi];
    size_t done = 0;
    while (done < r->ps) {
        ssize_t k =
            pwrite(r->cache_fd, page + done, r->ps - done, (off_t)(b->cache_base + addr + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return cache_io_fail(q, off, "write", k < 0 ? errno : ENOSPC);
        done += (size_t)k;
    }
    if (addr + r->ps > b->cache_high)
        b->cache_high = addr + r->ps;
    return 0;
}

/* The previous copy of a page: what QEMU's destination would hold. A page
 * never sent reads as zero, as it would in a fresh destination. */
static int cache_load(qi *q, uint32_t bi, uint64_t addr, uint8_t *page, uint64_t off)
{
    qr_state *r = q->ram;
    int rc;
    memset(page, 0, r->ps);
    if (r->cache_fd < 0)
        return 0;
    if ((rc = cache_flush_zero(q, off)))
        return rc;
    const qr_block *b = &r->blocks[bi];
    size_t done = 0;
    while (done < r->ps) {
        ssize_t k =
            pread(r->cache_fd, page + done, r->ps - done, (off_t)(b->cache_base + addr + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return cache_io_fail(q, off, "read", errno);
        if (k == 0)
            break; /* past the end of the sparse file: zero */
        done += (size_t)k;
    }
    return 0;
}

/* ------------------------------------------------------------- output */

/* Marks the page sent in this pass: 1 when the pass had sent it already,
 * 0 when not, -1 when the bitmap would exceed its memory budget. */
static int sent_mark(qi *q, qr_block *b, uint64_t page)
{
    qr_state *r = q->ram;
    size_t c = (size_t)(page >> SENT_SHIFT);
    if (!b->sent) {
        b->nchunks = (size_t)(((b->length / r->ps) + (1u << SENT_SHIFT) - 1) >> SENT_SHIFT);
        if (r->sent_bytes + b->nchunks * sizeof *b->sent > SENT_BUDGET ||
            !(b->sent = msi_calloc(&q->alloc, b->nchunks, sizeof *b->sent)))
            return -1;
        r->sent_bytes += b->nchunks * sizeof *b->sent;
    }
    if (!b->sent[c]) {
        if (r->sent_bytes + SENT_WORDS * 8 > SENT_BUDGET ||
            !(b->sent[c] = msi_calloc(&q->alloc, SENT_WORDS, 8)))
            return -1;
        r->sent_bytes += SENT_WORDS * 8;
    }
    uint64_t bit = page & ((1u << SENT_SHIFT) - 1), *w = &b->sent[c][bit / 64];
    uint64_t m = (uint64_t)1 << (bit % 64);
    if (*w & m)
        return 1;
    *w |= m;
    return 0;
}

static void sent_clear(qr_state *r)
{
    for (uint32_t i = 0; i < r->nblocks; i++)
        for (size_t c = 0; r->blocks[i].sent && c < r->blocks[i].nchunks; c++)
            if (r->blocks[i].sent[c])
                memset(r->blocks[i].sent[c], 0, SENT_WORDS * 8);
}

/* Every page item passes here, in stream order. A page the current pass
 * has sent already starts the next pass. (Compression threads reorder the
 * pages within a pass, so the position alone cannot tell; it is the
 * fallback when the bitmap outgrows its budget: within a pass QEMU walks
 * the blocks in table order and each block upwards.) */
static int note_page(qi *q, uint32_t bi, uint64_t addr, uint64_t off, const char *what)
{
    qr_state *r = q->ram;
    bool new_pass = false;
    if (!r->any_page) {
        /* Every pass becomes a round (FORMAT.md section 6.4), so the first
         * page opens round 0: a full pass, chosen by no tracker. */
        r->any_page = true;
        q->stats.ram_rounds = 1;
        if (ms_writer_round(q->w, &(ms_round){.number = 0}))
            return qi_fail(q, ms_writer_status(q->w), off, what, "writing the output: %s",
                           ms_writer_errmsg(q->w));
    } else if (r->sent_overflow) {
        new_pass = bi < r->pos_block || (bi == r->pos_block && addr <= r->pos_addr);
    }
    if (!r->sent_overflow) {
        int seen = sent_mark(q, &r->blocks[bi], addr / r->ps);
        if (seen < 0) {
            r->sent_overflow = true;
        } else if (seen) {
            new_pass = true;
            sent_clear(r);
            sent_mark(q, &r->blocks[bi], addr / r->ps);
        }
    }
    if (new_pass) {
        /* A new pass over RAM: QEMU sends what its dirty bitmap (KVM's dirty
         * log, or TCG's) marked, at target page granularity. The stream
         * does not say how many pages were dirty. */
        ms_round round = {.number = q->stats.ram_rounds, .tracker = MS_TRACKER_BITMAP,
                          .granularity = r->ps};
        q->stats.ram_rounds++;
        if (ms_writer_round(q->w, &round))
            return qi_fail(q, ms_writer_status(q->w), off, what, "writing the output: %s",
                           ms_writer_errmsg(q->w));
    }
    r->pos_block = bi;
    r->pos_addr = addr;
    return 0;
}

int qr_put_page(qi *q, uint32_t bi, uint64_t addr, const uint8_t *data, uint64_t off,
                const char *what)
{
    qr_state *r = q->ram;
    if (note_page(q, bi, addr, off, what))
        return q->status;
    uint64_t idx = addr / r->ps;
    int rc =
        data ? ms_writer_pages(q->w, bi, idx, 1, data) : ms_writer_zero_pages(q->w, bi, idx, 1);
    if (rc)
        return qi_fail(q, rc, off, what, "writing the output: %s", ms_writer_errmsg(q->w));
    return data ? cache_store(q, bi, addr, data, off) : cache_zero(q, bi, addr, off);
}

static int put_page(qi *q, uint32_t bi, uint64_t addr, const uint8_t *data, uint64_t off)
{
    return qr_put_page(q, bi, addr, data, off, "RAM item");
}

uint32_t qr_block_find(const qi *q, const char *name)
{
    const qr_state *r = q->ram;
    for (uint32_t i = 0; r && i < r->nblocks; i++)
        if (strcmp(r->blocks[i].name, name) == 0)
            return i;
    return UINT32_MAX;
}

const char *qr_block_name(const qi *q, uint32_t bi)
{
    return q->ram->blocks[bi].name;
}

uint64_t qr_block_length(const qi *q, uint32_t bi)
{
    return q->ram->blocks[bi].length;
}

uint32_t qr_block_count(const qi *q)
{
    return q->ram && q->ram->have_table ? q->ram->nblocks : 0;
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

static int read_block_table(qi *q, uint64_t total, uint64_t off)
{
    qr_state *r = q->ram;
    const char *what = "RAM MEM_SIZE block table";
    int rc;
    if (r->have_table)
        return qi_fail(q, MS_ECORRUPT, off, what, "a second MEM_SIZE item");
    r->have_table = true;
    if (total > q->opts.max_ram_bytes)
        return qi_fail(q, MS_ELIMIT, off, what, "total RAM 0x%llx exceeds max_ram_bytes (0x%llx)",
                       (unsigned long long)total, (unsigned long long)q->opts.max_ram_bytes);
    uint64_t left = total, base = 0;
    while (left > 0) {
        uint64_t boff = qi_offset(q), length, mr_addr;
        char name[256];
        if ((rc = qi_name(q, name, boff, "RAM block entry")) ||
            (rc = qi_u64(q, &length, boff, "RAM block entry")))
            return rc;
        if (q->ignore_shared && (rc = qi_u64(q, &mr_addr, boff, "RAM block entry")))
            return rc;
        if (length == 0 || length % r->ps)
            return qi_fail(q, MS_ECORRUPT, boff, "RAM block entry",
                           "block '%s' length 0x%llx is not a non-zero multiple of the page "
                           "size %u",
                           name, (unsigned long long)length, r->ps);
        if (length > left)
            return qi_fail(q, MS_ECORRUPT, boff, "RAM block entry",
                           "block '%s' length 0x%llx exceeds the 0x%llx bytes the MEM_SIZE "
                           "total leaves",
                           name, (unsigned long long)length, (unsigned long long)left);
        for (uint32_t i = 0; i < r->nblocks; i++)
            if (strcmp(r->blocks[i].name, name) == 0)
                return qi_fail(q, MS_ECORRUPT, boff, "RAM block entry",
                               "block '%s' is listed twice", name);
        if (r->nblocks == q->opts.max_ram_blocks)
            return qi_fail(q, MS_ELIMIT, boff, "RAM block entry",
                           "more than %u RAM blocks (max_ram_blocks)", q->opts.max_ram_blocks);
        qr_block *nb = msi_realloc(&q->alloc, r->blocks, (r->nblocks + 1) * sizeof *nb);
        if (!nb)
            return qi_fail(q, MS_ENOMEM, boff, "RAM block entry", "out of memory");
        r->blocks = nb;
        qr_block *b = &r->blocks[r->nblocks];
        memset(b, 0, sizeof *b);
        if (!(b->name = msi_strdup(&q->alloc, name)))
            return qi_fail(q, MS_ENOMEM, boff, "RAM block entry", "out of memory");
        b->length = length;
        b->cache_base = base;
        /* The block's offset says nothing about where the guest sees it
         * (pc.ram is split around the PCI hole), so no gpa is given. */
        ms_region reg = {.id = r->nblocks,
                         .name = b->name,
                         .has_gpa = false,
                         .gpa = 0,
                         .size = length,
                         .page_size = r->ps};
        r->nblocks++;
        if (ms_writer_add_region(q->w, &reg))
            return qi_fail(q, ms_writer_status(q->w), boff, "RAM block entry",
                           "block '%s': writing the output: %s", name, ms_writer_errmsg(q->w));
        base += length;
        left -= length;
        q->stats.ram_blocks++;
        q->stats.ram_bytes += length;
        /* mapped-ram: the block's header follows its entry; the next entry
         * comes after the space of its pages. */
        if (q->mapped_ram && (rc = qmr_block_header(q, r->nblocks - 1, boff)))
            return rc;
    }
    /* mapped-ram pages are complete in the file once the table is read. */
    return q->mapped_ram ? qmr_load(q, off) : 0;
}

static int read_compressed(qi *q, uint32_t bi, uint64_t addr, uint64_t off)
{
    qr_state *r = q->ram;
    uint32_t len;
    int rc = qi_u32(q, &len, off, "RAM item");
    if (rc)
        return rc;
    if (len == 0 || len > r->zbound)
        return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                       "COMPRESS_PAGE of %u bytes (1 to %zu expected)", len, r->zbound);
    if ((rc = qi_bytes(q, r->zbuf, len, off, "RAM item")))
        return rc;
    if (!r->z_ready) {
        memset(&r->z, 0, sizeof r->z);
        if (inflateInit(&r->z) != Z_OK)
            return qi_fail(q, MS_ENOMEM, off, "RAM item", "cannot set up zlib");
        r->z_ready = true;
    } else if (inflateReset(&r->z) != Z_OK) {
        return qi_fail(q, MS_ECOMPRESS, off, "RAM item", "cannot reset zlib");
    }
    r->z.next_in = r->zbuf;
    r->z.avail_in = len;
    r->z.next_out = r->page;
    r->z.avail_out = r->ps;
    int zrc = inflate(&r->z, Z_FINISH);
    if (zrc != Z_STREAM_END || r->z.avail_out != 0 || r->z.avail_in != 0)
        return qi_fail(q, MS_ECOMPRESS, off, "RAM item",
                       "COMPRESS_PAGE does not inflate to exactly one %u-byte page (zlib: %s, "
                       "%u bytes out)",
                       r->ps,
                       zrc == Z_STREAM_END ? "trailing data"
                       : r->z.msg          ? r->z.msg
                                           : "incomplete",
                       (unsigned)(r->ps - r->z.avail_out));
    q->stats.compressed_pages++;
    return put_page(q, bi, addr, r->page, off);
}

static int read_xbzrle(qi *q, uint32_t bi, uint64_t addr, uint64_t off)
{
    qr_state *r = q->ram;
    uint8_t enc;
    uint16_t len;
    int rc;
    if ((rc = qi_u8(q, &enc, off, "RAM item")) || (rc = qi_u16(q, &len, off, "RAM item")))
        return rc;
    if (enc != XBZRLE_ENCODING)
        return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                       "XBZRLE encoding byte 0x%02x (0x01 "
                       "expected)",
                       enc);
    if (len > r->ps)
        return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                       "XBZRLE data of %u bytes exceeds the "
                       "page size %u",
                       len, r->ps);
    if (q->opts.no_page_cache)
        return qi_fail(q, MS_EFEATURE, off, "RAM item",
                       "XBZRLE page, but the importer keeps no page file (no_page_cache)");
    if ((rc = qi_bytes(q, r->enc, len, off, "RAM item")) ||
        (rc = cache_load(q, bi, addr, r->page, off)))
        return rc;
    const char *why = xbzrle_decode(r->enc, len, r->page, r->ps);
    if (why)
        return qi_fail(q, MS_ECOMPRESS, off, "RAM item", "XBZRLE page: %s", why);
    q->stats.xbzrle_pages++;
    return put_page(q, bi, addr, r->page, off);
}

int qr_load(qi *q)
{
    qr_state *r = q->ram;
    const uint64_t mask = (uint64_t)r->ps - 1;
    for (;;) {
        uint64_t off = qi_offset(q), word;
        int rc = qi_u64(q, &word, off, "RAM item");
        if (rc)
            return rc;
        unsigned flags = (unsigned)(word & mask);
        uint64_t addr = word & ~mask;
        unsigned kind = flags & ~(unsigned)F_CONTINUE;
        switch (kind) {
        case F_EOS:
        case F_MULTIFD_FLUSH:
        case F_MEM_SIZE:
            if (flags & F_CONTINUE)
                return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                               "flags 0x%x: CONTINUE only goes with a page", flags);
            if (kind == F_MEM_SIZE) {
                if ((rc = read_block_table(q, addr, off)))
                    return rc;
                continue;
            }
            /* multifd channels sync with the main stream at EOS (QEMU 7.2,
             * and later versions for machine types up to 7.2:
             * multifd-flush-after-each-section) or at MULTIFD_FLUSH (8.0 and
             * later), which QEMU 8.0+ writes before the EOS of its setup
             * part: the first of the two in the stream tells. A destination
             * that syncs at EOS syncs at MULTIFD_FLUSH too. mapped-ram
             * channels write into the file and never sync here. */
            if (r->sync_mode == SYNC_UNKNOWN)
                r->sync_mode = kind == F_EOS ? SYNC_AT_EOS : SYNC_AT_FLUSH;
            if (!q->mapped_ram && (kind == F_MULTIFD_FLUSH || r->sync_mode == SYNC_AT_EOS)) {
                if (kind == F_MULTIFD_FLUSH && !q->mfd)
                    return qi_fail(q, MS_EFEATURE, off, "RAM item",
                                   "MULTIFD_FLUSH: this is a multifd migration, whose pages "
                                   "travel in its channel streams, and none was given");
                if (q->mfd && (rc = qm_sync(q, off)))
                    return rc;
            }
            if (kind == F_EOS)
                return 0;
            continue;
        case F_ZERO:
        case F_PAGE:
        case F_XBZRLE:
        case F_COMPRESS_PAGE:
            break;
        case F_HOOK:
            return qi_fail(q, MS_EFEATURE, off, "RAM item",
                           "flags 0x%x: RAM_SAVE_FLAG_HOOK (RDMA migration) is not supported",
                           flags);
        default:
            return qi_fail(q, MS_ECORRUPT, off, "RAM item", "flags 0x%x unknown", flags);
        }
        /* A page item: the block by name, or the last one named (CONTINUE). */
        uint32_t bi;
        if (q->mapped_ram)
            return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                           "a page item (flags 0x%x) in a mapped-ram stream, whose pages are "
                           "in the file's page areas",
                           flags);
        if (!r->have_table)
            return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                           "a page (flags 0x%x) before the MEM_SIZE block table", flags);
        if (flags & F_CONTINUE) {
            if (r->last_block == UINT32_MAX)
                return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                               "flags 0x%x: CONTINUE, but no block was named before", flags);
            bi = r->last_block;
        } else {
            char name[256];
            if ((rc = qi_name(q, name, off, "RAM item")))
                return rc;
            for (bi = 0; bi < r->nblocks && strcmp(r->blocks[bi].name, name) != 0; bi++)
                ;
            if (bi == r->nblocks)
                return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                               "unknown RAM block '%s' (not in the MEM_SIZE table)", name);
            r->last_block = bi;
        }
        if (addr >= r->blocks[bi].length)
            return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                           "page at 0x%llx lies outside block '%s' (used length 0x%llx)",
                           (unsigned long long)addr, r->blocks[bi].name,
                           (unsigned long long)r->blocks[bi].length);
        switch (kind) {
        case F_ZERO: {
            uint8_t fill;
            if ((rc = qi_u8(q, &fill, off, "RAM item")))
                return rc;
            if (fill != 0)
                return qi_fail(q, MS_ECORRUPT, off, "RAM item",
                               "ZERO page with fill byte 0x%02x (QEMU sends only 0)", fill);
            q->stats.zero_pages++;
            rc = put_page(q, bi, addr, NULL, off);
            break;
        }
        case F_PAGE:
            if ((rc = qi_bytes(q, r->page, r->ps, off, "RAM item")))
                return rc;
            q->stats.normal_pages++;
            rc = put_page(q, bi, addr, r->page, off);
            break;
        case F_XBZRLE:
            rc = read_xbzrle(q, bi, addr, off);
            break;
        default:
            rc = read_compressed(q, bi, addr, off);
            break;
        }
        if (rc)
            return rc;
    }
}

int qr_finish(qi *q)
{
    return q->ram ? cache_flush_zero(q, qi_offset(q)) : 0;
}
