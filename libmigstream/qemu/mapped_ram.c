/*
 * The QEMU importer's mapped-ram pages (docs/QEMU.md, "mapped-ram"): with
 * the mapped-ram capability (QEMU 9.0+, "file:" migration) each MEM_SIZE
 * entry is followed by a MappedRamHeader, and every page of the block has a
 * fixed place in the file; a bitmap says which pages the file holds, the
 * others are zero. The main stream goes on after the space of the block's
 * pages, so reading it needs positional reads.
 *
 * MappedRamHeader (QEMU's migration/ram.c), packed, big-endian:
 *   u32 version (1), u64 page_size, u64 bitmap_offset, u64 pages_offset.
 * The bitmap is an array of the source host's unsigned longs, one bit per
 * page: on the 64-bit little-endian hosts QEMU migrates from in practice,
 * bit i is bit (i % 8) of byte i / 8, and its size is a multiple of 8.
 */
#include <stdio.h>
#include <string.h>

#include "qemu/import.h"

#define MR_VERSION 1u
#define MR_HEADER_SIZE 28u
#define MR_CHUNK 4096u /* bitmap bytes read at a time */

typedef struct qmr_block {
    uint64_t bitmap_offset, pages_offset;
} qmr_block;

struct qmr_state {
    qmr_block *blocks;
    size_t n;
    uint8_t *bits, *page;
    char what[300];
};

void qmr_free(qi *q)
{
    struct qmr_state *s = q->mram;
    if (!s)
        return;
    msi_free(&q->alloc, s->blocks);
    msi_free(&q->alloc, s->bits);
    msi_free(&q->alloc, s->page);
    msi_free(&q->alloc, s);
    q->mram = NULL;
}

static const char *where(qi *q, uint32_t bi)
{
    snprintf(q->mram->what, sizeof q->mram->what, "mapped-ram block '%s'", qr_block_name(q, bi));
    return q->mram->what;
}

/* Bitmap bytes of a block of @pages pages: whole host longs. */
static uint64_t bitmap_size(uint64_t pages)
{
    return (pages + 63) / 64 * 8;
}

int qmr_block_header(qi *q, uint32_t bi, uint64_t boff)
{
    (void)boff;
    if (!q->mram && !(q->mram = msi_calloc(&q->alloc, 1, sizeof *q->mram)))
        return qi_fail(q, MS_ENOMEM, qi_offset(q), "RAM block entry", "out of memory");
    struct qmr_state *s = q->mram;
    const uint64_t off = qi_offset(q), ps = q->page_size, length = qr_block_length(q, bi);
    const char *what = where(q, bi);
    uint8_t h[MR_HEADER_SIZE];
    int rc = qi_bytes(q, h, sizeof h, off, what);
    if (rc)
        return rc;
    uint32_t version = qi_be32(h);
    uint64_t page_size = qi_be64(h + 4), bm = qi_be64(h + 12), pages = qi_be64(h + 20);
    if (version != MR_VERSION)
        return qi_fail(q, version > MR_VERSION ? MS_EVERSION : MS_ECORRUPT, off, what,
                       "MappedRamHeader version %u (only 1 is read)", version);
    if (page_size != ps)
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "page size %llu, but the stream's target page size is %llu",
                       (unsigned long long)page_size, (unsigned long long)ps);
    const uint64_t bsize = bitmap_size(length / ps), hdr_end = off + MR_HEADER_SIZE;
    if (pages % ps)
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "pages_offset 0x%llx is not aligned to the page size %llu",
                       (unsigned long long)pages, (unsigned long long)ps);
    /* QEMU puts the bitmap right after the header and the pages after the
     * bitmap; anything else would make the areas overlap. */
    if (bm < hdr_end || bm > UINT64_MAX - bsize || bm + bsize > pages)
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "bitmap of 0x%llx bytes at 0x%llx does not lie between the header's end "
                       "(0x%llx) and pages_offset 0x%llx",
                       (unsigned long long)bsize, (unsigned long long)bm,
                       (unsigned long long)hdr_end, (unsigned long long)pages);
    if (pages > (uint64_t)INT64_MAX - length)
        return qi_fail(q, MS_ECORRUPT, off, what,
                       "pages_offset 0x%llx: the block's pages would end past any file",
                       (unsigned long long)pages);
    if (bi != s->n)
        return qi_fail(q, MS_ECORRUPT, off, what, "header out of order");
    qmr_block *nb = msi_realloc(&q->alloc, s->blocks, (s->n + 1) * sizeof *nb);
    if (!nb)
        return qi_fail(q, MS_ENOMEM, off, what, "out of memory");
    s->blocks = nb;
    s->blocks[s->n++] = (qmr_block){.bitmap_offset = bm, .pages_offset = pages};
    /* QEMU's loader seeks past the page area to the next item. */
    return qi_seek(q, pages + length, off, what);
}

