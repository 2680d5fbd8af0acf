/*
 * One region's page-state map (region_map.h): chunks and spans, each kept in
 * a balanced search tree (common/tree.h) on its chunk number. A chunk that has an
 * entry is always newer than any span over it: laying down a span drops the
 * chunks it covers, so lookups never have to compare ages.
 *
 * Every operation costs O(log n) per entry it finds or changes, never a
 * scan of every entry: a stream can send one long run after another over
 * the same pages, and each must cost what it changes (docs/SECURITY.md,
 * "Cost").
 */
#include <stdlib.h>
#include <string.h>

#include "common/tree.h"
#include "common/util.h"
#include "state/region_map.h"

#define CP ((uint64_t)MSI_PM_CHUNK_PAGES)
#define BITS_BYTES (MSI_PM_CHUNK_PAGES / 2)

typedef struct pm_chunk {
    msi_tree_node node; /* key: chunk number, pages [key * CP, key * CP + CP) */
    int64_t slot;
    uint8_t *bits;                 /* 4 bits per page, page i at bits[i / 2] >> 4 * (i % 2);
                                      NULL: every page is in state 'uniform' */
    uint16_t count[MSI_PM_STATES]; /* pages per state while bits is set */
    uint8_t uniform;
} pm_chunk;

/* A run of pages sharing an argument (msi_pm_set_arg). */
typedef struct pm_arg {
    msi_tree_node node; /* key: the first page */
    uint64_t end;
    uint64_t arg;
} pm_arg;

typedef struct pm_span {
    msi_tree_node node; /* key: the first chunk, c0 */
    uint64_t c1;        /* chunks [c0, c1) */
    uint8_t st;
} pm_span;

