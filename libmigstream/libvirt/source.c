/*
 * The driver of the libvirt module (source.h; docs/FORMATS.md section 2):
 * the header and texts through image.c, the QEMU stream through the QEMU
 * module's source, fed the image's bytes after the header, raw or through
 * unzip.c. Failures inside the QEMU stream keep the QEMU module's message
 * and say where its offsets count from; the decoder's failures come first,
 * since QEMU's reader only sees that its input failed.
 */
#include <stdio.h>
#include <string.h>

#include "common/cbor_codec.h"
#include "libvirt/image.h"
#include "libvirt/source.h"
#include "libvirt/unzip.h"
#include "migstream/qemu.h"
#include "qemu/source.h"

#define DEF_XML (16u << 20)
#define MAX_XML (32u << 20)
#define DEF_DECODER (128ull << 20)
#define MIN_DECODER (8ull << 20)
#define DEF_STREAM (1ull << 40)

void ms_libvirt_options_init(ms_libvirt_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    mlv_options_defaults(o);
}

void mlv_options_defaults(ms_libvirt_options *o)
{
    if (!o->max_xml_size)
        o->max_xml_size = DEF_XML;
    if (o->max_xml_size > MAX_XML)
        o->max_xml_size = MAX_XML;
    if (!o->max_decoder_memory)
        o->max_decoder_memory = DEF_DECODER;
    if (o->max_decoder_memory < MIN_DECODER)
        o->max_decoder_memory = MIN_DECODER;
    if (!o->max_stream_size)
        o->max_stream_size = DEF_STREAM;
}

enum step_state { ST_INFO, ST_DEVICE, ST_QEMU, ST_DONE };

typedef struct mlv_src {
    ms_libvirt_options o;
    mlv_in in;
    mlv_header h;
    msi_buf xml, cookie;
    msi_buf dev_state; /* the DEVICE record's CBOR state */
    char description[1024];
    mlv_unzip *unzip; /* a compressed image's decoder */
    msi_source *q;    /* the QEMU stream */
    enum step_state state;
    ms_record rec; /* the record handed out */
    uint64_t records;
} mlv_src;

/* ------------------------------------------------------------- the input */

/* Positional reads of a raw image's QEMU stream: its offsets, shifted past
 * the header. */
static ssize_t shifted_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
    const mlv_src *d = ctx;
    uint64_t at;
    if (msi_add_overflow(off, mlv_stream_start(&d->h), &at))
        return 0; /* past any file's end */
    return d->in.pread(d->in.pread_ctx, buf, len, at);
}

/* ------------------------------------------------------------ the records */

/* The CBOR state of the DEVICE record: a map of text keys (docs/FORMATS.md
 * section 2.4). */
static int encode_state(mlv_src *d)
{
    msi_buf *b = &d->dev_state;
    const char *format = mlv_format_name(d->h.format);
    int rc = msi_cbor_put_map(b, d->h.cookie_offset ? 4 : 3);
    rc = rc ? rc : msi_cbor_put_text(b, "xml", 3);
    rc = rc ? rc : msi_cbor_put_text(b, (const char *)d->xml.data, d->xml.len);
    if (d->h.cookie_offset) {
        rc = rc ? rc : msi_cbor_put_text(b, "cookie", 6);
        rc = rc ? rc : msi_cbor_put_text(b, (const char *)d->cookie.data, d->cookie.len);
    }
    rc = rc ? rc : msi_cbor_put_text(b, "was_running", 11);
    rc = rc ? rc : msi_cbor_put_bool(b, d->h.was_running != 0);
    rc = rc ? rc : msi_cbor_put_text(b, "format", 6);
    rc = rc ? rc : msi_cbor_put_text(b, format, strlen(format));
    return rc;
}