/* Reads @len bytes at @at of the main stream's file, or fails naming @what. */
static int read_at(qi *q, void *buf, size_t len, uint64_t at, const char *what, const char *obj)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = q->in.pread(q->in.pread_ctx, (uint8_t *)buf + done, len - done, at + done);
        if (k < 0)
            return qi_fail(q, MS_EIO, at, what, "reading %s failed", obj);
        if (k == 0)
            return qi_fail(q, MS_ETRUNCATED, at, what,
                           "%s (%zu bytes at file offset 0x%llx) lies past the end of the file",
                           obj, len, (unsigned long long)at);
        if ((size_t)k > len - done)
            return qi_fail(q, MS_EIO, at, what, "reading %s: the callback claims too much", obj);
        done += (size_t)k;
    }
    return 0;
}

int qmr_load(qi *q, uint64_t off)
{
    struct qmr_state *s = q->mram;
    const uint32_t ps = q->page_size;
    q->stats.mapped_ram = true;
    if (!s)
        return 0; /* no block at all */
    if (!s->bits && !(s->bits = msi_alloc(&q->alloc, MR_CHUNK)))
        return qi_fail(q, MS_ENOMEM, off, "mapped-ram", "out of memory");
    if (!s->page && !(s->page = msi_alloc(&q->alloc, ps)))
        return qi_fail(q, MS_ENOMEM, off, "mapped-ram", "out of memory");
    for (uint32_t bi = 0; bi < s->n; bi++) {
        const qmr_block *b = &s->blocks[bi];
        const uint64_t npages = qr_block_length(q, bi) / ps, bsize = bitmap_size(npages);
        const char *what = where(q, bi);
        int rc;
        for (uint64_t done = 0; done < bsize; done += MR_CHUNK) {
            size_t n = bsize - done < MR_CHUNK ? (size_t)(bsize - done) : MR_CHUNK;
            if ((rc = read_at(q, s->bits, n, b->bitmap_offset + done, what, "the bitmap")))
                return rc;
            for (size_t i = 0; i < n * 8; i++) {
                uint64_t page = done * 8 + i;
                bool set = s->bits[i / 8] >> (i % 8) & 1;
                if (page >= npages) {
                    if (set)
                        return qi_fail(q, MS_ECORRUPT, b->bitmap_offset + done + i / 8, what,
                                       "the bitmap marks page %llu, past the block's %llu "
                                       "pages",
                                       (unsigned long long)page, (unsigned long long)npages);
                    continue;
                }
                uint64_t addr = page * ps, at = b->pages_offset + addr;
                if (!set) {
                    q->stats.zero_pages++;
                    rc = qr_put_page(q, bi, addr, NULL, at, what);
                } else {
                    char obj[64];
                    snprintf(obj, sizeof obj, "page %llu", (unsigned long long)page);
                    if ((rc = read_at(q, s->page, ps, at, what, obj)))
                        return rc;
                    q->stats.normal_pages++;
                    rc = qr_put_page(q, bi, addr, s->page, at, what);
                }
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}
