/*
 * The page sink (sink.h): the block table, pass detection, the page file
 * and the records the QEMU source hands out. Calls input.h and format/
 * only; the parts that read pages (ram.c, multifd.c, mapped_ram.c) call
 * it, never the other way round.
 *
 * The records wait in a FIFO whose PAGES records keep their extents and
 * data in two arenas, one record after the other: the open record (the
 * last) grows at the arenas' end, and once every sealed record has been
 * handed out, the open one moves back to the arenas' start. A page decoded
 * into mq_sink_slot() thus lies where its record wants it, whichever record
 * that turns out to be. (The writer then reads each page from the arena
 * rather than from a page just decoded: the price of handing out whole
 * records, a read from the second-level cache per page.)
 */
#define _GNU_SOURCE /* fallocate, FALLOC_FL_PUNCH_HOLE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tree.h"
#include "format/payload.h"
#include "qemu/sink.h"
#include "qemu/wire.h"

/* A pass's page bitmap: chunks of 2^15 pages (4 KiB), allocated when a page
 * of the chunk is sent, so memory follows the pages the stream holds. Each
 * chunk starts with the number of the pass it holds bits of: a new pass
 * only changes the number, and a chunk is cleared when a page of it is sent
 * again, so that a pass costs what it sends, however large the bitmap. */
#define SENT_SHIFT 15
#define SENT_WORDS ((1u << SENT_SHIFT) / 64)
#define SENT_BUDGET (64u << 20)

/* XBZRLE pages: QEMU sends them for pages that change again and again, and
 * each needs its previous copy. A page that comes as XBZRLE a second time
 * has its latest copy kept in memory (RECENT_BYTES, one place per page
 * number, so pages that follow each other do not evict each other) instead
 * of going through the page file: it is written there only when another
 * page takes its place. A live guest's working set then never touches the
 * file, and a page that came as XBZRLE once costs no memory. */
#define RECENT_BYTES (1u << 20)

enum { RECENT_EMPTY, RECENT_SEEN, RECENT_KEPT };

typedef struct recent_page {
    uint32_t block;
    uint64_t addr;
    uint8_t state; /* SEEN: came as XBZRLE, latest copy in the file;
                      KEPT: latest copy in recent_data */
} recent_page;

typedef struct sink_block {
    char *name;
    uint64_t length;     /* used length, bytes */
    uint64_t entry;      /* offset of its MEM_SIZE entry */
    uint64_t cache_base; /* where the block starts in the page file */
    uint64_t cache_high; /* end of the highest page written to the page file */
    uint64_t **sent;     /* pages sent in the current pass: bitmap chunks, each
                            the pass number and SENT_WORDS words */
    size_t nchunks;
} sink_block;

/* A block's place in the tree of names (key: the name, by strcmp). */
typedef struct block_name {
    msi_tree_node node;
    const char *name; /* the block's own copy */
    uint32_t index;
} block_name;

/* A record in the FIFO. */
typedef struct sink_out {
    uint16_t type; /* MS_REC_REGIONS, MS_REC_ROUND or MS_REC_PAGES */
    bool open;     /* PAGES still taking pages */
    uint64_t offset;
    uint64_t origin;
    uint32_t block;
    size_t ext_at, next;        /* extents k->ext[ext_at, ext_at + next) */
    size_t page_at, data_pages; /* DATA pages k->data[page_at, ...), in pages */
    uint64_t pages;             /* every page of the record */
    ms_round round;
    char context[sizeof(((mq_error *)0)->context)];
    char what[320];
} sink_out;

struct mq_sink {
    const ms_allocator *alloc;
    mq_error *err;
    uint32_t ps;
    uint32_t max_blocks;
    bool page_file;
    const char *tmpdir;

    sink_block *blocks;
    ms_region *regions;
    uint32_t nblocks;
    msi_tree_node *names; /* block_name nodes: an item names its block */

    /* The page file; a run of zero pages not yet applied to it, or a run
     * of DATA pages not yet written to it (contiguous in the block and in
     * the arena, k->data[st_at, st_at + st_n), from record q[st_rec]):
     * one call writes the run, and only when something else comes. */
    int cache_fd;
    uint8_t *zero_page;
    uint32_t zr_block;
    uint64_t zr_start, zr_end;
    uint32_t st_block;
    uint64_t st_addr;
    size_t st_at, st_n, st_rec;
    recent_page *recent;  /* RECENT_BYTES / page size places, once an XBZRLE page came */
    uint8_t *recent_data; /* once a page is kept */
    size_t nrecent;

