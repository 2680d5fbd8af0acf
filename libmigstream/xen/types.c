/*
 * The map of kept page types (types.h): an open-addressing hash of blocks
 * by block number, each block an ascending array of entries. Memory is
 * bounded by MX_TYPES_MAX entries (and as many blocks at most).
 */
#include <string.h>

#include "xen/types.h"

typedef struct block {
    uint64_t number;
    uint64_t *e; /* ascending by pfn */
    uint32_t n, cap;
    bool used;
} block;

struct mx_types {
    const ms_allocator *alloc;
    block *tab;
    size_t cap;   /* a power of two, or 0 */
    size_t nused; /* blocks in the table */
    uint64_t entries;
};

mx_types *mx_types_new(const ms_allocator *a)
{
    mx_types *t = msi_calloc(a, 1, sizeof *t);
    if (t)
        t->alloc = a;
    return t;
}

void mx_types_free(mx_types *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        msi_free(t->alloc, t->tab[i].e);
    msi_free(t->alloc, t->tab);
    msi_free(t->alloc, t);
}

static size_t slot(const block *tab, size_t cap, uint64_t number)
{
    size_t i = (size_t)((number * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
    while (tab[i].used && tab[i].number != number)
        i = (i + 1) & (cap - 1);
    return i;
}

static block *find(const mx_types *t, uint64_t number)
{
    if (!t->cap)
        return NULL;
    block *b = &t->tab[slot(t->tab, t->cap, number)];
    return b->used ? b : NULL;
}

/* The block @number, added when missing; NULL when out of memory. Blocks
 * stay in the table once added (a block whose types all went is empty). */
static block *get(mx_types *t, uint64_t number)
{
    block *b = find(t, number);
    if (b)
        return b;
    if (2 * (t->nused + 1) > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        block *tab = msi_calloc(t->alloc, cap, sizeof *tab);
        if (!tab)
            return NULL;
        for (size_t i = 0; i < t->cap; i++)
            if (t->tab[i].used)
                tab[slot(tab, cap, t->tab[i].number)] = t->tab[i];
        msi_free(t->alloc, t->tab);
        t->tab = tab;
        t->cap = cap;
    }
    b = &t->tab[slot(t->tab, t->cap, number)];
    memset(b, 0, sizeof *b);
    b->used = true;
    b->number = number;
    t->nused++;
    return b;
}

/* Where @pfn's entry is or would go in @b. */
static uint32_t position(const block *b, uint64_t pfn)
{
    uint32_t lo = 0, hi = b->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((b->e[mid] & MX_PFN_MASK) < pfn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

unsigned mx_types_get(const mx_types *t, uint64_t pfn)
{
    const block *b = find(t, pfn >> MX_TYPES_SHIFT);
    if (!b)
        return 0;
    uint32_t i = position(b, pfn);
    return i < b->n && (b->e[i] & MX_PFN_MASK) == pfn ? (unsigned)(b->e[i] >> MX_TYPE_SHIFT) : 0;
}

int mx_types_set(mx_types *t, uint64_t pfn, unsigned type)
{
    uint64_t number = pfn >> MX_TYPES_SHIFT;
    block *b = mx_types_kept(type) ? get(t, number) : find(t, number);
    if (!b)
        return mx_types_kept(type) ? MS_ENOMEM : 0;
    uint32_t i = position(b, pfn);
    bool have = i < b->n && (b->e[i] & MX_PFN_MASK) == pfn;
    uint64_t e = (uint64_t)type << MX_TYPE_SHIFT | pfn;
    if (!mx_types_kept(type)) {
        if (!have)
            return 0;
        memmove(b->e + i, b->e + i + 1, (b->n - i - 1) * sizeof *b->e);
        b->n--;
        t->entries--;
        return 1;
    }
    if (have) {
        if (b->e[i] == e)
            return 0;
        b->e[i] = e;
        return 1;
    }
    if (t->entries == MX_TYPES_MAX)
        return MS_ELIMIT;
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 16;
        uint64_t *n = msi_realloc(t->alloc, b->e, cap * sizeof *n);
        if (!n)
            return MS_ENOMEM;
        b->e = n;
        b->cap = cap;
    }
    memmove(b->e + i + 1, b->e + i, (b->n - i) * sizeof *b->e);
    b->e[i] = e;
    b->n++;
    t->entries++;
    return 1;
}

const uint64_t *mx_types_block(const mx_types *t, uint64_t number, size_t *n)
{
    const block *b = find(t, number);
    *n = b ? b->n : 0;
    return b ? b->e : NULL;
}

int mx_types_replace(mx_types *t, uint64_t number, const uint64_t *entries, size_t n)
{
    block *b = n ? get(t, number) : find(t, number);
    if (!b)
        return n ? MS_ENOMEM : 0;
    if (t->entries - b->n + n > MX_TYPES_MAX)
        return MS_ELIMIT;
    if (n > b->cap) {
        uint64_t *e = msi_realloc(t->alloc, b->e, n * sizeof *e);
        if (!e)
            return MS_ENOMEM;
        b->e = e;
        b->cap = (uint32_t)n;
    }
    if (n)
        memcpy(b->e, entries, n * sizeof *entries);
    t->entries = t->entries - b->n + n;
    b->n = (uint32_t)n;
    return 0;
}
