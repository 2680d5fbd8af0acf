/*
 * The tools' chores for a migration in parts (docs/FORMAT.md section 2.1):
 * the words that name a part, and migstream-validate's checks of the rules
 * a merging reader leaves to validators: within one round, no page and no
 * device instance in two parts. The parts are opened as any stream's
 * inputs are (mst_stream_open(), the library's ms_open() merges them). No
 * format logic: the tools see parts only through the public reader.
 */
#ifndef MST_PARTS_H
#define MST_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <migstream/migstream.h>

/* True when @r merges several parts. */
bool mst_is_parts(const ms_reader *r);

/* "part 1 (vm.mig.1), " for a record of a part read among several, else
 * "": what the tools put before "record N (TYPE at byte X)". */
const char *mst_part_prefix(ms_reader *r, const ms_record *rec, char *buf, size_t size);

/* ---- migstream-validate: pages and devices of one round in one part ---- */

typedef struct mst_round_check mst_round_check;

/* Bytes the page maps may take in all, like the page map's budget: a region
 * that would take the total past it is not checked (a warning says so). */
#define MST_ROUND_CHECK_BUDGET (256u << 20)
/* Device instances checked per round at most. */
#define MST_ROUND_CHECK_DEVICES 65536u

mst_round_check *mst_round_check_new(void);
void mst_round_check_free(mst_round_check *c);

/* A run of pages, or a device instance, that part @part sends in a round
 * in which part @other sent it too. @region is NULL for a device. */
typedef struct mst_clash {
    uint32_t part, other;
    const ms_region *region;
    uint64_t first, last; /* pages */
    const char *path;     /* device */
    uint32_t instance;
} mst_clash;
typedef void (*mst_clash_fn)(void *ctx, const ms_record *rec, const mst_clash *c);

/* What a region left unchecked: called once per region. */
typedef void (*mst_untracked_fn)(void *ctx, const ms_record *rec, const ms_region *region);

/* Feeds one record of the merged view: a ROUND starts a round (the maps
 * forget the previous one), PAGES and DEVICE records of a part are checked
 * against the other parts' in the round. 0, or -1 when memory ran out. */
int mst_round_check_record(mst_round_check *c, const ms_record *rec, mst_clash_fn clash,
                           mst_untracked_fn untracked, void *ctx);

/* True once devices past MST_ROUND_CHECK_DEVICES went unchecked. */
bool mst_round_check_devices_full(const mst_round_check *c);

#endif /* MST_PARTS_H */
