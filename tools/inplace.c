/* IN_PLACE references, last one wins (see inplace.h). */
#include <errno.h>
#include <stdlib.h>

#include "inplace.h"

int mst_inplace_add(mst_inplace *l, const ms_region *region, const ms_extent *x)
{
    if (l->n == MST_INPLACE_MAX) {
        errno = E2BIG;
        return -1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        mst_inplace_extent *e = realloc(l->e, cap * sizeof *e);
        if (!e) {
            errno = ENOMEM;
            return -1;
        }
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n++] = (mst_inplace_extent){.region = region->id, .page_size = region->page_size,
                                        .first = x->first, .count = x->count, .addr = x->arg};
    return 0;
}

void mst_inplace_free(mst_inplace *l)
{
    free(l->e);
    l->e = NULL;
    l->n = l->cap = 0;
}

uint64_t mst_inplace_addr(const mst_inplace *l, uint32_t region, uint64_t page, uint64_t *end)
{
    uint64_t stop = UINT64_MAX;
    for (size_t i = l->n; i-- > 0;) {
        const mst_inplace_extent *x = &l->e[i];
        if (x->region != region)
            continue;
        if (page >= x->first && page - x->first < x->count) {
            uint64_t e = x->first + x->count;
            *end = e < stop ? e : stop;
            return x->addr + (page - x->first) * x->page_size;
        }
        /* A later extent starting after @page cuts the answer short there. */
        if (x->first > page && x->first < stop)
            stop = x->first;
    }
    *end = stop;
    return UINT64_MAX;
}
