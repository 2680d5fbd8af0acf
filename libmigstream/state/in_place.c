/*
 * IN_PLACE references (in_place.h; the public side is ms_in_place in
 * include/migstream/pagemap.h): the last one wins for a page, and no two
 * may share bytes of the in-place space but by the same mapping (FORMAT.md
 * section 6.2).
 */
#include <stdlib.h>

#include "common/util.h"
#include "state/in_place.h"

void msi_in_place_init(ms_in_place *l, const ms_allocator *alloc, size_t max)
{
    memset(l, 0, sizeof *l);
    msi_allocator_set(&l->alloc, alloc);
    l->max = max;
}

void msi_in_place_clear(ms_in_place *l)
{
    msi_free(&l->alloc, l->e);
    l->e = NULL;
    l->n = l->cap = 0;
}

int ms_in_place_add(ms_in_place *l, const ms_region *region, const ms_extent *x)
{
    uint64_t last;
    if (!l || !region || !x || x->state != MS_PAGE_IN_PLACE || x->count == 0 ||
        !msi_is_pow2(region->page_size) || x->arg % region->page_size ||
        msi_add_overflow(x->arg, (uint64_t)x->count * region->page_size - 1, &last))
        return MS_EINVAL; /* the checks of FORMAT.md section 6.2, as the reader makes them */
    if (l->status)
        return l->status;
    if (l->n == l->max)
        return MS_ELIMIT;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (cap > l->max)
            cap = l->max;
        ms_in_place_extent *e = msi_realloc(&l->alloc, l->e, cap * sizeof *e);
        if (!e)
            return MS_ENOMEM;
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n++] = (ms_in_place_extent){.region = region->id,
                                        .page_size = region->page_size,
                                        .first = x->first,
                                        .count = x->count,
                                        .address = x->arg};
    return 0;
}

size_t ms_in_place_count(const ms_in_place *l)
{
    return l ? l->n : 0;
}

uint64_t ms_in_place_address(const ms_in_place *l, uint32_t region_id, uint64_t page,
                             uint64_t *run_end)
{
    uint64_t stop = UINT64_MAX, dummy;
    if (!run_end)
        run_end = &dummy;
    for (size_t i = l ? l->n : 0; i-- > 0;) {
        const ms_in_place_extent *x = &l->e[i];
        if (x->region != region_id)
            continue;
        if (page >= x->first && page - x->first < x->count) {
            uint64_t e = x->first + x->count;
            *run_end = e < stop ? e : stop;
            return x->address + (page - x->first) * x->page_size;
        }
        /* A later extent starting after @page cuts the answer short there. */
        if (x->first > page && x->first < stop)
            stop = x->first;
    }
    *run_end = stop;
    return UINT64_MAX;
}

const ms_in_place_extent *ms_in_place_get(const ms_in_place *l, size_t index)
{
    return l && index < l->n ? &l->e[index] : NULL;
}

/* The last byte an extent references (the reader and ms_in_place_add()
 * checked that it does not wrap). */
static uint64_t last_byte(const ms_in_place_extent *x)
{
    return x->address + x->count * x->page_size - 1;
}

/* An extent's place in address order: its address, then the order added
 * (deterministic whatever qsort does with ties). */
typedef struct by_addr {
    uint64_t address;
    size_t index;
} by_addr;

static int by_address(const void *a, const void *b)
{
    const by_addr *x = a, *y = b;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

int ms_in_place_overlaps(const ms_in_place *l, ms_in_place_overlap_fn fn, void *ctx)
{
    if (!l)
        return MS_EINVAL;
    if (l->n < 2)
        return 0;
    by_addr *order = msi_alloc(&l->alloc, l->n * sizeof *order);
    if (!order)
        return MS_ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        order[i] = (by_addr){l->e[i].address, i};
    qsort(order, l->n, sizeof *order, by_address);
    int found = 0, rc = 0;
    size_t far = order[0].index;
    for (size_t k = 1; k < l->n && rc >= 0; k++) {
        const ms_in_place_extent *x = &l->e[order[k].index], *f = &l->e[far];
        /* The same mapping: same region, same address for page 0 (and so
         * the same page size, a region's own). */
        bool same = x->region == f->region &&
                    x->address - x->first * x->page_size == f->address - f->first * f->page_size;
        if (x->address <= last_byte(f) && !same) {
            found++;
            if (fn)
                rc = fn(ctx, order[k].index, far);
        }
        if (last_byte(x) > last_byte(f))
            far = order[k].index;
    }
    msi_free(&l->alloc, order);
    return rc < 0 ? rc : found;
}
