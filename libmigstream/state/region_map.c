/*
 * One region's page-state map (region_map.h): chunks in a hash table, spans
 * in a sorted array. A chunk that has an entry is always newer than any
 * span over it: laying down a span drops the chunks it covers, so lookups
 * never have to compare ages.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "state/region_map.h"

#define CP ((uint64_t)MSI_PM_CHUNK_PAGES)
#define BITS_BYTES (MSI_PM_CHUNK_PAGES / 2)

typedef struct pm_chunk {
    uint64_t index; /* chunk number: pages [index * CP, index * CP + CP) */
    int64_t slot;
    uint8_t *bits;                 /* 4 bits per page, page i at bits[i / 2] >> 4 * (i % 2);
                                      NULL: every page is in state 'uniform' */
    uint16_t count[MSI_PM_STATES]; /* pages per state while bits is set */
    uint8_t uniform;
} pm_chunk;

typedef struct pm_span {
    uint64_t c0, c1; /* chunks [c0, c1) */
    uint8_t st;
} pm_span;

struct msi_pm {
    uint64_t pages;
    msi_pm_budget *budget;
    size_t charged;
    pm_chunk **tab; /* open addressing on chunk index; NULL: empty slot */
    size_t tab_cap, nchunks;
    pm_span *spans; /* sorted, disjoint */
    size_t nspans, spans_cap;
    pm_chunk **sorted; /* set by msi_pm_freeze */
    bool frozen;
    const ms_allocator *alloc;
};

/* ------------------------------------------------------------------ budget */

static bool charge(msi_pm *m, size_t n)
{
    if (m->budget) {
        if (n > m->budget->limit - m->budget->used)
            return false;
        m->budget->used += n;
    }
    m->charged += n;
    return true;
}

static void refund(msi_pm *m, size_t n)
{
    if (m->budget)
        m->budget->used -= n;
    m->charged -= n;
}

/* ------------------------------------------------------------------ chunks */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static unsigned nib_get(const pm_chunk *c, uint64_t i)
{
    return (unsigned)(c->bits[i >> 1] >> (4 * (i & 1))) & 15u;
}

static void nib_set(pm_chunk *c, uint64_t i, unsigned st)
{
    uint8_t *b = &c->bits[i >> 1];
    unsigned sh = 4 * (unsigned)(i & 1);
    *b = (uint8_t)((*b & ~(15u << sh)) | st << sh);
}

/* Pages in chunk @ci (the last chunk may be short). */
static uint64_t chunk_len(const msi_pm *m, uint64_t ci)
{
    return min_u64(CP, m->pages - ci * CP);
}

/* Table position of chunk @index, or SIZE_MAX. */
static size_t find_pos(const msi_pm *m, uint64_t index)
{
    if (!m->nchunks)
        return SIZE_MAX;
    size_t mask = m->tab_cap - 1;
    for (size_t i = (size_t)mix64(index) & mask; m->tab[i]; i = (i + 1) & mask)
        if (m->tab[i]->index == index)
            return i;
    return SIZE_MAX;
}

static pm_chunk *find(const msi_pm *m, uint64_t index)
{
    size_t i = find_pos(m, index);
    return i == SIZE_MAX ? NULL : m->tab[i];
}

/* The span over chunk @ci, or NULL. */
static const pm_span *span_at(const msi_pm *m, uint64_t ci)
{
    size_t lo = 0, hi = m->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->spans[mid].c1 <= ci)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->nspans && m->spans[lo].c0 <= ci ? &m->spans[lo] : NULL;
}

static void drop_bits(msi_pm *m, pm_chunk *c)
{
    if (c->bits) {
        msi_free(m->alloc, c->bits);
        c->bits = NULL;
        refund(m, BITS_BYTES);
    }
}

/* Removes the chunk at table position @i (backward-shift deletion, so that
 * no tombstones are needed). */