    /* Pass detection: which pages the current pass sent, or, past the
     * memory budget, the position of the last page. */
    bool any_page;
    bool sent_overflow;
    size_t sent_bytes;
    uint64_t pass; /* the current pass, as the bitmap chunks number it */
    uint32_t pos_block;
    uint64_t pos_addr;
    uint64_t rounds;

    /* The FIFO and its arenas. */
    sink_out *q;
    size_t qhead, qlen, qcap;
    ms_extent *ext;
    uint64_t *eoff; /* offset of the item of each extent's first page */
    size_t ext_len, ext_cap;
    uint8_t *data;
    uint64_t *doff;            /* offset of the item of each DATA page */
    size_t data_len, data_cap; /* in pages */

    size_t last; /* q[last]: the record handed out last, for mq_sink_blame */
};

mq_sink *mq_sink_new(const ms_allocator *a, mq_error *err, const mq_sink_config *c)
{
    mq_sink *k = msi_calloc(a, 1, sizeof *k);
    if (!k)
        return NULL;
    k->alloc = a;
    k->err = err;
    k->ps = c->page_size;
    k->max_blocks = c->max_blocks;
    k->page_file = c->page_file;
    k->tmpdir = c->tmpdir;
    k->cache_fd = -1;
    k->zr_block = UINT32_MAX;
    return k;
}

static void free_name(msi_tree_node *n, void *alloc)
{
    msi_free(alloc, n);
}

/* Orders block_name nodes by name; @key is a const char *. */
static int name_cmp(const void *key, const msi_tree_node *n)
{
    return strcmp(key, ((const block_name *)n)->name);
}

void mq_sink_free(mq_sink *k)
{
    if (!k)
        return;
    for (uint32_t i = 0; i < k->nblocks; i++) {
        sink_block *b = &k->blocks[i];
        for (size_t c = 0; b->sent && c < b->nchunks; c++)
            msi_free(k->alloc, b->sent[c]);
        msi_free(k->alloc, b->sent);
        msi_free(k->alloc, b->name);
    }
    msi_tree_each_post(k->names, free_name, (void *)k->alloc);
    msi_free(k->alloc, k->blocks);
    msi_free(k->alloc, k->regions);
    msi_free(k->alloc, k->zero_page);
    msi_free(k->alloc, k->recent);
    msi_free(k->alloc, k->recent_data);
    if (k->cache_fd >= 0)
        close(k->cache_fd);
    msi_free(k->alloc, k->q);
    msi_free(k->alloc, k->ext);
    msi_free(k->alloc, k->eoff);
    msi_free(k->alloc, k->data);
    msi_free(k->alloc, k->doff);
    msi_free(k->alloc, k);
}

/* ------------------------------------------------------------ the table */

int mq_sink_add_block(mq_sink *k, const char *name, uint64_t length, uint64_t off)
{
    const char *what = "RAM block entry";
    if (mq_sink_find_block(k, name) != UINT32_MAX)
        return mq_fail(k->err, MS_ECORRUPT, off, what, "block '%s' is listed twice", name);
    if (k->nblocks == k->max_blocks)
        return mq_fail(k->err, MS_ELIMIT, off, what, "more than %u RAM blocks (max_ram_blocks)",
                       k->max_blocks);
    sink_block *nb = msi_realloc(k->alloc, k->blocks, (k->nblocks + 1) * sizeof *nb);
    if (nb)
        k->blocks = nb;
    ms_region *nr = nb ? msi_realloc(k->alloc, k->regions, (k->nblocks + 1) * sizeof *nr) : NULL;
    if (!nr)
        return mq_fail(k->err, MS_ENOMEM, off, what, "out of memory");
    k->regions = nr;
    sink_block *b = &k->blocks[k->nblocks];
    memset(b, 0, sizeof *b);
    block_name *bn = msi_alloc(k->alloc, sizeof *bn);
    if (!bn || !(b->name = msi_strdup(k->alloc, name))) {
        msi_free(k->alloc, bn);
        return mq_fail(k->err, MS_ENOMEM, off, what, "out of memory");
    }
    bn->name = b->name;
    bn->index = k->nblocks;
    k->names = msi_tree_insert(k->names, &bn->node, bn->name, name_cmp);
    b->length = length;
    b->entry = off;
    b->cache_base =
        k->nblocks ? k->blocks[k->nblocks - 1].cache_base + k->blocks[k->nblocks - 1].length : 0;
    /* The block's offset says nothing about where the guest sees it
     * (pc.ram is split around the PCI hole), so no gpa is given. */
    ms_region *g = &k->regions[k->nblocks];
    *g = (ms_region){.id = k->nblocks,
                     .name = b->name,
                     .has_gpa = false,
                     .gpa = 0,
                     .size = length,
                     .page_size = k->ps};
    k->nblocks++;
    /* Handed out, the region must be one a reader would hand out; the
     * message is the one a writer refusing it gives. */
    size_t nl = strlen(name);
    const char *why = msi_region_check(g, nl, k->ps);
    if (!why && !msi_text_ok((const uint8_t *)name, nl))
        why = "name is not valid UTF-8";
    if (why)
        return mq_fail(k->err, MS_EINVAL, off, what,
                       "block '%s': writing the output: region %u \"%s\": %s", name, g->id, name,
                       why);
    return 0;
}

