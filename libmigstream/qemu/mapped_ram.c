/*
 * mapped-ram pages (mapped_ram.h; docs/QEMU.md section 2.2): with the
 * mapped-ram capability (QEMU 9.0+, "file:" migration) each MEM_SIZE entry
 * is followed by a MappedRamHeader, and every page of the block has a fixed
 * place in the file; a bitmap says which pages the file holds, the others
 * are zero. The main stream goes on after the space of the block's pages,
 * so reading it needs positional reads. Calls input.h and sink.h only.
 *
 * MappedRamHeader (QEMU's migration/ram.c), packed, big-endian:
 *   u32 version (1), u64 page_size, u64 bitmap_offset, u64 pages_offset.
 * The bitmap is an array of the source host's unsigned longs, one bit per
 * page: on the 64-bit little-endian hosts QEMU migrates from in practice,
 * bit i is bit (i % 8) of byte i / 8, and its size is a multiple of 8.
 */
#include <stdio.h>
#include <string.h>

#include "qemu/mapped_ram.h"
#include "qemu/wire.h"

#define MR_CHUNK 4096u /* bitmap bytes read at a time */

typedef struct mr_block {
    uint64_t bitmap_offset, pages_offset;
} mr_block;

struct mq_mram {
    const ms_allocator *alloc;
    mq_error *err;
    mr_block *blocks;
    size_t n;
    uint8_t *bits;
    /* Where the pages are read: block, bitmap bytes before the chunk held,
     * the chunk's size and its next bit. */
    uint32_t bi;
    uint64_t done;
    size_t chunk, bit;
    bool loaded;
    uint64_t normal, zero;
    char what[300];
};

void mq_mram_free(mq_mram *s)
{
    if (!s)
        return;
    msi_free(s->alloc, s->blocks);
    msi_free(s->alloc, s->bits);
    msi_free(s->alloc, s);
}

void mq_mram_counts(const mq_mram *s, uint64_t *normal, uint64_t *zero)
{
    *normal = s ? s->normal : 0;
    *zero = s ? s->zero : 0;
}

static const char *where(mq_mram *s, const mq_sink *sink, uint32_t bi)
{
    snprintf(s->what, sizeof s->what, "mapped-ram block '%s'", mq_sink_block_name(sink, bi));
    return s->what;
}

/* Bitmap bytes of a block of @pages pages: whole host longs. */
static uint64_t bitmap_size(uint64_t pages)
{
    return (pages + 63) / 64 * 8;
}

int mq_mram_header(mq_mram **sp, const ms_allocator *a, mq_error *err, mq_in *in,
                   const mq_sink *sink, uint32_t bi)
{
    if (!*sp) {
        if (!(*sp = msi_calloc(a, 1, sizeof **sp)))
            return mq_fail(err, MS_ENOMEM, mq_in_offset(in), "RAM block entry", "out of memory");
        (*sp)->alloc = a;
        (*sp)->err = err;
    }
    mq_mram *s = *sp;
    const uint64_t off = mq_in_offset(in), ps = mq_sink_page_size(sink),
                   length = mq_sink_block_length(sink, bi);
    const char *what = where(s, sink, bi);
    uint8_t h[MQ_MR_HEADER_SIZE];
    int rc = mq_bytes(in, h, sizeof h, off, what);
    if (rc)
        return rc;
    uint32_t version = mq_be32(h + MQ_MR_H_VERSION);
    uint64_t page_size = mq_be64(h + MQ_MR_H_PAGE_SIZE), bm = mq_be64(h + MQ_MR_H_BITMAP_OFFSET),
             pages = mq_be64(h + MQ_MR_H_PAGES_OFFSET);
    if (version != MQ_MR_VERSION)
        return mq_fail(err, version > MQ_MR_VERSION ? MS_EVERSION : MS_ECORRUPT, off, what,
                       "MappedRamHeader version %u (only 1 is read)", version);
    if (page_size != ps)
        return mq_fail(err, MS_ECORRUPT, off, what,
                       "page size %llu, but the stream's target page size is %llu",
                       (unsigned long long)page_size, (unsigned long long)ps);
    const uint64_t bsize = bitmap_size(length / ps), hdr_end = off + MQ_MR_HEADER_SIZE;
    if (pages % ps)
        return mq_fail(err, MS_ECORRUPT, off, what,
                       "pages_offset 0x%llx is not aligned to the page size %llu",
                       (unsigned long long)pages, (unsigned long long)ps);
    /* QEMU puts the bitmap right after the header and the pages after the
     * bitmap; anything else would make the areas overlap. */
    if (bm < hdr_end || bm > UINT64_MAX - bsize || bm + bsize > pages)
        return mq_fail(err, MS_ECORRUPT, off, what,
                       "bitmap of 0x%llx bytes at 0x%llx does not lie between the header's end "
                       "(0x%llx) and pages_offset 0x%llx",
                       (unsigned long long)bsize, (unsigned long long)bm,
                       (unsigned long long)hdr_end, (unsigned long long)pages);
    if (pages > (uint64_t)INT64_MAX - length)
        return mq_fail(err, MS_ECORRUPT, off, what,
                       "pages_offset 0x%llx: the block's pages would end past any file",
                       (unsigned long long)pages);
    if (bi != s->n)
        return mq_fail(err, MS_ECORRUPT, off, what, "header out of order");
    mr_block *nb = msi_realloc(a, s->blocks, (s->n + 1) * sizeof *nb);
    if (!nb)
        return mq_fail(err, MS_ENOMEM, off, what, "out of memory");
    s->blocks = nb;
    s->blocks[s->n++] = (mr_block){.bitmap_offset = bm, .pages_offset = pages};
    /* QEMU's loader seeks past the page area to the next item. */
    return mq_in_seek(in, pages + length, off, what);
}