static void delete_at(msi_pm *m, size_t i)
{
    pm_chunk *c = m->tab[i];
    drop_bits(m, c);
    msi_free(m->alloc, c);
    refund(m, sizeof *c);
    m->tab[i] = NULL;
    m->nchunks--;
    size_t mask = m->tab_cap - 1;
    for (size_t j = (i + 1) & mask; m->tab[j]; j = (j + 1) & mask) {
        size_t h = (size_t)mix64(m->tab[j]->index) & mask;
        /* Leave the entry if its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            m->tab[i] = m->tab[j];
            m->tab[j] = NULL;
            i = j;
        }
    }
}

static int grow_table(msi_pm *m)
{
    size_t cap = m->tab_cap ? 2 * m->tab_cap : 16;
    if (cap > SIZE_MAX / sizeof *m->tab || !charge(m, cap * sizeof *m->tab))
        return MS_ELIMIT;
    pm_chunk **tab = msi_calloc(m->alloc, cap, sizeof *tab);
    if (!tab) {
        refund(m, cap * sizeof *tab);
        return MS_ENOMEM;
    }
    for (size_t k = 0; k < m->tab_cap; k++) {
        if (!m->tab[k])
            continue;
        size_t i = (size_t)mix64(m->tab[k]->index) & (cap - 1);
        while (tab[i])
            i = (i + 1) & (cap - 1);
        tab[i] = m->tab[k];
    }
    msi_free(m->alloc, m->tab);
    refund(m, m->tab_cap * sizeof *m->tab);
    m->tab = tab;
    m->tab_cap = cap;
    return 0;
}

/* Chunk @ci, created in the state its span (or MISSING) gives when absent. */
static int touch(msi_pm *m, uint64_t ci, pm_chunk **out)
{
    pm_chunk *c = find(m, ci);
    if (c) {
        *out = c;
        return 0;
    }
    if (2 * (m->nchunks + 1) > m->tab_cap) { /* keep the load under 1/2 */
        int rc = grow_table(m);
        if (rc)
            return rc;
    }
    if (!charge(m, sizeof *c))
        return MS_ELIMIT;
    c = msi_calloc(m->alloc, 1, sizeof *c);
    if (!c) {
        refund(m, sizeof *c);
        return MS_ENOMEM;
    }
    const pm_span *sp = span_at(m, ci);
    c->index = ci;
    c->slot = -1;
    c->uniform = sp ? sp->st : MSI_PM_MISSING;
    size_t i = (size_t)mix64(ci) & (m->tab_cap - 1);
    while (m->tab[i])
        i = (i + 1) & (m->tab_cap - 1);
    m->tab[i] = c;
    m->nchunks++;
    *out = c;
    return 0;
}

/* Pages [lo, hi), all inside chunk @ci, now hold @st. */
static int set_in_chunk(msi_pm *m, uint64_t ci, uint64_t lo, uint64_t hi, unsigned st)
{
    pm_chunk *c;
    int rc = touch(m, ci, &c);
    if (rc)
        return rc;
    uint64_t base = ci * CP, len = chunk_len(m, ci);
    if (lo == base && hi == base + len) {
        drop_bits(m, c);
        c->uniform = (uint8_t)st;
        return 0;
    }
    if (!c->bits) {
        if (c->uniform == st)
            return 0;
        if (!charge(m, BITS_BYTES))
            return MS_ELIMIT;
        if (!(c->bits = msi_alloc(m->alloc, BITS_BYTES))) {
            refund(m, BITS_BYTES);
            return MS_ENOMEM;
        }
        memset(c->bits, c->uniform * 0x11, BITS_BYTES);
        memset(c->count, 0, sizeof c->count);
        c->count[c->uniform] = (uint16_t)len;
    }
    for (uint64_t p = lo - base; p < hi - base; p++) {
        unsigned old = nib_get(c, p);
        if (old != st) {
            nib_set(c, p, st);
            c->count[old]--;
            c->count[st]++;
        }
    }
    if (c->count[st] == len) { /* one state again: the map is not needed */
        drop_bits(m, c);
        c->uniform = (uint8_t)st;
    }
    return 0;
}

/* Calls @fn for every chunk with an entry among chunks [c0, c1], at a cost
 * of min(c1 - c0 + 1, table size) steps. @fn may not change the table. */
static void each_chunk(const msi_pm *m, uint64_t c0, uint64_t c1,
                       void (*fn)(const msi_pm *m, const pm_chunk *c, void *ctx), void *ctx)
{
    if (!m->nchunks)
        return;
    if (c1 - c0 < m->tab_cap) {
        for (uint64_t ci = c0;; ci++) {
            const pm_chunk *c = find(m, ci);
            if (c)
                fn(m, c, ctx);
            if (ci == c1)
                break;
        }
        return;
    }
    for (size_t i = 0; i < m->tab_cap; i++)
        if (m->tab[i] && m->tab[i]->index >= c0 && m->tab[i]->index <= c1)
            fn(m, m->tab[i], ctx);
}

/* Drops every chunk among [c0, c1). */
static void drop_chunks(msi_pm *m, uint64_t c0, uint64_t c1)
{
    if (!m->nchunks)
        return;
    if (c1 - c0 <= m->tab_cap) {
        for (uint64_t ci = c0; ci < c1; ci++) {
            size_t i = find_pos(m, ci);
            if (i != SIZE_MAX)
                delete_at(m, i);
        }
        return;
    }
    /* Backward shifts only move entries into the position being looked at
     * or into positions already looked at, so one pass sees every entry. */
    for (size_t i = 0; i < m->tab_cap; i++)
        while (m->tab[i] && m->tab[i]->index >= c0 && m->tab[i]->index < c1)
            delete_at(m, i);
}

/* Chunks [c0, c1) now all hold @st. */
static int add_span(msi_pm *m, uint64_t c0, uint64_t c1, unsigned st)
{
    /* Spans are few (each comes from one call covering MSI_PM_SPAN_MIN
     * chunks or more): a sorted array with memmove is enough. At most two
     * more spans result from a split. */
    if (m->nspans + 2 > m->spans_cap) {
        size_t cap = m->spans_cap ? 2 * m->spans_cap : 8;
        if (!charge(m, (cap - m->spans_cap) * sizeof *m->spans))
            return MS_ELIMIT;
        pm_span *v = msi_realloc(m->alloc, m->spans, cap * sizeof *v);
        if (!v) {
            refund(m, (cap - m->spans_cap) * sizeof *m->spans);
            return MS_ENOMEM;
        }
        m->spans = v;
        m->spans_cap = cap;
    }
    drop_chunks(m, c0, c1);
    pm_span *v = m->spans;
    size_t lo = 0, hi = m->nspans;
    while (lo < hi) { /* first span ending after c0 */
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].c1 <= c0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo;
    /* v[i..j) overlap [c0, c1); keep the parts outside it. */
    size_t j = i;
    while (j < m->nspans && v[j].c0 < c1)
        j++;
    pm_span head = i < j ? v[i] : (pm_span){0, 0, 0}, tail = i < j ? v[j - 1] : head;
    bool keep_head = i < j && head.c0 < c0, keep_tail = i < j && tail.c1 > c1;
    size_t add = 1 + keep_head + keep_tail;
    memmove(&v[i + add], &v[j], (m->nspans - j) * sizeof *v);
    m->nspans = m->nspans - (j - i) + add;
    if (keep_head) {
        head.c1 = c0;
        v[i++] = head;
    }
    v[i++] = (pm_span){c0, c1, (uint8_t)st};
    if (keep_tail) {
        tail.c0 = c1;
        v[i] = tail;
    }
    return 0;
}

/* ------------------------------------------------------------------ counts */

typedef struct count_ctx {
    uint64_t first, end;
    uint64_t *had;
} count_ctx;

static void count_chunk(const msi_pm *m, const pm_chunk *c, void *vctx)
{
    count_ctx *x = vctx;
    uint64_t base = c->index * CP, len = chunk_len(m, c->index);
    uint64_t lo = x->first > base ? x->first : base, hi = min_u64(x->end, base + len);
    if (lo >= hi)
        return;
    /* The pages were counted in their span's state (or MISSING): correct. */
    const pm_span *sp = span_at(m, c->index);
    x->had[sp ? sp->st : MSI_PM_MISSING] -= hi - lo;
    if (!c->bits)
        x->had[c->uniform] += hi - lo;
    else if (lo == base && hi == base + len)
        for (unsigned s = 0; s < MSI_PM_STATES; s++)
            x->had[s] += c->count[s];
    else
        for (uint64_t p = lo - base; p < hi - base; p++)
            x->had[nib_get(c, p)]++;
}

/* Adds the states of pages [first, end) to had[]. */
static void count_range(const msi_pm *m, uint64_t first, uint64_t end, uint64_t *had)
{
    if (first >= end)
        return;
    uint64_t cf = first / CP, cl = (end - 1) / CP, spanned = 0;
    /* Spans overlapping [cf, cl]. */
    size_t lo = 0, hi = m->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->spans[mid].c1 <= cf)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < m->nspans && m->spans[i].c0 <= cl; i++) {
        uint64_t a = m->spans[i].c0 * CP, b = min_u64(m->spans[i].c1 * CP, m->pages);
        a = a > first ? a : first;
        b = min_u64(b, end);
        if (a < b) {
            had[m->spans[i].st] += b - a;
            spanned += b - a;
        }
    }
    had[MSI_PM_MISSING] += (end - first) - spanned;
    count_ctx x = {first, end, had};
    each_chunk(m, cf, cl, count_chunk, &x);
}