struct msi_pm {
    uint64_t pages;
    msi_pm_budget *budget;
    size_t charged;
    msi_tree_node *chunks; /* tree of pm_chunk */
    size_t nchunks;
    msi_tree_node *spans; /* tree of pm_span, disjoint */
    size_t nspans;
    msi_tree_node *args;    /* tree of pm_arg, disjoint */
    msi_tree_node **sorted; /* set by msi_pm_freeze: the chunks in order, and the spans */
    msi_tree_node **sorted_spans;
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

/* -------------------------------------------------------------------- trees */

static msi_tree_node *tree_insert(msi_tree_node *t, msi_tree_node *n)
{
    return msi_tree_insert(t, n, &n->key, msi_tree_cmp_u64);
}

static msi_tree_node *tree_remove(msi_tree_node *t, uint64_t key)
{
    return msi_tree_remove(t, &key, msi_tree_cmp_u64);
}

static msi_tree_node *tree_find(const msi_tree_node *t, uint64_t key)
{
    return msi_tree_find(t, &key, msi_tree_cmp_u64);
}

/* The node with the smallest key not below @key, or NULL. */
static msi_tree_node *tree_ceil(const msi_tree_node *t, uint64_t key)
{
    return msi_tree_ceil(t, &key, msi_tree_cmp_u64);
}

/* The node with the largest key not above @key, or NULL. */
static msi_tree_node *tree_floor(const msi_tree_node *t, uint64_t key)
{
    return msi_tree_floor(t, &key, msi_tree_cmp_u64);
}

/* ------------------------------------------------------------------ chunks */

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

static pm_chunk *find(const msi_pm *m, uint64_t index)
{
    return (pm_chunk *)tree_find(m->chunks, index);
}

/* The span over chunk @ci, or NULL. */
static const pm_span *span_at(const msi_pm *m, uint64_t ci)
{
    const pm_span *sp = (const pm_span *)tree_floor(m->spans, ci);
    return sp && sp->c1 > ci ? sp : NULL;
}

static void drop_bits(msi_pm *m, pm_chunk *c)
{
    if (c->bits) {
        msi_free(m->alloc, c->bits);
        c->bits = NULL;
        refund(m, BITS_BYTES);
    }
}

static void delete_chunk(msi_pm *m, pm_chunk *c)
{
    m->chunks = tree_remove(m->chunks, c->node.key);
    m->nchunks--;
    drop_bits(m, c);
    msi_free(m->alloc, c);
    refund(m, sizeof *c);
}

/* Chunk @ci, created in the state its span (or MISSING) gives when absent. */
static int touch(msi_pm *m, uint64_t ci, pm_chunk **out)
{
    pm_chunk *c = find(m, ci);
    if (c) {
        *out = c;
        return 0;
    }
    if (!charge(m, sizeof *c))
        return MS_ELIMIT;
    c = msi_calloc(m->alloc, 1, sizeof *c);
    if (!c) {
        refund(m, sizeof *c);
        return MS_ENOMEM;
    }
    const pm_span *sp = span_at(m, ci);
    c->node.key = ci;
    c->slot = -1;
    c->uniform = sp ? sp->st : MSI_PM_MISSING;
    m->chunks = tree_insert(m->chunks, &c->node);
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

/* Drops every chunk among [c0, c1). */
static void drop_chunks(msi_pm *m, uint64_t c0, uint64_t c1)
{
    msi_tree_node *n;
    while ((n = tree_ceil(m->chunks, c0)) && n->key < c1)
        delete_chunk(m, (pm_chunk *)n);
}

static void delete_span(msi_pm *m, pm_span *sp)
{
    m->spans = tree_remove(m->spans, sp->node.key);
    m->nspans--;
    msi_free(m->alloc, sp);
    refund(m, sizeof *sp);
}

/* A zeroed node of @size bytes, charged to the budget: 0, MS_ELIMIT or
 * MS_ENOMEM. */
static int new_node(msi_pm *m, size_t size, void **out)
{
    if (!charge(m, size))
        return MS_ELIMIT;
    if (!(*out = msi_calloc(m->alloc, 1, size))) {
        refund(m, size);
        return MS_ENOMEM;
    }
    return 0;
}

/* A new span node [c0, c1) in state @st, not yet in the tree. */
static int new_span(msi_pm *m, uint64_t c0, uint64_t c1, unsigned st, pm_span **out)
{
    void *p;
    int rc = new_node(m, sizeof **out, &p);
    if (rc)
        return rc;
    pm_span *sp = p;
    sp->node.key = c0;
    sp->c1 = c1;
    sp->st = (uint8_t)st;
    *out = sp;
    return 0;
}

/* Chunks [c0, c1) now all hold @st. Each span this removes or cuts was laid
 * down by an earlier call, and a call adds at most two: the cost is
 * logarithmic per span, amortized. */
static int add_span(msi_pm *m, uint64_t c0, uint64_t c1, unsigned st)
{
    /* Both new nodes first, so that a failure leaves the spans as they were. */
    pm_span *sp, *tail = NULL;
    int rc = new_span(m, c0, c1, st, &sp);
    if (rc)
        return rc;
    pm_span *head = (pm_span *)tree_floor(m->spans, c0);
    if (head && head->node.key < c0 && head->c1 > c1) { /* [c0, c1) inside one span */
        if ((rc = new_span(m, c1, head->c1, head->st, &tail))) {
            msi_free(m->alloc, sp);
            refund(m, sizeof *sp);
            return rc;
        }
    }
    drop_chunks(m, c0, c1);
    if (head && head->node.key < c0 && head->c1 > c0)
        head->c1 = c0; /* keep the part before c0 */
    msi_tree_node *n;
    while ((n = tree_ceil(m->spans, c0)) && n->key < c1) {
        pm_span *x = (pm_span *)n;
        if (x->c1 > c1) { /* keep the part after c1, under its new first chunk */
            m->spans = tree_remove(m->spans, x->node.key);
            x->node.key = c1;
            m->spans = tree_insert(m->spans, &x->node);
            break;
        }
        delete_span(m, x);
    }
    if (tail) {
        m->spans = tree_insert(m->spans, &tail->node);
        m->nspans++;
    }
    m->spans = tree_insert(m->spans, &sp->node);
    m->nspans++;
    return 0;
}

/* ------------------------------------------------------------------ counts */

/* Adds to had[] the states of chunk @c's pages among [first, end), less the
 * state its span (or MISSING) gave them. */
static void count_chunk(const msi_pm *m, const pm_chunk *c, uint64_t first, uint64_t end,
                        uint64_t *had)
{
    uint64_t base = c->node.key * CP, len = chunk_len(m, c->node.key);
    uint64_t lo = first > base ? first : base, hi = min_u64(end, base + len);
    if (lo >= hi)
        return;
    /* The pages were counted in their span's state (or MISSING): correct. */
    const pm_span *sp = span_at(m, c->node.key);
    had[sp ? sp->st : MSI_PM_MISSING] -= hi - lo;
    if (!c->bits)
        had[c->uniform] += hi - lo;
    else if (lo == base && hi == base + len)
        for (unsigned s = 0; s < MSI_PM_STATES; s++)
            had[s] += c->count[s];
    else
        for (uint64_t p = lo - base; p < hi - base; p++)
            had[nib_get(c, p)]++;
}

/* Adds the states of pages [first, end) to had[]: logarithmic per span and
 * chunk among them. */
static void count_range(const msi_pm *m, uint64_t first, uint64_t end, uint64_t *had)
{
    if (first >= end)
        return;
    uint64_t cf = first / CP, cl = (end - 1) / CP, spanned = 0;
    const pm_span *sp = span_at(m, cf);
    if (!sp)
        sp = (const pm_span *)tree_ceil(m->spans, cf);
    for (; sp && sp->node.key <= cl; sp = (const pm_span *)tree_ceil(m->spans, sp->c1)) {
        uint64_t a = sp->node.key * CP, b = min_u64(sp->c1 * CP, m->pages);
        a = a > first ? a : first;
        b = min_u64(b, end);
        if (a < b) {
            had[sp->st] += b - a;
            spanned += b - a;
        }
    }
    had[MSI_PM_MISSING] += (end - first) - spanned;
    for (const msi_tree_node *n = tree_ceil(m->chunks, cf); n && n->key <= cl;
         n = n->key == UINT64_MAX ? NULL : tree_ceil(m->chunks, n->key + 1))
        count_chunk(m, (const pm_chunk *)n, first, end, had);
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

static void free_chunk(msi_tree_node *n, void *alloc)
{
    msi_free(alloc, ((pm_chunk *)n)->bits);
    msi_free(alloc, n);
}

/* Spans and argument runs: nodes that own nothing else. */
static void free_span(msi_tree_node *n, void *alloc)
{
    msi_free(alloc, n);
}

static void unfreeze(msi_pm *m)
{
    msi_free(m->alloc, m->sorted);
    msi_free(m->alloc, m->sorted_spans);
    m->sorted = NULL;
    m->sorted_spans = NULL;
    m->frozen = false;
}

void msi_pm_free(msi_pm *m)
{
    if (!m)
        return;
    msi_tree_each_post(m->chunks, free_chunk, (void *)m->alloc);
    msi_tree_each_post(m->spans, free_span, (void *)m->alloc);
    msi_tree_each_post(m->args, free_span, (void *)m->alloc);
    unfreeze(m);
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
    if (m->frozen) /* the sorted chunks would go stale */
        unfreeze(m);
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

/* A new argument run [first, end) of @arg, not yet in the tree. */
static int new_arg(msi_pm *m, uint64_t first, uint64_t end, uint64_t arg, pm_arg **out)
{
    void *p;
    int rc = new_node(m, sizeof **out, &p);
    if (rc)
        return rc;
    pm_arg *x = p;
    x->node.key = first;
    x->end = end;
    x->arg = arg;
    *out = x;
    return 0;
}

static void delete_arg(msi_pm *m, pm_arg *x)
{
    m->args = tree_remove(m->args, x->node.key);
    msi_free(m->alloc, x);
    refund(m, sizeof *x);
}

/* Pages [first, end) now have @arg: as add_span, amortized O(log n). */
static int add_arg(msi_pm *m, uint64_t first, uint64_t end, uint64_t arg)
{
    pm_arg *x, *tail = NULL;
    int rc = new_arg(m, first, end, arg, &x);
    if (rc)
        return rc;
    pm_arg *head = (pm_arg *)tree_floor(m->args, first);
    if (head && head->node.key < first && head->end > end) {
        if ((rc = new_arg(m, end, head->end, head->arg, &tail))) {
            msi_free(m->alloc, x);
            refund(m, sizeof *x);
            return rc;
        }
    }
    if (head && head->node.key < first && head->end > first)
        head->end = first;
    msi_tree_node *n;
    while ((n = tree_ceil(m->args, first)) && n->key < end) {
        pm_arg *y = (pm_arg *)n;
        if (y->end > end) {
            m->args = tree_remove(m->args, y->node.key);
            y->node.key = end;
            m->args = tree_insert(m->args, &y->node);
            break;
        }
        delete_arg(m, y);
    }
    if (tail)
        m->args = tree_insert(m->args, &tail->node);
    m->args = tree_insert(m->args, &x->node);
    return 0;
}

int msi_pm_set_arg(msi_pm *m, uint64_t first, uint64_t n, unsigned st, uint64_t arg, uint64_t *had)
{
    int rc = msi_pm_set(m, first, n, st, had);
    return rc || n == 0 ? rc : add_arg(m, first, first + n, arg);
}

uint64_t msi_pm_arg(const msi_pm *m, uint64_t page, uint64_t *end)
{
    const pm_arg *x = (const pm_arg *)tree_floor(m->args, page);
    if (x && x->end > page) {
        *end = x->end;
        return x->arg;
    }
    const msi_tree_node *next = page == UINT64_MAX ? NULL : tree_ceil(m->args, page + 1);
    *end = next ? next->key : m->pages;
    return 0;
}

int msi_pm_each_chunk_run(const msi_pm *m, uint64_t first, uint64_t end, unsigned st,
                          int (*fn)(void *ctx, uint64_t a, uint64_t b), void *ctx)
{
    if (first >= end)
        return 0;
    uint64_t cf = first / CP, cl = (end - 1) / CP;
    uint64_t open = UINT64_MAX, last = 0; /* the run so far: [open, last) */
    int rc = 0;
    for (const msi_tree_node *n = tree_ceil(m->chunks, cf); n && n->key <= cl && !rc;
         n = n->key == UINT64_MAX ? NULL : tree_ceil(m->chunks, n->key + 1)) {
        const pm_chunk *c = (const pm_chunk *)n;
        uint64_t base = c->node.key * CP, len = chunk_len(m, c->node.key);
        uint64_t lo = first > base ? first : base, hi = min_u64(end, base + len);
        if (open != UINT64_MAX && lo != last) { /* a gap: chunks without an entry */
            rc = fn(ctx, open, last);
            open = UINT64_MAX;
        }
        for (uint64_t p = lo; p < hi && !rc;) {
            /* A chunk in one state is one step. */
            uint64_t q = c->bits ? p + 1 : hi;
            bool in = c->bits ? nib_get(c, p - base) == st : c->uniform == st;
            if (in) {
                if (open == UINT64_MAX)
                    open = p;
                last = q;
            } else if (open != UINT64_MAX) {
                rc = fn(ctx, open, last);
                open = UINT64_MAX;
            }
            p = q;
        }
    }
    if (!rc && open != UINT64_MAX)
        rc = fn(ctx, open, last);
    return rc;
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

int msi_pm_freeze(msi_pm *m)
{
    if (m->frozen)
        return 0;
    m->sorted = msi_calloc(m->alloc, m->nchunks ? m->nchunks : 1, sizeof *m->sorted);
    m->sorted_spans = msi_calloc(m->alloc, m->nspans ? m->nspans : 1, sizeof *m->sorted_spans);
    if (!m->sorted || !m->sorted_spans) {
        unfreeze(m);
        return MS_ENOMEM;
    }
    msi_tree_list(m->chunks, m->sorted, 0);
    msi_tree_list(m->spans, m->sorted_spans, 0);
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
    while (w->k < m->nchunks && m->sorted[w->k]->key < ci)
        w->k++;
    while (w->s < m->nspans && ((const pm_span *)m->sorted_spans[w->s])->c1 <= ci)
        w->s++;
    const pm_span *sp = w->s < m->nspans && m->sorted_spans[w->s]->key <= ci
                            ? (const pm_span *)m->sorted_spans[w->s]
                            : NULL;
    const pm_chunk *c =
        w->k < m->nchunks && m->sorted[w->k]->key == ci ? (const pm_chunk *)m->sorted[w->k] : NULL;
    if (!c) {
        /* Up to the next chunk with an entry or the next span boundary. */
        uint64_t next = w->k < m->nchunks ? m->sorted[w->k]->key : UINT64_MAX;
        if (sp)
            next = min_u64(next, sp->c1);
        else if (w->s < m->nspans)
            next = min_u64(next, m->sorted_spans[w->s]->key);
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