uint32_t mq_sink_page_size(const mq_sink *k)
{
    return k->ps;
}

uint32_t mq_sink_blocks(const mq_sink *k)
{
    return k->nblocks;
}

uint32_t mq_sink_find_block(const mq_sink *k, const char *name)
{
    const block_name *bn = (const block_name *)msi_tree_find(k->names, name, name_cmp);
    return bn ? bn->index : UINT32_MAX;
}

const char *mq_sink_block_name(const mq_sink *k, uint32_t bi)
{
    return k->blocks[bi].name;
}

uint64_t mq_sink_block_length(const mq_sink *k, uint32_t bi)
{
    return k->blocks[bi].length;
}

/* ------------------------------------------------------------ the FIFO */

/* @src into @dst[@size], cut if need be. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* A new record at the FIFO's end, or NULL (failure set). */
static sink_out *push(mq_sink *k, uint16_t type, const mq_where *w)
{
    if (k->qlen == k->qcap) {
        size_t cap = k->qcap ? k->qcap * 2 : 8;
        sink_out *n = msi_realloc(k->alloc, k->q, cap * sizeof *n);
        if (!n) {
            mq_fail(k->err, MS_ENOMEM, w->offset, w->what, "out of memory");
            return NULL;
        }
        k->q = n;
        k->qcap = cap;
    }
    sink_out *o = &k->q[k->qlen++];
    memset(o, 0, offsetof(sink_out, context));
    o->type = type;
    o->offset = w->offset;
    o->origin = w->origin;
    copy_text(o->context, sizeof o->context, k->err->context);
    copy_text(o->what, sizeof o->what, w->what);
    return o;
}

static sink_out *open_record(mq_sink *k)
{
    sink_out *o = k->qlen > k->qhead ? &k->q[k->qlen - 1] : NULL;
    return o && o->open ? o : NULL;
}

void mq_sink_seal(mq_sink *k)
{
    sink_out *o = open_record(k);
    if (o)
        o->open = false;
}

bool mq_sink_ready(const mq_sink *k)
{
    return k->qhead < k->qlen && !k->q[k->qhead].open;
}

int mq_sink_end_table(mq_sink *k, uint64_t off)
{
    if (!k->nblocks)
        return 0;
    mq_sink_seal(k);
    const mq_where w = {.what = "RAM MEM_SIZE block table", .offset = off, .origin = MQ_ORIGIN_RAM};
    return push(k, MS_REC_REGIONS, &w) ? 0 : k->err->status;
}

static int store_flush(mq_sink *k);

/* Once every sealed record is out: the open record moves to the arenas'
 * start, so that they never hold more than it and one step's output. */