/* ------------------------------------------------------------------- API */

int msi_pm_new(msi_pm **out, uint64_t pages, msi_pm_budget *budget, const ms_allocator *alloc)
{
    *out = NULL;
    if (pages > ((uint64_t)1 << 62))
        return MS_EINVAL;
    if (budget && sizeof(msi_pm) > budget->limit - budget->used)
        return MS_ELIMIT;
    msi_pm *m = msi_calloc(alloc, 1, sizeof *m);
    if (!m)
        return MS_ENOMEM;
    m->pages = pages;
    m->budget = budget;
    m->alloc = alloc;
    charge(m, sizeof *m);
    *out = m;
    return 0;
}

void msi_pm_free(msi_pm *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->tab_cap; i++) {
        if (m->tab[i]) {
            msi_free(m->alloc, m->tab[i]->bits);
            msi_free(m->alloc, m->tab[i]);
        }
    }
    msi_free(m->alloc, m->tab);
    msi_free(m->alloc, m->spans);
    msi_free(m->alloc, m->sorted);
    if (m->budget)
        m->budget->used -= m->charged;
    msi_free(m->alloc, m);
}

uint64_t msi_pm_pages(const msi_pm *m)
{
    return m->pages;
}

int msi_pm_set(msi_pm *m, uint64_t first, uint64_t n, unsigned st, uint64_t *had)
{
    if (st >= MSI_PM_STATES || first > m->pages || n > m->pages - first)
        return MS_EINVAL;
    if (n == 0)
        return 0;
    if (m->frozen) { /* the sorted chunks would go stale */
        msi_free(m->alloc, m->sorted);
        m->sorted = NULL;
        m->frozen = false;
    }
    uint64_t end = first + n;
    if (had)
        count_range(m, first, end, had);
    uint64_t cf = first / CP, cl = (end - 1) / CP;
    uint64_t wc0 = first % CP == 0 ? cf : cf + 1;                  /* first whole chunk */
    uint64_t wc1 = end % CP == 0 || end == m->pages ? cl + 1 : cl; /* after the last */
    int rc = 0;
    if (st != MSI_PM_DATA && wc1 > wc0 && wc1 - wc0 >= MSI_PM_SPAN_MIN) {
        /* DATA never becomes a span: its chunks carry the caller's slot. */
        if (cf < wc0)
            rc = set_in_chunk(m, cf, first, wc0 * CP, st);
        if (!rc)
            rc = add_span(m, wc0, wc1, st);
        if (!rc && wc1 <= cl)
            rc = set_in_chunk(m, cl, wc1 * CP, end, st);
        return rc;
    }
    for (uint64_t ci = cf; ci <= cl && !rc; ci++)
        rc = set_in_chunk(m, ci, ci == cf ? first : ci * CP, min_u64(end, ci * CP + CP), st);
    return rc;
}

