/*
 * Shared fuzzing helpers (fuzz_common.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

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

/* An input that hands out the bytes in pieces of 1..64 and, when `drip`
 * is set, says "would block" before every other piece. */
typedef struct source {
    const uint8_t *p;
    size_t len, pos;
    uint64_t rng;
    int drip, blocked;
} source;

static ssize_t source_read(void *ctx, void *buf, size_t len)
{
    source *s = ctx;
    size_t n = len;
    if (s->drip) {
        if ((s->blocked = !s->blocked))
            return -EAGAIN;
        s->rng = s->rng * 6364136223846793005u + 1442695040888963407u;
        n = 1 + (size_t)(s->rng >> 58);
        if (n > len)
            n = len;
    }
    if (n > s->len - s->pos)
        n = s->len - s->pos;
    memcpy(buf, s->p + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
}

/* @how: 0 from memory, 1 through a callback, 2 through a callback that
 * would block at every other call (each call repeated until it does not). */
static uint64_t read_once(const uint8_t *data, size_t size, int lenient, int how)
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
    source src = {.p = data, .len = size, .rng = size, .drip = how == 2};
    ms_reader *r = how ? ms_reader_new(&o, source_read, &src)
                       : ms_reader_new_memory(&o, data, size);
    const ms_record *rec;
    uint64_t sum = 0;
    char text[256];
    int rc;
    if (!r)
        return 0;
    while ((rc = ms_reader_next(r, &rec)) > 0 || rc == MS_EAGAIN) {
        if (rc == MS_EAGAIN)
            continue;
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
    while (ms_reader_expect_eof(r) == MS_EAGAIN)
        ;
    sum += strlen(ms_reader_errmsg(r)) + problems + ms_reader_offset(r);
    ms_reader_free(r);
    return sum;
}

uint64_t fz_read_stream(const uint8_t *data, size_t size)
{
    /* Bytes that come a few at a time, with "would block" between them,
     * must be read exactly as bytes that come at once. */
    uint64_t whole = read_once(data, size, 1, 1);
    if (read_once(data, size, 1, 2) != whole)
        abort();
    return read_once(data, size, 0, 0) + whole;
}
