/*
 * The page-state map of one region (FORMAT.md section 2): what ms_pagemap
 * (include/migstream/pagemap.h), the diff and the replay into a directory
 * keep per region while they apply a stream.
 *
 * Memory follows what the stream sent, not the size its regions declare:
 *   - pages are grouped in chunks of MSI_PM_CHUNK_PAGES; a chunk never
 *     touched costs nothing, a chunk whose pages are all in one state costs
 *     a small entry in a hash table, and only a chunk holding pages in
 *     several states has a map, at 4 bits per page (2 KiB per chunk);
 *   - a run of MSI_PM_SPAN_MIN or more whole chunks set to one state by one
 *     call (a long ZERO run) is a single "span" entry, however long.
 * Four bits leave room for the page states a later format adds
 * (FORMAT.md section 11.2); this file gives no state a meaning beyond
 * MISSING being 0.
 *
 * Every allocation is charged to a budget shared by the maps of one stream,
 * so that a hostile stream cannot make the library allocate without bound,
 * and every operation costs O(log n) per entry it finds or changes.
 */
#ifndef MSI_REGION_MAP_H
#define MSI_REGION_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migstream/common.h"

/* MISSING is 0 so that a page never sent needs no memory; other values are
 * the wire's page states (ms_page_state) or a caller's own, below 16. */
enum {
    MSI_PM_MISSING = 0,
    MSI_PM_DATA = 1,
    MSI_PM_ZERO = 2,
    MSI_PM_STATES = 16, /* values 0..15 */
};

#define MSI_PM_CHUNK_PAGES 4096u /* pages per chunk */
#define MSI_PM_SPAN_MIN 16u      /* whole chunks a run needs to become a span */

/* Bytes the maps of one stream may use. used is updated by the maps. */
typedef struct msi_pm_budget {
    size_t limit, used;
} msi_pm_budget;

typedef struct msi_pm msi_pm;

/* A map of @pages pages, all MISSING, in *@out. @budget [borrow] must
 * outlive the map; NULL: no limit. @alloc [borrow] must outlive the map.
 * Returns 0, MS_ELIMIT (out of budget), MS_ENOMEM, or MS_EINVAL when @pages
 * is beyond 2^62. */
int msi_pm_new(msi_pm **out, uint64_t pages, msi_pm_budget *budget, const ms_allocator *alloc);
void msi_pm_free(msi_pm *m); /* NULL is fine */

uint64_t msi_pm_pages(const msi_pm *m);

/*
 * Pages [first, first + n) now hold state @st (< MSI_PM_STATES). When @had is
 * not NULL, adds to had[s] how many of those pages were in state s before.
 * A frozen map (msi_pm_freeze) is thawed first.
 * @return 0, MS_ENOMEM, MS_ELIMIT (the budget ran out; the map is then
 *         unchanged or partly changed: give it up), or MS_EINVAL (range
 *         outside the map, or a state of 16 or more).
 */
int msi_pm_set(msi_pm *m, uint64_t first, uint64_t n, unsigned st, uint64_t *had);

/*
 * As msi_pm_set, and the pages keep @arg (a FILL extent's word) in runs, so
 * that a long run of one state and argument stays one entry: msi_pm_arg()
 * gives it back. Only later msi_pm_set_arg calls replace an argument; a page
 * later set by msi_pm_set keeps a stale one, which its state says to ignore.
 */
int msi_pm_set_arg(msi_pm *m, uint64_t first, uint64_t n, unsigned st, uint64_t arg, uint64_t *had);
/* The argument msi_pm_set_arg last gave page @page (0 when none did), and in
 * @end the first page after it whose argument may differ. */
uint64_t msi_pm_arg(const msi_pm *m, uint64_t page, uint64_t *end);

/* Calls @fn for each maximal run [a, b) of pages in state @st among
 * [first, end) that lies in chunks with an entry: every such page when @st
 * is MSI_PM_DATA, which never becomes a span. Costs O(log n) per chunk
 * found and a step per page of the chunks holding several states. Stops at
 * @fn's first non-zero return, which it returns. The map must not change
 * meanwhile. */
int msi_pm_each_chunk_run(const msi_pm *m, uint64_t first, uint64_t end, unsigned st,
                          int (*fn)(void *ctx, uint64_t a, uint64_t b), void *ctx);

/* Pages per state over the whole map, in counts[MSI_PM_STATES]. */
void msi_pm_counts(const msi_pm *m, uint64_t *counts);

/* Adds to counts[s] how many of pages [first, first + n) are in state s
 * (the range must lie in the map): what a DUPLICATE extent's sources hold
 * (FORMAT.md section 6.2). */
void msi_pm_range_counts(const msi_pm *m, uint64_t first, uint64_t n, uint64_t *counts);

/* A value the caller keeps per chunk (the diff: where the chunk's pages
 * are stored), -1 until set. The slot of the chunk holding @page, or NULL
 * when that chunk has no entry (its pages are all MISSING or in the state
 * of a span). A chunk that a later span covers is dropped with its slot. */
int64_t *msi_pm_slot(msi_pm *m, uint64_t page);

/* Walking a map in page order. Freezing sorts the chunks; a later
 * msi_pm_set thaws the map again (and invalidates walks). */
int msi_pm_freeze(msi_pm *m); /* 0, or MS_ENOMEM */
bool msi_pm_frozen(const msi_pm *m);

typedef struct msi_pm_walk {
    const msi_pm *m;
    size_t k, s; /* cursors */
} msi_pm_walk;

void msi_pm_walk_init(msi_pm_walk *w, const msi_pm *m);
/* State of @page (pages asked for must not decrease; the map must be
 * frozen), with in @end the first page after it that may be in another
 * state (UINT64_MAX when @page is past the map's end, which reads as
 * MISSING) and in @slot the slot of its chunk (-1: none). A run never
 * crosses a chunk boundary when the chunk has an entry. */
unsigned msi_pm_run(msi_pm_walk *w, uint64_t page, uint64_t *end, int64_t *slot);

#endif /* MSI_REGION_MAP_H */
