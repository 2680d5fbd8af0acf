/*
 * Comparing two streams by the guest state they leave behind (the "final
 * state" of docs/FORMAT.md section 2), not by their bytes: the engine of
 * migstream-diff, apart from its command line, so that a fuzz target and
 * the tests can run it in one process. docs/man/migstream-diff.1 describes
 * the output, text or JSON Lines, and every decision behind it.
 *
 *     mst_diff *d = mst_diff_new(&opts);
 *     mst_diff_load(d, 0, read_a, ctx_a, "a.mig", err, sizeof err);
 *     mst_diff_load(d, 1, read_b, ctx_b, "b.mig", err, sizeof err);
 *     int r = mst_diff_compare(d, stdout, err, sizeof err);
 *     mst_diff_free(d);
 *
 * Each side is replayed (ms_replay) into a page-state map per region
 * (tools/pagemap.h), the contents of its DATA pages in an unlinked sparse
 * temporary file, and the last state of each device in memory.
 */
#ifndef MST_DIFF_ENGINE_H
#define MST_DIFF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <migstream/migstream.h>

typedef struct mst_diff_options {
    bool json; /* JSON Lines instead of text */
    /* Reader options (limits) for both sides; NULL: the library's
     * defaults. */
    const ms_reader_options *reader;
    /* Bytes the page-state maps of each side may use; 0: the default,
     * MST_PM_BUDGET_DEFAULT. */
    size_t map_budget;
    /* Where DATA pages are kept; NULL: $TMPDIR, else /tmp. */
    const char *tmpdir;
} mst_diff_options;

/* What differed, as the summary line counts it. */
typedef struct mst_diff_totals {
    uint64_t meta, regions, pages, ranges, devices, overlays;
} mst_diff_totals;

/* Results of mst_diff_load and mst_diff_compare. */
enum { MST_DIFF_SAME = 0, MST_DIFF_DIFFERENT = 1, MST_DIFF_ERROR = 2 };

typedef struct mst_diff mst_diff;

/* @opts [borrow] may be NULL; its strings must outlive the engine. NULL when
 * out of memory. */
mst_diff *mst_diff_new(const mst_diff_options *opts);
void mst_diff_free(mst_diff *d); /* NULL is fine; closes the temporary files */

/*
 * Reads side @side (0: A, 1: B) to its end through @read. @name names the
 * input in messages ("standard input", a file name).
 * @return MST_DIFF_SAME (loaded), or MST_DIFF_ERROR with a message in @err
 *         ("stream A (NAME): ...") when the stream cannot be read or is
 *         refused, or a side is loaded twice.
 */
int mst_diff_load(mst_diff *d, unsigned side, ms_read_fn read, void *read_ctx, const char *name,
                  char *err, size_t err_size);

/*
 * Compares the two loaded sides and writes every difference and the summary
 * line to @out.
 * @param totals [out, optional] the counts of the summary line
 * @return MST_DIFF_SAME, MST_DIFF_DIFFERENT, or MST_DIFF_ERROR with a
 *         message in @err (output may then be incomplete). Call once.
 */
int mst_diff_compare(mst_diff *d, FILE *out, mst_diff_totals *totals, char *err, size_t err_size);

#endif /* MST_DIFF_ENGINE_H */