static void compact(mq_sink *k)
{
    sink_out *o = open_record(k);
    if (!o) {
        k->qhead = k->qlen = 0;
        k->ext_len = k->data_len = 0;
        return;
    }
    if (o->ext_at) {
        memmove(k->ext, k->ext + o->ext_at, o->next * sizeof *k->ext);
        memmove(k->eoff, k->eoff + o->ext_at, o->next * sizeof *k->eoff);
        o->ext_at = 0;
    }
    if (o->page_at) {
        memmove(k->data, k->data + o->page_at * k->ps, o->data_pages * k->ps);
        memmove(k->doff, k->doff + o->page_at, o->data_pages * sizeof *k->doff);
        o->page_at = 0;
    }
    k->ext_len = o->next;
    k->data_len = o->data_pages;
    if (o != k->q)
        k->q[0] = *o;
    k->qhead = 0;
    k->qlen = 1;
}

int mq_sink_next(mq_sink *k, ms_record *rec, uint64_t totals[MS_PAGE_STATE_SLOTS])
{
    if (!mq_sink_ready(k)) {
        if (k->qhead) { /* records went out since the last time */
            /* The arena's pages move: the page file first gets them. */
            int rc = store_flush(k);
            if (rc)
                return rc;
            compact(k);
        }
        return 0;
    }
    /* Until the next call, which alone compacts, q[last] stays put. */
    k->last = k->qhead;
    const sink_out *o = &k->q[k->qhead++];
    memset(rec, 0, sizeof *rec);
    rec->type = o->type;
    rec->offset = o->offset;
    switch (o->type) {
    case MS_REC_REGIONS:
        rec->flags = MS_RECORD_MUST_UNDERSTAND;
        rec->regions = k->regions;
        rec->region_count = k->nblocks;
        break;
    case MS_REC_ROUND:
        rec->flags = 0;
        rec->round = o->round;
        break;
    default: {
        ms_pages *p = &rec->pages;
        rec->flags = MS_RECORD_MUST_UNDERSTAND;
        p->region = &k->regions[o->block];
        p->extents = k->ext + o->ext_at;
        p->extent_count = o->next;
        p->data = o->data_pages ? k->data + o->page_at * k->ps : NULL;
        p->data_size = o->data_pages * k->ps;
        p->encoding = MS_ENCODING_RAW;
        for (size_t i = 0; i < o->next; i++)
            totals[p->extents[i].state] += p->extents[i].count;
        break;
    }
    }
    return 1;
}

void mq_sink_blame(const mq_sink *k, uint64_t item, mq_blame *b)
{
    const sink_out *o = &k->q[k->last];
    b->context = o->context;
    b->what = o->what;
    b->offset = o->offset;
    b->block = NULL;
    if (o->type == MS_REC_REGIONS && item < k->nblocks) {
        b->what = "RAM block entry";
        b->offset = k->blocks[item].entry;
        b->block = k->blocks[item].name;
    } else if (o->type == MS_REC_PAGES) {
        /* A DATA extent is written a page at a time, any other in one call:
         * the failing call's first page names the item. */
        uint64_t first = 0;
        size_t data = o->page_at;
        for (size_t i = 0; i < o->next; i++) {
            const ms_extent *x = &k->ext[o->ext_at + i];
            if (item < first + x->count) {
                b->offset = x->state == MS_PAGE_DATA ? k->doff[data + (item - first)]
                                                     : k->eoff[o->ext_at + i];
                return;
            }
            first += x->count;
            if (x->state == MS_PAGE_DATA)
                data += x->count;
        }
    }
}

/* ------------------------------------------------------------ page file */

static int cache_open(mq_sink *k, uint64_t off)
{
    if (k->cache_fd >= 0 || !k->page_file)
        return 0;
    const char *dir = k->tmpdir;
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    size_t n = strlen(dir) + 32;
    char *path = msi_alloc(k->alloc, n);
    if (!path)
        return mq_fail(k->err, MS_ENOMEM, off, "RAM item", "out of memory");
    snprintf(path, n, "%s/migstream-qemu-XXXXXX", dir);
    k->cache_fd = mkstemp(path);
    int err = errno;
    if (k->cache_fd >= 0)
        unlink(path);
    msi_free(k->alloc, path);
    if (k->cache_fd < 0)
        return mq_fail(k->err, MS_EIO, off, "RAM item",
                       "cannot create the temporary page file in %s: %s", dir, strerror(err));
    return 0;
}

static int cache_io_fail(mq_sink *k, uint64_t off, const char *op, int err)
{
    return mq_fail(k->err, MS_EIO, off, "RAM item", "cannot %s the temporary page file: %s", op,
                   strerror(err));
}

