/*
 * The replay engine (include/migstream/replay.h): a loop over the reader
 * that turns records into state-changing callbacks. It holds no state of
 * its own beyond the reader's, so a VMM's memory use stays the reader's.
 */
#include <string.h>

#include "common/util.h"
#include "migstream/replay.h"

/* Calls cb->NAME(ctx, ...) when set; a negative return stops replay. */
#define CALL(cb, name, ...) ((cb)->name ? (cb)->name(__VA_ARGS__) : 0)

static int replay_pages(const ms_replay_callbacks *cb, void *ctx, const ms_pages *pg)
{
    const uint8_t *data = pg->data;
    for (size_t i = 0; i < pg->extent_count; i++) {
        const ms_extent *x = &pg->extents[i];
        const uint8_t *d = x->state == MS_PAGE_DATA ? data : NULL;
        int rc = CALL(cb, extent, ctx, pg->region, x, d);
        if (rc < 0)
            return rc;
        if (d)
            data += (size_t)x->count * pg->region->page_size;
    }
    return 0;
}

int ms_replay(ms_reader *r, const ms_replay_callbacks *user_cb, void *ctx)
{
    ms_replay_callbacks cb;
    const ms_header *h;
    const ms_record *rec;
    int rc;
    if (!r || !user_cb)
        return MS_EINVAL;
    memset(&cb, 0, sizeof cb);
    if (msi_struct_take(&cb, MSI_STRUCT_END(ms_replay_callbacks, part), user_cb,
                        user_cb->struct_size))
        return MS_EINVAL;
    if ((rc = ms_reader_header(r, &h)))
        return rc;
    if ((rc = CALL(&cb, header, ctx, h)) < 0)
        return rc;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->status)
            continue; /* lenient reader: reported already, nothing to apply */
        switch (rec->type) {
        case MS_REC_INFO:
            rc = CALL(&cb, info, ctx, &rec->info);
            break;
        case MS_REC_REGIONS:
            for (size_t i = 0; i < rec->region_count && rc >= 0; i++)
                rc = CALL(&cb, region, ctx, &rec->regions[i]);
            break;
        case MS_REC_PAGES:
            rc = replay_pages(&cb, ctx, &rec->pages);
            break;
        case MS_REC_DEVICE:
            rc = CALL(&cb, device, ctx, &rec->device);
            break;
        case MS_REC_ROUND:
            rc = CALL(&cb, round, ctx, &rec->round);
            break;
        case MS_REC_OVERLAY:
            for (size_t i = 0; i < rec->overlay_count && rc >= 0; i++)
                rc = CALL(&cb, overlay, ctx, &rec->overlays[i]);
            break;
        case MS_REC_PART:
            rc = CALL(&cb, part, ctx, rec->part);
            break;
        case MS_REC_END:
            rc = CALL(&cb, end, ctx, &rec->totals, rec->checksum);
            break;
        default:
            rc = rec->known ? 0 : CALL(&cb, unknown, ctx, rec);
        }
        if (rc < 0)
            return rc;
    }
    return rc;
}