static void describe(mlv_src *d)
{
    char name[256], uuid[64];
    const char *xml = (const char *)d->xml.data;
    bool has_name = mlv_xml_element(xml, "name", name, sizeof name);
    bool has_uuid = mlv_xml_element(xml, "uuid", uuid, sizeof uuid);
    size_t k = (size_t)snprintf(d->description, sizeof d->description, "libvirt save image");
    if (has_name && name[0])
        k += (size_t)snprintf(d->description + k, sizeof d->description - k, " of domain '%s'",
                              name);
    if (has_uuid && uuid[0] && k < sizeof d->description)
        k += (size_t)snprintf(d->description + k, sizeof d->description - k, " (uuid %s)", uuid);
    if (k < sizeof d->description)
        snprintf(d->description + k, sizeof d->description - k, ", %s when saved, QEMU stream %s%s",
                 d->h.was_running ? "running" : "paused",
                 d->h.format == MLV_FORMAT_RAW ? "uncompressed" : mlv_format_name(d->h.format),
                 d->h.format == MLV_FORMAT_RAW ? "" : "-compressed");
    /* The name and uuid are the XML's checked UTF-8, but truncation may
     * have cut a character: then say less. */
    if (!msi_utf8_ok((const uint8_t *)d->description, strlen(d->description), false))
        snprintf(d->description, sizeof d->description, "libvirt save image, %s when saved",
                 d->h.was_running ? "running" : "paused");
}

/* A record of the module's own, at the image's start. */
static void own_record(mlv_src *d, uint16_t type)
{
    memset(&d->rec, 0, sizeof d->rec);
    d->rec.type = type;
    d->rec.known = true;
}

/* The QEMU source's failure (or the decoder's, which QEMU's reader saw
 * only as failed input) as this source's, saying where offsets count. */
static int inner_failed(msi_source *s, mlv_src *d)
{
    if (d->unzip && mlv_unzip_status(d->unzip))
        return msi_source_fail(s, mlv_unzip_status(d->unzip), mlv_unzip_err_offset(d->unzip), "%s",
                               mlv_unzip_errmsg(d->unzip));
    const msi_source *q = d->q;
    int status = q->status ? q->status : MS_ECORRUPT;
    if (d->h.format == MLV_FORMAT_RAW)
        return msi_source_fail(s, status, q->err_offset,
                               "QEMU stream (from offset %llu of the image; offsets below count "
                               "from there): %s",
                               (unsigned long long)mlv_stream_start(&d->h), q->msg);
    return msi_source_fail(s, status, q->err_offset,
                           "QEMU stream (%s-compressed from offset %llu of the image; offsets "
                           "below count its decompressed bytes): %s",
                           mlv_format_name(d->h.format),
                           (unsigned long long)mlv_stream_start(&d->h), q->msg);
}

/* A problem the QEMU source steps over, as this source's. */
static void inner_problem(void *ctx, int status, uint64_t offset, const char *msg)
{
    msi_source_problem(ctx, status, offset, "QEMU stream: %s", msg);
}

/* ------------------------------------------------------------- the ops */

static int bid(const uint8_t *head, size_t len)
{
    size_t n = len < MLV_MAGIC_LEN ? len : MLV_MAGIC_LEN;
    if (n == 0)
        return 0;
    if (memcmp(head, MS_LIBVIRT_MAGIC, n) == 0 || memcmp(head, MS_LIBVIRT_MAGIC_PARTIAL, n) == 0)
        return n == MLV_MAGIC_LEN ? 100 : 50; /* open refuses the partial magic, saying why */
    /* "LibvirtQemud" and something else: libvirt's, but not a save image
     * this reads; open names the magic. */
    return len >= 12 && memcmp(head, "LibvirtQemud", 12) == 0 ? 20 : 0;
}