int mq_mram_step(mq_mram *s, mq_in *in, mq_sink *sink, uint64_t off)
{
    if (!s)
        return 1; /* no block at all */
    const uint32_t ps = mq_sink_page_size(sink);
    if (!s->bits && !(s->bits = msi_alloc(s->alloc, MR_CHUNK)))
        return mq_fail(s->err, MS_ENOMEM, off, "mapped-ram", "out of memory");
    unsigned budget = MQ_MRAM_STEP_PAGES;
    while (s->bi < s->n) {
        const mr_block *b = &s->blocks[s->bi];
        const uint64_t npages = mq_sink_block_length(sink, s->bi) / ps, bsize = bitmap_size(npages);
        const char *what = where(s, sink, s->bi);
        int rc;
        if (!s->loaded) {
            if (s->done >= bsize) {
                s->bi++;
                s->done = 0;
                continue;
            }
            s->chunk = bsize - s->done < MR_CHUNK ? (size_t)(bsize - s->done) : MR_CHUNK;
            if ((rc = mq_in_pread(in, s->bits, s->chunk, b->bitmap_offset + s->done, what,
                                  "the bitmap")))
                return rc;
            s->loaded = true;
            s->bit = 0;
        }
        if (s->bit == s->chunk * 8) {
            s->done += MR_CHUNK;
            s->loaded = false;
            continue;
        }
        /* Stop where a record is complete, so that the open one holds a
         * page or so, not most of a step. */
        if (!budget || mq_sink_ready(sink))
            return 0;
        const size_t i = s->bit++;
        const uint64_t page = s->done * 8 + i;
        const bool set = s->bits[i / 8] >> (i % 8) & 1;
        if (page >= npages) {
            if (set)
                return mq_fail(s->err, MS_ECORRUPT, b->bitmap_offset + s->done + i / 8, what,
                               "the bitmap marks page %llu, past the block's %llu pages",
                               (unsigned long long)page, (unsigned long long)npages);
            continue;
        }
        budget--;
        const uint64_t addr = page * ps, at = b->pages_offset + addr;
        const mq_where w = {.what = what, .offset = at, .origin = MQ_ORIGIN_MAPPED_RAM};
        if (!set) {
            s->zero++;
            rc = mq_sink_page(sink, s->bi, addr, NULL, &w);
        } else {
            char obj[64];
            snprintf(obj, sizeof obj, "page %llu", (unsigned long long)page);
            uint8_t *slot = mq_sink_slot(sink, &w);
            if (!slot)
                return s->err->status;
            if ((rc = mq_in_pread(in, slot, ps, at, what, obj)))
                return rc;
            s->normal++;
            rc = mq_sink_page(sink, s->bi, addr, slot, &w);
        }
        if (rc)
            return rc;
    }
    return 1;
}