void msi_pm_range_counts(const msi_pm *m, uint64_t first, uint64_t n, uint64_t *counts)
{
    count_range(m, first, first + n, counts);
}

void msi_pm_counts(const msi_pm *m, uint64_t *counts)
{
    memset(counts, 0, MSI_PM_STATES * sizeof *counts);
    count_range(m, 0, m->pages, counts);
}

int64_t *msi_pm_slot(msi_pm *m, uint64_t page)
{
    pm_chunk *c = find(m, page / CP);
    return c ? &c->slot : NULL;
}

/* ------------------------------------------------------------------ walking */

static int chunk_cmp(const void *x, const void *y)
{
    const pm_chunk *a = *(pm_chunk *const *)x, *b = *(pm_chunk *const *)y;
    return (a->index > b->index) - (a->index < b->index);
}

int msi_pm_freeze(msi_pm *m)
{
    if (m->frozen)
        return 0;
    m->sorted = msi_calloc(m->alloc, m->nchunks ? m->nchunks : 1, sizeof *m->sorted);
    if (!m->sorted)
        return MS_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < m->tab_cap; i++)
        if (m->tab[i])
            m->sorted[n++] = m->tab[i];
    qsort(m->sorted, n, sizeof *m->sorted, chunk_cmp);
    m->frozen = true;
    return 0;
}

