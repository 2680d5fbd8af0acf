/*
 * The writer's table of pages sent as DATA (see dedup.h): FORMAT.md
 * section 6.2, page state DUPLICATE. Two open-addressing tables of fixed
 * size, allocated once: the slots, indexed by content hash (one page per
 * slot, a newer page replacing an older one), and `where`, indexed by
 * region and page with linear probing, which finds a page's slot when the
 * page is sent again. Nothing grows after creation.
 */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "format/dedup.h"

#define MAX_ENTRIES (1u << 22)

typedef struct slot {
    uint64_t hash;
    uint64_t page;
    uint32_t region;
    uint32_t used;
} slot;

typedef struct where {
    uint64_t page;
    uint32_t region;
    uint32_t slot1; /* slot index + 1; 0: empty */
} where;

struct msi_dedup {
    ms_allocator alloc;
    uint32_t mask, wmask; /* slots - 1, where entries - 1 */
    uint32_t ps;
    uint32_t live;   /* slots in use */
    uint64_t lo, hi; /* every page in the table lies in [lo, hi] */
    slot *s;
    where *w;
    uint8_t *bytes; /* slot i's page at i * ps */
    void *bytes_alloc; /* what was allocated for `bytes` */
};

msi_dedup *msi_dedup_new(const ms_allocator *a, uint32_t entries, uint32_t page_size)
{
    uint32_t n = 1;
    while (n < entries && n < MAX_ENTRIES)
        n <<= 1;
    msi_dedup *d = msi_calloc(a, 1, sizeof *d);
    if (!d)
        return NULL;
    d->alloc = *a;
    d->mask = n - 1;
    d->wmask = 2 * n - 1; /* at most half full: short probe runs */
    d->ps = page_size;
    d->s = msi_calloc(a, n, sizeof *d->s);
    d->w = msi_calloc(a, 2 * (size_t)n, sizeof *d->w);
    /* The copies are most of the table (64 MiB by default), touched at
     * random: on 2 MiB pages where the kernel gives them on request (THP
     * "madvise"), which spares 511 of every 512 page faults of the first
     * touch and most TLB misses after it. Any allocator: the pages are
     * aligned inside a block 2 MiB larger. */
    const size_t huge = (size_t)2 << 20, len = (size_t)n * page_size;
    d->bytes_alloc = msi_alloc(a, len >= huge ? len + huge : len);
    d->bytes = d->bytes_alloc;
    if (d->bytes && len >= huge) {
        d->bytes = (uint8_t *)(((uintptr_t)d->bytes_alloc + huge - 1) & ~(uintptr_t)(huge - 1));
#ifdef MADV_HUGEPAGE
        (void)madvise(d->bytes, len & ~(huge - 1), MADV_HUGEPAGE); /* a hint: may fail */
#endif
    }
    if (!d->s || !d->w || !d->bytes) {
        msi_dedup_free(d);
        return NULL;
    }
    return d;
}

void msi_dedup_free(msi_dedup *d)
{
    if (!d)
        return;
    ms_allocator a = d->alloc;
    msi_free(&a, d->s);
    msi_free(&a, d->w);
    msi_free(&a, d->bytes_alloc);
    msi_free(&a, d);
}

size_t msi_dedup_bytes(const msi_dedup *d)
{
    size_t n = (size_t)d->mask + 1, huge = (size_t)2 << 20;
    return sizeof *d + n * (sizeof *d->s + 2 * sizeof *d->w + d->ps) +
           (n * d->ps >= huge ? huge : 0);
}

uint64_t msi_dedup_hash(const msi_dedup *d, const uint8_t *page)
{
    return XXH3_64bits(page, d->ps);
}

static uint32_t where_home(const msi_dedup *d, uint32_t ri, uint64_t page)
{
    uint64_t x = (page ^ ((uint64_t)ri << 40)) * 0x9e3779b97f4a7c15u;
    return (uint32_t)(x >> 32) & d->wmask;
}

/* The `where` position of page @page of region @ri, or -1. */
static int64_t where_find(const msi_dedup *d, uint32_t ri, uint64_t page)
{
    for (uint32_t i = where_home(d, ri, page);; i = (i + 1) & d->wmask) {
        const where *e = &d->w[i];
        if (!e->slot1)
            return -1;
        if (e->page == page && e->region == ri)
            return i;
    }
}

/* Empties `where` position @i, shifting later entries of its probe run
 * back so that every entry stays reachable from its home. */
static void where_delete(msi_dedup *d, uint32_t i)
{
    for (uint32_t j = (i + 1) & d->wmask;; j = (j + 1) & d->wmask) {
        where *e = &d->w[j];
        if (!e->slot1)
            break;
        uint32_t home = where_home(d, e->region, e->page);
        /* e may move to i when i lies on its probe path: home..j, cyclic. */
        if (((j - home) & d->wmask) >= ((j - i) & d->wmask)) {
            d->w[i] = *e;
            i = j;
        }
    }
    d->w[i].slot1 = 0;
}

static void drop_slot(msi_dedup *d, uint32_t si)
{
    slot *s = &d->s[si];
    int64_t wi = where_find(d, s->region, s->page);
    if (wi >= 0)
        where_delete(d, (uint32_t)wi);
    s->used = 0;
    d->live--;
}

bool msi_dedup_find(const msi_dedup *d, uint32_t ri, uint64_t self, const uint8_t *page, uint64_t h,
                    uint64_t *src)
{
    const slot *s = &d->s[h & d->mask];
    if (!s->used || s->hash != h || s->region != ri || s->page == self)
        return false;
    /* A matching hash only nominates the page: the bytes decide. */
    if (memcmp(d->bytes + (size_t)(h & d->mask) * d->ps, page, d->ps) != 0)
        return false;
    *src = s->page;
    return true;
}

void msi_dedup_insert(msi_dedup *d, uint32_t ri, uint64_t idx, const uint8_t *page, uint64_t h)
{
    int64_t wi = where_find(d, ri, idx);
    if (wi >= 0)
        drop_slot(d, d->w[wi].slot1 - 1);
    uint32_t si = (uint32_t)(h & d->mask);
    if (d->s[si].used)
        drop_slot(d, si);
    d->s[si] = (slot){.hash = h, .page = idx, .region = ri, .used = 1};
    memcpy(d->bytes + (size_t)si * d->ps, page, d->ps);
    uint32_t i = where_home(d, ri, idx);
    while (d->w[i].slot1)
        i = (i + 1) & d->wmask;
    d->w[i] = (where){.page = idx, .region = ri, .slot1 = si + 1};
    if (d->live++ == 0 || idx < d->lo)
        d->lo = idx;
    if (d->live == 1 || idx > d->hi)
        d->hi = idx;
}

void msi_dedup_forget(msi_dedup *d, uint32_t ri, uint64_t first, uint64_t count)
{
    if (!d->live || count == 0 || first > d->hi || first + (count - 1) < d->lo)
        return;
    if (count > (uint64_t)d->mask + 1) { /* cheaper to look at every slot */
        for (uint32_t si = 0; si <= d->mask; si++) {
            const slot *s = &d->s[si];
            if (s->used && s->region == ri && s->page >= first && s->page - first < count)
                drop_slot(d, si);
        }
        return;
    }
    for (uint64_t p = first; p - first < count; p++) {
        int64_t wi = where_find(d, ri, p);
        if (wi >= 0)
            drop_slot(d, d->w[wi].slot1 - 1);
    }
}
