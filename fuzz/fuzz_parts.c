/*
 * Fuzz target: a migration in parts read as one (open.h, FORMAT.md section
 * 2.1), the merge of format/parts.c. The input is "n (1 byte: 1 + n % 4
 * parts), then per part a u32 LE length and its bytes"; the parts go to
 * ms_open() as memory inputs, in that order, and are read strictly and
 * leniently (every problem stepped over that can be), every view touched,
 * then the per-part facts and the end of every input checked.
 */
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"
#include "fuzz_frame.h"

#define MAX_INPUT_PARTS 4

static void count_problem(void *ctx, int status, uint64_t offset, int64_t record, const char *msg)
{
    uint64_t *n = ctx;
    *n += (uint64_t)status + offset + (uint64_t)record + strlen(msg);
}

/* Folds every byte a record's views reach, so that a view past its buffer
 * is caught by the sanitizers. */
static uint64_t touch(const ms_record *rec)
{
    uint64_t h = rec->offset ^ rec->index ^ rec->checksum ^ rec->type;
    for (uint32_t i = 0; rec->payload && i < rec->length; i++)
        h = h * 31 + rec->payload[i];
    if (rec->part)
        h ^= rec->part->index ^ rec->part->count ^ rec->part->migration_id[15];
    if (rec->status)
        return h;
    switch (rec->type) {
    case MS_REC_REGIONS:
        for (size_t i = 0; i < rec->region_count; i++)
            h += rec->regions[i].size + strlen(rec->regions[i].name);
        break;
    case MS_REC_PAGES:
        for (size_t i = 0; i < rec->pages.extent_count; i++)
            h += rec->pages.extents[i].first + rec->pages.extents[i].count;
        for (size_t i = 0; i < rec->pages.data_size; i += 512)
            h += rec->pages.data[i];
        h += rec->pages.region->page_size;
        break;
    case MS_REC_DEVICE:
        h += strlen(rec->device.path) + strlen(rec->device.schema);
        for (size_t i = 0; i < rec->device.state_size; i++)
            h += rec->device.state[i];
        break;
    case MS_REC_INFO:
        h += rec->info.machine ? strlen(rec->info.machine) : 0;
        break;
    case MS_REC_END:
        h += rec->totals.records + rec->totals.bytes + rec->totals.rounds;
        break;
    default:
        break;
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[MAX_INPUT_PARTS] = {"part a", "part b", "part c", "part d"};
    if (size < 1)
        return 0;
    const size_t want = (size_t)data[0] % MAX_INPUT_PARTS + 1;
    fz_mem m[MAX_INPUT_PARTS];
    size_t n = 0, pos = 1;
    while (n < want && pos + 4 <= size) {
        size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8 | (size_t)data[pos + 2] << 16 |
                     (size_t)data[pos + 3] << 24;
        pos += 4;
        if (len > size - pos)
            len = size - pos;
        m[n++] = (fz_mem){data + pos, len, 0};
        pos += len;
    }
    if (n == 0)
        return 0;
    volatile uint64_t sink = 0;
    for (int lenient = 0; lenient < 2; lenient++) {
        uint64_t problems = 0;
        ms_reader_options ro;
        ms_reader_options_init(&ro);
        ro.max_regions = 16; /* small limits: the merge's limits get explored too */
        ro.max_overlays = 16;
        ro.max_record_size = 1u << 20;
        if (lenient) {
            ro.on_problem = count_problem;
            ro.problem_ctx = &problems;
        }
        ms_open_options oo;
        ms_open_options_init(&oo);
        oo.reader = &ro;
        ms_input in[MAX_INPUT_PARTS];
        for (size_t i = 0; i < n; i++) {
            m[i].pos = 0;
            in[i] = (ms_input){.read = fz_mem_read, .read_ctx = &m[i], .name = names[i]};
        }
        ms_reader *r = ms_open(&oo, in, n);
        const ms_record *rec;
        int rc = ms_reader_status(r);
        while (!rc && (rc = ms_reader_next(r, &rec)) > 0)
            sink += touch(rec);
        if (rc == 0)
            sink += (uint64_t)ms_reader_expect_eof(r);
        for (uint32_t i = 0; i < ms_reader_part_count(r); i++) {
            const ms_part_info *pi = ms_reader_part_info(r, i);
            sink += pi->records + pi->bytes + pi->digest + strlen(pi->name ? pi->name : "");
        }
        sink += (uint64_t)ms_reader_error_part(r) + strlen(ms_reader_errmsg(r)) + problems;
        ms_reader_free(r);
    }
    (void)sink;
    return 0;
}
