/*
 * Fuzz target: a libvirt save image read through ms_open() (libvirt.h):
 * libvirt's header, the domain XML and cookie, the QEMU stream behind them,
 * raw or decompressed by the module's decoders. Limits are small so that
 * the fuzzer reaches them (a 1 MiB cap on the decompressed stream keeps a
 * decompression bomb to a millisecond); no page file is kept, so a run
 * touches no file system. An odd-sized input is read by offset (a file),
 * an even-sized one through the sequential callback (a pipe).
 *
 * Aborts when a failure says nothing, when record indexes skip, when a
 * record comes after END or when END is missing at the end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"

typedef struct src {
    const uint8_t *p;
    size_t len, pos;
} src;

/* Odd-sized reads, so that items straddle the readers' refills. */
static ssize_t read_src(void *ctx, void *buf, size_t len)
{
    src *s = ctx;
    size_t n = s->len - s->pos;
    if (n > len)
        n = len;
    if (n > 4093)
        n = 4093;
    memcpy(buf, s->p + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
}

static ssize_t pread_src(void *ctx, void *buf, size_t len, uint64_t offset)
{
    src *s = ctx;
    if (offset >= s->len)
        return 0;
    size_t n = s->len - (size_t)offset;
    if (n > len)
        n = len;
    if (n > 4093)
        n = 4093;
    memcpy(buf, s->p + offset, n);
    return (ssize_t)n;
}

static volatile uint64_t touched; /* keeps the reads of the views */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_qemu_import_options q;
    ms_qemu_import_options_init(&q);
    q.max_section_size = 1u << 20;
    q.max_device_bytes = 4u << 20;
    q.max_vmdesc_size = 1u << 20;
    q.max_ram_bytes = 1ull << 30;
    q.max_ram_blocks = 64;
    q.no_page_cache = true;
    ms_libvirt_options lo;
    ms_libvirt_options_init(&lo);
    lo.max_xml_size = 1u << 20;
    lo.max_decoder_memory = 8u << 20;
    lo.max_stream_size = 1u << 20;
    lo.qemu = &q;
    ms_open_options o;
    ms_open_options_init(&o);
    o.libvirt = &lo;
    o.format = "libvirt";

    src s = {data, size, 0};
    ms_input in = {.name = "fuzz"};
    if (size & 1) {
        in.pread = pread_src;
        in.pread_ctx = &s;
    } else {
        in.read = read_src;
        in.read_ctx = &s;
    }
    ms_reader *r = ms_open(&o, &in, 1);
    if (!r)
        return 0;
    const ms_record *rec;
    uint64_t index = 0, sum = 0;
    int rc = ms_reader_status(r), ended = 0;
    while (!rc && (rc = ms_reader_next(r, &rec)) > 0) {
        rc = 0;
        if (ended || rec->index != index++)
            abort(); /* a record after END, or an index skipped */
        if (rec->type == MS_REC_END)
            ended = 1;
        if (rec->type == MS_REC_DEVICE) /* touch the state the module made */
            for (size_t i = 0; i < rec->device.state_size; i++)
                sum += rec->device.state[i];
        if (rec->type == MS_REC_INFO && rec->info.description)
            sum += strlen(rec->info.description);
    }
    if (rc < 0 && !ms_reader_errmsg(r)[0])
        abort(); /* a failure always says why */
    if (rc == 0 && !ended)
        abort(); /* the reader ended without END */
    ms_reader_free(r);
    touched = sum;
    return 0;
}