/* Applies the pending zero run: only the part below what was ever written
 * needs a hole punched, the rest of the sparse file reads as zero already. */
static int cache_flush_zero(mq_sink *k, uint64_t off)
{
    if (k->zr_block == UINT32_MAX)
        return 0;
    const sink_block *b = &k->blocks[k->zr_block];
    uint64_t lo = k->zr_start, hi = k->zr_end < b->cache_high ? k->zr_end : b->cache_high;
    k->zr_block = UINT32_MAX;
    if (k->cache_fd < 0 || lo >= hi)
        return 0;
    if (fallocate(k->cache_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)(b->cache_base + lo), (off_t)(hi - lo)) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return cache_io_fail(k, off, "punch a hole in", errno);
    if (!k->zero_page && !(k->zero_page = msi_calloc(k->alloc, 1, k->ps)))
        return mq_fail(k->err, MS_ENOMEM, off, "RAM item", "out of memory");
    for (uint64_t a = lo; a < hi; a += k->ps)
        if (pwrite(k->cache_fd, k->zero_page, k->ps, (off_t)(b->cache_base + a)) != (ssize_t)k->ps)
            return cache_io_fail(k, off, "write", errno ? errno : EIO);
    return 0;
}

static size_t recent_place(const mq_sink *k, uint32_t bi, uint64_t addr)
{
    return (size_t)(addr / k->ps + (uint64_t)bi * 7919) & (k->nrecent - 1);
}

/* The place of page @addr of block @bi when it holds that page, or NULL. */
static recent_page *recent_find(mq_sink *k, uint32_t bi, uint64_t addr)
{
    if (!k->nrecent)
        return NULL;
    recent_page *e = &k->recent[recent_place(k, bi, addr)];
    return e->state != RECENT_EMPTY && e->block == bi && e->addr == addr ? e : NULL;
}

/* Frees place @j; a page kept there goes to the page file, which then
 * holds its latest copy. (No zero run is pending for it: a zero page
 * empties its place, and keeping one applies the zero runs first.) */
