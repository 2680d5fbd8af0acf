/*
 * The final state of every page of one region (docs/FORMAT.md section 2), as
 * migstream-replay and migstream-diff rebuild it while they replay a stream.
 *
 * Memory follows what the stream sent, not the size its regions declare:
 *   - pages are grouped in chunks of MST_PM_CHUNK_PAGES; a chunk never
 *     touched costs nothing, a chunk whose pages are all in one state costs
 *     a small entry in a hash table, and only a chunk holding pages in
 *     several states has a map, at 4 bits per page (2 KiB per chunk);
 *   - a run of MST_PM_SPAN_MIN or more whole chunks set to one state by one
 *     call (a long ZERO run) is a single "span" entry, however long.
 * Four bits leave room for the page states a later format adds
 * (FORMAT.md section 11.2); this file gives no state a meaning beyond
 * MISSING being 0.
 *
 * Every allocation is charged to a budget shared by the maps of one stream,
 * so that a hostile stream cannot make a tool allocate without bound.
 */
#ifndef MST_PAGEMAP_H
#define MST_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* States as the tools track them. MISSING is 0 so that a page never sent
 * needs no memory; other values are the wire's page states (ms_page_state),
 * which fit in 4 bits. */
enum {
    MST_PM_MISSING = 0,
    MST_PM_DATA = 1,
    MST_PM_ZERO = 2,
    MST_PM_STATES = 16, /* values 0..15 */
};

#define MST_PM_CHUNK_PAGES 4096u /* pages per chunk */
#define MST_PM_SPAN_MIN 16u      /* whole chunks a run needs to become a span */

/* Bytes the maps of one stream may use. used is updated by the maps. */
typedef struct mst_pm_budget {
    size_t limit, used;
} mst_pm_budget;

/* Default limit: enough for 8 TiB of 4 KiB pages in which every chunk holds
 * pages in more than one state. */
#define MST_PM_BUDGET_DEFAULT ((size_t)1 << 30)

typedef struct mst_pm mst_pm;

/* A map of @pages pages, all MISSING. @budget [borrow] must outlive the map;
 * NULL: no limit. Returns NULL when out of memory or budget. */
mst_pm *mst_pm_new(uint64_t pages, mst_pm_budget *budget);
void mst_pm_free(mst_pm *m); /* NULL is fine */

uint64_t mst_pm_pages(const mst_pm *m);

/* Statuses of mst_pm_set. */
enum { MST_PM_ENOMEM = -1, MST_PM_EBUDGET = -2, MST_PM_ERANGE = -3 };

/*
 * Pages [first, first + n) now hold state @st (< MST_PM_STATES). When @had is
 * not NULL, adds to had[s] how many of those pages were in state s before.
 * Not after mst_pm_freeze().
 * @return 0, MST_PM_ENOMEM, MST_PM_EBUDGET (the map is then unchanged or
 *         partly changed: give it up), or MST_PM_ERANGE (range outside the
 *         map, or the map is frozen).
 */
int mst_pm_set(mst_pm *m, uint64_t first, uint64_t n, unsigned st, uint64_t *had);

/* Pages per state over the whole map, in counts[MST_PM_STATES]. */
void mst_pm_counts(const mst_pm *m, uint64_t *counts);

/* A value the caller keeps per chunk (migstream-diff: where the chunk's
 * pages are stored), -1 until set. The slot of the chunk holding @page, or
 * NULL when that chunk has no entry (its pages are all MISSING or in the
 * state of a span). A chunk that a later span covers is dropped with its
 * slot. */
int64_t *mst_pm_slot(mst_pm *m, uint64_t page);

/* Walking a map in page order, after it is complete. */
int mst_pm_freeze(mst_pm *m); /* 0, or MST_PM_ENOMEM */

typedef struct mst_pm_walk {
    const mst_pm *m;
    size_t k, s; /* cursors */
} mst_pm_walk;

void mst_pm_walk_init(mst_pm_walk *w, const mst_pm *m);
/* State of @page (pages asked for must not decrease), with in @end the
 * first page after it that may be in another state (UINT64_MAX when @page
 * is past the map's end, which reads as MISSING) and in @slot the slot of
 * its chunk (-1: none). A run never crosses a chunk boundary when the chunk
 * has an entry. */
unsigned mst_pm_run(mst_pm_walk *w, uint64_t page, uint64_t *end, int64_t *slot);

#endif /* MST_PAGEMAP_H */
