/*
 * Shared fuzzing helpers (fuzz_common.h).
 */
#include <string.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"

static void ignore_problem(void *ctx, int status, uint64_t offset, int64_t record,
                           const char *msg)
{
    (void)status, (void)offset, (void)record;
    *(size_t *)ctx += strlen(msg);
}

/* Sums bytes so the compiler cannot drop the reads. */
static uint64_t touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += b[i];
    return s;
}

static uint64_t read_once(const uint8_t *data, size_t size, int lenient)
{
    ms_reader_options o;
    size_t problems = 0;
    ms_reader_options_init(&o);
    o.max_record_size = 1 << 20; /* keep memory per input small */
    o.max_regions = 64;
    o.max_cbor_depth = 32;
    if (lenient) {
        o.on_problem = ignore_problem;
        o.problem_ctx = &problems;
    }
    ms_reader *r = ms_reader_new_memory(&o, data, size);
    const ms_record *rec;
    uint64_t sum = 0;
    char text[256];
    if (!r)
        return 0;
    while (ms_reader_next(r, &rec) > 0) {
        sum += touch(rec->payload, rec->length);
        if (rec->status)
            continue;
        switch (rec->type) {
        case MS_REC_INFO:
            if (rec->info.machine)
                sum += strlen(rec->info.machine);
            if (rec->info.description)
                sum += strlen(rec->info.description);
            break;
        case MS_REC_REGIONS:
            for (size_t i = 0; i < rec->region_count; i++)
                sum += strlen(rec->regions[i].name) + rec->regions[i].size;
            break;
        case MS_REC_PAGES:
            sum += touch(rec->pages.data, rec->pages.data_size);
            for (size_t i = 0; i < rec->pages.extent_count; i++)
                sum += rec->pages.extents[i].count;
            break;
        case MS_REC_DEVICE:
            sum += strlen(rec->device.path) + strlen(rec->device.schema);
            sum += (uint64_t)ms_cbor_format(rec->device.state, rec->device.state_size,
                                            MS_CBOR_JSON, 32, text, sizeof text);
            break;
        default:
            break;
        }
    }
    ms_reader_expect_eof(r);
    sum += strlen(ms_reader_errmsg(r)) + problems;
    ms_reader_free(r);
    return sum;
}

uint64_t fz_read_stream(const uint8_t *data, size_t size)
{
    return read_once(data, size, 0) + read_once(data, size, 1);
}