static int src_open(msi_source *s)
{
    mlv_src *d = msi_calloc(&s->alloc, 1, sizeof *d);
    if (!d)
        return msi_source_fail(s, MS_ENOMEM, 0, "libvirt header at offset 0: out of memory");
    s->state = d;
    msi_buf_init(&d->xml, &s->alloc);
    msi_buf_init(&d->cookie, &s->alloc);
    msi_buf_init(&d->dev_state, &s->alloc);
    ms_libvirt_options_init(&d->o);
    if (s->options) {
        const ms_libvirt_options *o = s->options;
        memcpy(&d->o, o,
               o->struct_size && o->struct_size < sizeof d->o ? o->struct_size : sizeof d->o);
        d->o.struct_size = sizeof d->o;
        mlv_options_defaults(&d->o);
    }
    if (!s->io.read && !s->io.pread)
        return msi_source_fail(s, MS_EINVAL, 0, "libvirt image: no read callback");
    if (s->io.nchannels)
        return msi_source_fail(s, MS_EINVAL, 0,
                               "a libvirt save image has one input, but %zu more were given",
                               s->io.nchannels);
    d->in = (mlv_in){.read = s->io.read,
                     .read_ctx = s->io.read_ctx,
                     .pread = s->io.pread,
                     .pread_ctx = s->io.pread_ctx};
    int rc;
    if ((rc = mlv_header_read(s, &d->in, d->o.max_xml_size, &d->h)) ||
        (rc = mlv_data_read(s, &d->in, &d->h, &d->xml, &d->cookie)))
        return rc;
    if (encode_state(d))
        return msi_source_fail(s, MS_ENOMEM, MLV_HEADER_SIZE,
                               "libvirt domain XML at offset %u: out of memory encoding it",
                               MLV_HEADER_SIZE);
    describe(d);

    /* The QEMU stream: the image after the header, raw or decompressed. */
    msi_source_io io = {0};
    if (d->h.format == MLV_FORMAT_RAW) {
        io.read = d->in.read;
        io.read_ctx = d->in.read_ctx;
        if (d->in.pread) {
            io.pread = shifted_pread;
            io.pread_ctx = d;
        }
    } else {
        const mlv_unzip_config c = {.format = d->h.format,
                                    .max_memory = d->o.max_decoder_memory,
                                    .max_out = d->o.max_stream_size};
        if (!(d->unzip = mlv_unzip_new(&s->alloc, &d->in, &c)))
            return msi_source_fail(s, MS_ENOMEM, d->in.pos, "%s decoder: out of memory",
                                   mlv_format_name(d->h.format));
        if (mlv_unzip_status(d->unzip))
            return inner_failed(s, d);
        io.read = mlv_unzip_read;
        io.read_ctx = d->unzip;
    }
    if (!(d->q = msi_source_create(&mq_source_ops, &s->alloc, &io, d->o.qemu)))
        return msi_source_fail(s, MS_ENOMEM, d->in.pos, "QEMU stream: out of memory");
    d->q->problem = inner_problem;
    d->q->problem_ctx = s;
    if (msi_source_open(d->q))
        return inner_failed(s, d);
    s->header = d->q->header;
    snprintf(s->header.writer_name, sizeof s->header.writer_name, "libvirt");
    s->info.machine = d->q->info.machine;
    s->info.description = d->description;
    d->state = ST_INFO;
    return 0;
}

static int src_next(msi_source *s, const ms_record **out)
{
    mlv_src *d = s->state;
    const ms_record *rec;
    switch (d->state) {
    case ST_INFO:
        own_record(d, MS_REC_INFO);
        d->rec.info = s->info;
        d->state = ST_DEVICE;
        break;
    case ST_DEVICE:
        own_record(d, MS_REC_DEVICE);
        d->rec.device = (ms_device){.path = MLV_DEVICE_PATH,
                                    .instance = 0,
                                    .schema = MLV_DEVICE_SCHEMA,
                                    .version = MLV_DEVICE_VERSION,
                                    .state = d->dev_state.data,
                                    .state_size = d->dev_state.len};
        d->state = ST_QEMU;
        break;
    case ST_QEMU:
        for (;;) {
            int rc = msi_source_next(d->q, &rec);
            if (rc < 0)
                return inner_failed(s, d);
            if (rc == 0) /* the QEMU source ends with END, handed out below */
                return msi_source_fail(s, MS_ECORRUPT, 0, "QEMU stream: ended without END");
            if (rec->type != MS_REC_INFO) /* ours carries its machine */
                break;
        }
        d->rec = *rec;
        if (rec->type == MS_REC_END) {
            /* Totals of this source: one more device, and the image's bytes. */
            d->rec.totals.records = d->records;
            d->rec.totals.devices++;
            d->rec.totals.bytes =
                d->unzip ? d->in.pos : mlv_stream_start(&d->h) + rec->totals.bytes;
            d->state = ST_DONE;
        }
        break;
    default:
        return 0;
    }
    d->rec.index = d->records++;
    *out = &d->rec;
    return 1;
}

static void src_close(msi_source *s)
{
    mlv_src *d = s->state;
    if (!d)
        return;
    msi_source_destroy(d->q);
    mlv_unzip_free(d->unzip);
    msi_buf_free(&d->xml);
    msi_buf_free(&d->cookie);
    msi_buf_free(&d->dev_state);
    msi_free(&s->alloc, d);
    s->state = NULL;
}

const msi_source_ops mlv_source_ops = {
    .name = "libvirt",
    .title = "libvirt save image",
    .bid = bid,
    .open = src_open,
    .next = src_next,
    .close = src_close,
};