static int recent_evict(mq_sink *k, size_t j, uint64_t off)
{
    recent_page *e = &k->recent[j];
    int rc;
    bool kept = e->state == RECENT_KEPT;
    e->state = RECENT_EMPTY;
    if (!kept)
        return 0;
    if ((rc = cache_open(k, off)))
        return rc;
    sink_block *b = &k->blocks[e->block];
    const uint8_t *page = k->recent_data + j * k->ps;
    size_t done = 0;
    while (done < k->ps) {
        ssize_t n =
            pwrite(k->cache_fd, page + done, k->ps - done, (off_t)(b->cache_base + e->addr + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cache_io_fail(k, off, "write", n < 0 ? errno : ENOSPC);
        done += (size_t)n;
    }
    if (e->addr + k->ps > b->cache_high)
        b->cache_high = e->addr + k->ps;
    return 0;
}

static int cache_store(mq_sink *k, uint32_t bi, uint64_t addr, size_t idx, uint64_t off,
                       uint64_t origin);

/* An XBZRLE page (arena page @idx): the first time its place goes to it,
 * the page file gets it; from the second time on, memory keeps it. */
static int recent_page_in(mq_sink *k, uint32_t bi, uint64_t addr, size_t idx, const mq_where *w)
{
    int rc;
    if (!k->nrecent) {
        size_t n = RECENT_BYTES / k->ps;
        if (!(k->recent = msi_calloc(k->alloc, n, sizeof *k->recent)))
            return mq_fail(k->err, MS_ENOMEM, w->offset, "RAM item", "out of memory");
        k->nrecent = n;
    }
    size_t j = recent_place(k, bi, addr);
    recent_page *e = &k->recent[j];
    if (e->state == RECENT_EMPTY || e->block != bi || e->addr != addr) {
        if ((rc = recent_evict(k, j, w->offset)) ||
            (rc = cache_store(k, bi, addr, idx, w->offset, w->origin)))
            return rc;
        *e = (recent_page){.block = bi, .addr = addr, .state = RECENT_SEEN};
        return 0;
    }
    if (!k->recent_data && !(k->recent_data = msi_alloc(k->alloc, RECENT_BYTES)))
        return mq_fail(k->err, MS_ENOMEM, w->offset, "RAM item", "out of memory");
    /* Zero runs before it reach the file first: the file's older copy of
     * the page is overwritten when the kept one is evicted. */
    if ((rc = store_flush(k)) || (rc = cache_flush_zero(k, w->offset)))
        return rc;
    memcpy(k->recent_data + j * k->ps, k->data + idx * k->ps, k->ps);
    e->state = RECENT_KEPT;
    return 0;
}

static int cache_zero(mq_sink *k, uint32_t bi, uint64_t addr, uint64_t off)
{
    recent_page *e = recent_find(k, bi, addr);
    if (e)
        e->state = RECENT_EMPTY; /* superseded */
    if (k->cache_fd < 0)
        return 0; /* nothing written yet: the file will read as zero */
    int rc = store_flush(k);
    if (rc)
        return rc;
    if (k->zr_block == bi && k->zr_end == addr) {
        k->zr_end += k->ps;
        return 0;
    }
    rc = cache_flush_zero(k, off);
    if (rc)
        return rc;
    k->zr_block = bi;
    k->zr_start = addr;
    k->zr_end = addr + k->ps;
    return 0;
}

/* Writes the run of DATA pages not yet in the page file. A failure names
 * the first page not written, in the context it was read in. */
static int store_flush(mq_sink *k)
{
    if (!k->st_n)
        return 0;
    const sink_block *b = &k->blocks[k->st_block];
    const uint8_t *p = k->data + k->st_at * k->ps;
    const size_t len = k->st_n * k->ps;
    size_t done = 0;
    k->st_n = 0;
    while (done < len) {
        ssize_t n =
            pwrite(k->cache_fd, p + done, len - done, (off_t)(b->cache_base + k->st_addr + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            mq_error_context(k->err, "%s", k->q[k->st_rec].context);
            return cache_io_fail(k, k->doff[k->st_at + done / k->ps], "write", err);
        }
        done += (size_t)n;
    }
    return 0;
}

/* DATA page @idx of the arena, page @addr of block @bi, goes to the page
 * file: with the run before it when it continues it (multifd packets and
 * mapped-ram bring pages in runs). */
static int cache_store(mq_sink *k, uint32_t bi, uint64_t addr, size_t idx, uint64_t off,
                       uint64_t origin)
{
    int rc;
    if (!k->page_file)
        return 0;
    recent_page *e = recent_find(k, bi, addr);
    if (e)
        e->state = RECENT_EMPTY; /* superseded by this copy, which goes to the file */
    sink_block *b = &k->blocks[bi];
    if (k->st_n && bi == k->st_block && addr == k->st_addr + k->st_n * k->ps &&
        idx == k->st_at + k->st_n) {
        k->st_n++;
    } else {
        /* No zero run is pending while a store run is (cache_zero ends
         * it): the order of the file's writes is the stream's. */
        if ((rc = store_flush(k)) || (rc = cache_open(k, off)) || (rc = cache_flush_zero(k, off)))
            return rc;
        k->st_block = bi;
        k->st_addr = addr;
        k->st_at = idx;
        k->st_n = 1;
        k->st_rec = k->qlen - 1;
    }
    if (addr + k->ps > b->cache_high)
        b->cache_high = addr + k->ps;
    /* The "ram" section's pages are written one at a time: they are the
     * ones XBZRLE reads back, a page at a time, and writing them in runs
     * made those reads and writes slower on ext4 (Linux 6.18: a run becomes
     * one large folio, and each later page-sized write into it costs more)
     * while it saves little, pages of live passes being scattered. */
    return origin == MQ_ORIGIN_RAM ? store_flush(k) : 0;
}

int mq_sink_previous(mq_sink *k, uint32_t bi, uint64_t addr, uint8_t *page, uint64_t off)
{
    int rc;
    size_t done = 0;
    const recent_page *e = recent_find(k, bi, addr);
    if (e && e->state == RECENT_KEPT) {
        memcpy(page, k->recent_data + (size_t)(e - k->recent) * k->ps, k->ps);
        return 0;
    }
    if (k->cache_fd >= 0) {
        if ((rc = store_flush(k)) || (rc = cache_flush_zero(k, off)))
            return rc;
        const sink_block *b = &k->blocks[bi];
        while (done < k->ps) {
            ssize_t n =
                pread(k->cache_fd, page + done, k->ps - done, (off_t)(b->cache_base + addr + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return cache_io_fail(k, off, "read", errno);
            if (n == 0)
                break; /* past the end of the sparse file: zero */
            done += (size_t)n;
        }
    }
    /* Only what the file does not hold is zeroed: the page is written once. */
    memset(page + done, 0, k->ps - done);
    return 0;
}

int mq_sink_finish(mq_sink *k, uint64_t off)
{
    int rc = store_flush(k);
    return rc ? rc : cache_flush_zero(k, off);
}

/* ------------------------------------------------------ pass detection */

/* Marks the page sent in this pass: 1 when the pass had sent it already,
 * 0 when not, -1 when the bitmap would exceed its memory budget. */
static int sent_mark(mq_sink *k, sink_block *b, uint64_t page)
{
    size_t c = (size_t)(page >> SENT_SHIFT);
    if (!b->sent) {
        b->nchunks = (size_t)(((b->length / k->ps) + (1u << SENT_SHIFT) - 1) >> SENT_SHIFT);
        if (k->sent_bytes + b->nchunks * sizeof *b->sent > SENT_BUDGET ||
            !(b->sent = msi_calloc(k->alloc, b->nchunks, sizeof *b->sent)))
            return -1;
        k->sent_bytes += b->nchunks * sizeof *b->sent;
    }
    if (!b->sent[c]) {
        if (k->sent_bytes + (SENT_WORDS + 1) * 8 > SENT_BUDGET ||
            !(b->sent[c] = msi_calloc(k->alloc, SENT_WORDS + 1, 8)))
            return -1;
        k->sent_bytes += (SENT_WORDS + 1) * 8;
        b->sent[c][0] = k->pass;
    } else if (b->sent[c][0] != k->pass) { /* bits of an earlier pass */
        memset(b->sent[c] + 1, 0, SENT_WORDS * 8);
        b->sent[c][0] = k->pass;
    }
    uint64_t bit = page & ((1u << SENT_SHIFT) - 1), *w = &b->sent[c][1 + bit / 64];
    uint64_t m = (uint64_t)1 << (bit % 64);
    if (*w & m)
        return 1;
    *w |= m;
    return 0;
}

/* A new pass: every chunk's bits are now an earlier pass's. */
static void sent_clear(mq_sink *k)
{
    k->pass++;
}

static int start_round(mq_sink *k, const ms_round *r, const mq_where *w)
{
    mq_sink_seal(k);
    sink_out *o = push(k, MS_REC_ROUND, w);
    if (!o)
        return k->err->status;
    o->round = *r;
    k->rounds++;
    return 0;
}

/* Every page passes here, in the order QEMU's destination applies them. A
 * page the current pass has sent already starts the next pass.
 * (Compression threads reorder the pages within a pass, so the position
 * alone cannot tell; it is the fallback when the bitmap outgrows its
 * budget: within a pass QEMU walks the blocks in table order and each block
 * upwards.) */
static int note_page(mq_sink *k, uint32_t bi, uint64_t addr, const mq_where *w)
{
    bool new_pass = false;
    int rc;
    if (!k->any_page) {
        /* Every pass becomes a round (FORMAT.md section 6.4), so the first
         * page opens round 0: a full pass, chosen by no tracker. */
        k->any_page = true;
        if ((rc = start_round(k, &(ms_round){.number = 0}, w)))
            return rc;
    } else if (k->sent_overflow) {
        new_pass = bi < k->pos_block || (bi == k->pos_block && addr <= k->pos_addr);
    }
    if (!k->sent_overflow) {
        int seen = sent_mark(k, &k->blocks[bi], addr / k->ps);
        if (seen < 0) {
            k->sent_overflow = true;
        } else if (seen) {
            new_pass = true;
            sent_clear(k);
            sent_mark(k, &k->blocks[bi], addr / k->ps);
        }
    }
    if (new_pass) {
        /* A new pass over RAM: QEMU sends what its dirty bitmap (KVM's dirty
         * log, or TCG's) marked, at target page granularity. The stream
         * does not say how many pages were dirty. */
        ms_round round = {.number = k->rounds, .tracker = MS_TRACKER_BITMAP, .granularity = k->ps};
        if ((rc = start_round(k, &round, w)))
            return rc;
    }
    k->pos_block = bi;
    k->pos_addr = addr;
    return 0;
}

uint64_t mq_sink_rounds(const mq_sink *k)
{
    return k->rounds;
}

/* ------------------------------------------------------------------ pages */

/* Room for @n more DATA pages in the arena. It holds the open record and
 * what one step adds after it (a multifd packet at most): allocated at
 * that size at once, so that it is never copied to grow (its pages are
 * only touched as they fill), and grown only if a step ever adds more. */
static int data_room(mq_sink *k, size_t n, const mq_where *w)
{
    if (k->data_cap - k->data_len >= n)
        return 0;
    size_t cap = k->data_cap ? k->data_cap : (MQ_SINK_DATA_MAX + MQ_MF_PACKET_SIZE) / k->ps;
    while (cap - k->data_len < n)
        cap *= 2;
    uint8_t *d = msi_realloc(k->alloc, k->data, cap * k->ps);
    if (d)
        k->data = d;
    uint64_t *o = d ? msi_realloc(k->alloc, k->doff, cap * sizeof *o) : NULL;
    if (!o)
        return mq_fail(k->err, MS_ENOMEM, w->offset, w->what, "out of memory");
    k->doff = o;
    k->data_cap = cap;
    return 0;
}

uint8_t *mq_sink_slot(mq_sink *k, const mq_where *w)
{
    return data_room(k, 1, w) ? NULL : k->data + k->data_len * k->ps;
}

int mq_sink_page(mq_sink *k, uint32_t bi, uint64_t addr, const uint8_t *data, const mq_where *w)
{
    int rc;
    if ((rc = note_page(k, bi, addr, w)))
        return rc;
    const uint64_t idx = addr / k->ps;
    const uint8_t state = data ? MS_PAGE_DATA : MS_PAGE_ZERO;
    sink_out *o = open_record(k);
    ms_extent *last = o && o->next ? &k->ext[o->ext_at + o->next - 1] : NULL;
    bool merge = last && last->state == state && last->first + last->count == idx &&
                 last->count < UINT32_MAX;
    if (o && (o->block != bi || o->origin != w->origin ||
              (last && idx < last->first + last->count) || o->pages == MQ_SINK_PAGES_MAX ||
              (data && (o->data_pages + 1) * k->ps > MQ_SINK_DATA_MAX) ||
              (!merge && o->next == MQ_SINK_EXTENTS_MAX))) {
        o->open = false;
        o = NULL;
        merge = false;
    }
    if (!o) {
        if (!(o = push(k, MS_REC_PAGES, w)))
            return k->err->status;
        o->open = true;
        o->block = bi;
        o->ext_at = k->ext_len;
        o->page_at = k->data_len;
    }
    if (merge) {
        last->count++;
    } else {
        if (k->ext_len == k->ext_cap) {
            size_t cap = k->ext_cap ? k->ext_cap * 2 : 2 * MQ_SINK_EXTENTS_MAX;
            ms_extent *e = msi_realloc(k->alloc, k->ext, cap * sizeof *e);
            if (e)
                k->ext = e;
            uint64_t *eo = e ? msi_realloc(k->alloc, k->eoff, cap * sizeof *eo) : NULL;
            if (!eo)
                return mq_fail(k->err, MS_ENOMEM, w->offset, w->what, "out of memory");
            k->eoff = eo;
            k->ext_cap = cap;
        }
        k->ext[k->ext_len] = (ms_extent){.first = idx, .count = 1, .state = state, .arg = 0};
        k->eoff[k->ext_len++] = w->offset;
        o->next++;
    }
    o->pages++;
    if (data) {
        /* A page decoded into the slot is in place already. */
        bool in_slot = k->data_len < k->data_cap && data == k->data + k->data_len * k->ps;
        if (!in_slot && (rc = data_room(k, 1, w)))
            return rc;
        uint8_t *slot = k->data + k->data_len * k->ps;
        if (!in_slot)
            memcpy(slot, data, k->ps);
        k->doff[k->data_len] = w->offset;
        o->data_pages++;
        size_t at = k->data_len++;
        if (w->again && k->page_file)
            return recent_page_in(k, bi, addr, at, w);
        return cache_store(k, bi, addr, at, w->offset, w->origin);
    }
    return cache_zero(k, bi, addr, w->offset);
}