bool msi_pm_frozen(const msi_pm *m)
{
    return m->frozen;
}

void msi_pm_walk_init(msi_pm_walk *w, const msi_pm *m)
{
    w->m = m;
    w->k = w->s = 0;
}

unsigned msi_pm_run(msi_pm_walk *w, uint64_t page, uint64_t *end, int64_t *slot)
{
    const msi_pm *m = w->m;
    *slot = -1;
    if (page >= m->pages) {
        *end = UINT64_MAX;
        return MSI_PM_MISSING;
    }
    uint64_t ci = page / CP, base = ci * CP;
    while (w->k < m->nchunks && m->sorted[w->k]->index < ci)
        w->k++;
    while (w->s < m->nspans && m->spans[w->s].c1 <= ci)
        w->s++;
    const pm_span *sp = w->s < m->nspans && m->spans[w->s].c0 <= ci ? &m->spans[w->s] : NULL;
    const pm_chunk *c = w->k < m->nchunks && m->sorted[w->k]->index == ci ? m->sorted[w->k] : NULL;
    if (!c) {
        /* Up to the next chunk with an entry or the next span boundary. */
        uint64_t next = w->k < m->nchunks ? m->sorted[w->k]->index : UINT64_MAX;
        if (sp)
            next = min_u64(next, sp->c1);
        else if (w->s < m->nspans)
            next = min_u64(next, m->spans[w->s].c0);
        *end = next == UINT64_MAX ? m->pages : min_u64(next * CP, m->pages);
        return sp ? sp->st : MSI_PM_MISSING;
    }
    *slot = c->slot;
    uint64_t cend = min_u64(base + CP, m->pages);
    if (!c->bits) {
        *end = cend;
        return c->uniform;
    }
    unsigned st = nib_get(c, page - base);
    uint64_t p = page + 1;
    while (p < cend && nib_get(c, p - base) == st)
        p++;
    *end = p;
    return st;
}
