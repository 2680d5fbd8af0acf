/*
 * libmigstream: applying a stream (the replay engine).
 *
 * ms_replay() reads a stream to its end and calls back for everything that
 * changes the guest's final state, in stream order: a VMM receiving a
 * migration implements the callbacks to populate its memory and devices;
 * migstream-replay implements them to write image files. The engine adds no
 * buffering of its own: memory stays bounded by the reader's largest record.
 *
 * Callbacks may be NULL (that kind of event is ignored). A callback returns 0
 * to go on, or a negative value to stop: ms_replay() then returns that value
 * unchanged, so a VMM can pass its own error codes through.
 *
 * Threads: ms_replay() runs on the calling thread and calls back on it; the
 * reader is its alone while it runs (common.h, "Handles").
 */
#ifndef MIGSTREAM_REPLAY_H
#define MIGSTREAM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "reader.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_replay_callbacks {
    size_t struct_size; /**< sizeof(ms_replay_callbacks) (common.h, "Growing structs") */
    /** The preamble, once, before anything else. */
    int (*header)(void *ctx, const ms_header *header);
    /** The INFO record, if the stream has one. */
    int (*info)(void *ctx, const ms_info *info);
    /** Each region, when it is declared (before any pages of it). */
    int (*region)(void *ctx, const ms_region *region);
    /**
     * A run of pages in one state. For MS_PAGE_DATA, @p data holds
     * extent->count * region->page_size bytes (a view valid during the call);
     * for other states it is NULL: ZERO and FILL pages follow from the state
     * and argument, DISCARDED pages are "don't care" (leave them as they
     * are), and IN_PLACE pages are already in place at the argument's
     * address. A later call for the same page replaces what an earlier one
     * said.
     */
    int (*extent)(void *ctx, const ms_region *region, const ms_extent *extent,
                  const uint8_t *data);
    /** A device's state (a later call for the same path and instance
     *  replaces an earlier one). */
    int (*device)(void *ctx, const ms_device *device);
    /** A record of a type this library does not know, without
     *  MUST_UNDERSTAND: skipped, reported here. */
    int (*unknown)(void *ctx, const ms_record *record);
    /** The END record's totals, after all else, once the stream checked out. */
    int (*end)(void *ctx, const ms_totals *totals, uint64_t stream_digest);
    /** The start of a pre-copy round; extents until the next round or END
     *  belong to it (format 1.1). */
    int (*round)(void *ctx, const ms_round *round);
    /** One overlay (format 1.1). Overlays only add up: none replaces
     *  another, and the active one at a frame is the highest-priority kind
     *  (ms_overlay_active()). */
    int (*overlay)(void *ctx, const ms_overlay *overlay);
    /** The PART record of a stream that is one part of a migration in
     *  parts (format 1.2), first: which part of which migration it is. A
     *  reader of every part (open.h) calls it once per part, in part
     *  order, each part's before its other records. */
    int (*part)(void *ctx, const ms_part *part);
} ms_replay_callbacks;

/**
 * Reads @p r to the END record, calling @p cb.
 * @return 0 when the whole stream was applied; a reader status (see
 *         ms_reader_next) when the stream is bad, with ms_reader_errmsg()
 *         saying where; the negative value a callback returned; or
 *         MS_EINVAL, nothing read, when @p r or @p cb is NULL or @p cb is a
 *         struct this library cannot take (common.h, "Growing structs").
 */
MS_API int ms_replay(ms_reader *r, const ms_replay_callbacks *cb, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_REPLAY_H */
