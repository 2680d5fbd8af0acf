/*
 * Opening a stream of any format (include/migstream/open.h): the table of
 * the formats this build reads, their bids on each input's first bytes,
 * which input is the main one and which are its extra inputs, and the
 * reader that reads them.
 *
 * Owns: the inputs' bookkeeping (names, the bytes read ahead to recognize
 * a sequential input, descriptors opened by ms_open_files()), which lives
 * as long as the reader (msi_reader_on_free()). Calls: every module's
 * msi_source_ops and the format layer's readers: the one layer above the
 * modules.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/util.h"
#include "format/frame.h"
#include "format/parts.h"
#include "format/source.h"
#include "migstream/modules.h"
#include "migstream/open.h"
#if MS_HAVE_QEMU
#include "qemu/source.h"
#endif
#if MS_HAVE_LIBVIRT
#include "libvirt/source.h"
#endif
#if MS_HAVE_XEN
#include "xen/source.h"
#endif

#define HEAD MSI_SOURCE_BID_BYTES

/* ------------------------------------------------------------ the formats */

/* This library's own format: its magic. */
static int native_bid(const uint8_t *head, size_t len)
{
    size_t n = len < MSI_MAGIC_LEN ? len : MSI_MAGIC_LEN;
    if (n == 0 || memcmp(head, msi_magic, n) != 0)
        return 0;
    return n == MSI_MAGIC_LEN ? 100 : 50;
}

static const msi_source_ops native_ops = {
    .name = "migstream",
    .title = "libmigstream stream",
    .bid = native_bid,
};

/* In the order they bid: a tie goes to the first. The first is read by the
 * format layer's own reader, the others through their modules' sources. */
static const msi_source_ops *const formats[] = {
    &native_ops,
#if MS_HAVE_QEMU
    &mq_source_ops,
#endif
#if MS_HAVE_LIBVIRT
    &mlv_source_ops,
#endif
#if MS_HAVE_XEN
    &mx_source_ops,
#endif
};
#define NFORMATS (sizeof formats / sizeof formats[0])

const char *const *ms_formats(void)
{
    static const char *const names[] = {
        "migstream",
#if MS_HAVE_QEMU
        "qemu",
#endif
#if MS_HAVE_LIBVIRT
        "libvirt",
#endif
#if MS_HAVE_XEN
        "xen",
#endif
        NULL,
    };
    return names;
}

static const msi_source_ops *format_named(const char *name)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (strcmp(formats[i]->name, name) == 0)
            return formats[i];
    return NULL;
}

/* ------------------------------------------------------------- the inputs */

typedef struct input {
    ms_input in; /* the caller's, name pointing at our copy */
    char name[64 + 256];
    uint8_t head[HEAD];
    size_t head_len; /* bytes in head */
    size_t head_pos; /* of them, handed out again by head_read() */
    bool head_by_pread;
    int fd;                       /* opened by ms_open_files(), or -1 */
    int bid_main;                 /* its best bid as a main input */
    const msi_source_ops *format; /* of that bid, or NULL */
} input;

typedef struct input_set {
    ms_allocator alloc;
    input *in;
    size_t n;
    msi_source_channel *channels;
#if MS_HAVE_LIBVIRT
    ms_libvirt_options libvirt; /* the caller's, taken by the struct rule */
#endif
} input_set;

static void set_free(void *ctx)
{
    input_set *set = ctx;
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        if (set->in[i].fd > STDIN_FILENO)
            close(set->in[i].fd);
    msi_free(&set->alloc, set->channels);
    msi_free(&set->alloc, set->in);
    ms_allocator a = set->alloc;
    msi_free(&a, set);
}

/* A sequential input whose first bytes were read to recognize it: they are
 * handed out again first. */
static ssize_t head_read(void *ctx, void *buf, size_t len)
{
    input *in = ctx;
    if (in->head_pos < in->head_len) {
        size_t n = in->head_len - in->head_pos;
        if (n > len)
            n = len;
        memcpy(buf, in->head + in->head_pos, n);
        in->head_pos += n;
        return (ssize_t)n;
    }
    return in->in.read(in->in.read_ctx, buf, len);
}

/* Reads the first bytes of @in into in->head: by position when it can, so
 * nothing is consumed. 0, or the callback's failure. */
static int read_head(input *in)
{
    while (in->head_len < HEAD) {
        ssize_t k;
        if (in->in.pread) {
            in->head_by_pread = true;
            k = in->in.pread(in->in.pread_ctx, in->head + in->head_len, HEAD - in->head_len,
                             in->head_len);
        } else {
            k = in->in.read(in->in.read_ctx, in->head + in->head_len, HEAD - in->head_len);
        }
        if (k < 0)
            return (int)(k < INT32_MIN ? INT32_MIN : k);
        if (k == 0 || (size_t)k > HEAD - in->head_len)
            break;
        in->head_len += (size_t)k;
    }
    return 0;
}

/* The sequential reader of an input: the read-ahead bytes first. */
static void input_reads(input *in, ms_read_fn *fn, void **ctx)
{
    if (in->in.read && !in->head_by_pread) {
        *fn = head_read;
        *ctx = in;
    } else {
        *fn = in->in.read; /* the head was read by position: nothing consumed */
        *ctx = in->in.read_ctx;
    }
}

/* The format whose extra input @in starts like (its best bid), or NULL. */
static const msi_source_ops *extra_format(const input *in)
{
    const msi_source_ops *best = NULL;
    int bid = 0;
    for (size_t f = 0; f < NFORMATS; f++) {
        int b = formats[f]->bid_extra ? formats[f]->bid_extra(in->head, in->head_len) : 0;
        if (b > bid) {
            bid = b;
            best = formats[f];
        }
    }
    return best;
}

/* ------------------------------------------------------------------ open */

void ms_open_options_init(ms_open_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

static ms_reader *refuse(const ms_open_options *o, input_set *set, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ms_reader *refuse(const ms_open_options *o, input_set *set, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_free(set);
    return msi_reader_new_failed(o->reader, status, msg);
}

/* The first bytes of @in, as hex, for a refusal. */
static const char *head_hex(const input *in, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < in->head_len && i < 8 && n + 4 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%02x", i ? " " : "", in->head[i]);
    return in->head_len ? buf : "none: it is empty";
}

/* A reader of @n inputs that are the parts of one migration, in any order.
 * The parts are read up to their PART records now, so that a set that is
 * not one migration is refused here. */
static ms_reader *open_parts(const ms_open_options *o, input_set *set, size_t n)
{
    if (!(set->channels = msi_calloc(&set->alloc, n, sizeof *set->channels))) {
        set_free(set);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        input_reads(&set->in[i], &set->channels[i].read, &set->channels[i].ctx);
        set->channels[i].name = set->in[i].name;
    }
    msi_source *src = msi_parts_create(o->reader, set->channels, n);
    if (!src) {
        set_free(set);
        return NULL;
    }
    ms_reader *r = msi_reader_new_source(o->reader, src);
    if (!r || msi_reader_on_free(r, set_free, set) != 0) {
        set_free(set);
        return r;
    }
    (void)ms_reader_header(r, NULL); /* a refusal leaves the reader failed */
    return r;
}

static ms_reader *open_inputs(const ms_open_options *o, input_set *set, size_t n)
{
    const msi_source_ops *forced = NULL;
    if (o->format && !(forced = format_named(o->format)))
        return refuse(o, set, MS_EINVAL, "format \"%s\" is not one this build reads", o->format);

    /* Each input's best bid as a main input. */
    size_t main = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        input *in = &set->in[i];
        int rc = read_head(in);
        if (rc < 0)
            return refuse(o, set, MS_EIO, "%s: reading its first bytes failed (%s)", in->name,
                          rc > -4096 ? strerror(-rc) : "the callback failed");
        for (size_t f = 0; f < NFORMATS; f++) {
            if (forced && formats[f] != forced)
                continue;
            int b = formats[f]->bid(in->head, in->head_len);
            if (b > in->bid_main) {
                in->bid_main = b;
                in->format = formats[f];
            }
        }
        if (in->bid_main > 0 && (main == SIZE_MAX || in->bid_main > set->in[main].bid_main))
            main = i;
    }
    if (main == SIZE_MAX && forced && n > 0)
        main = 0; /* the format was named: its own open says what is wrong */
    if (main == SIZE_MAX) {
        /* Only extra inputs (a multifd channel without its main stream). */
        for (size_t i = 0; i < n; i++) {
            const msi_source_ops *f = extra_format(&set->in[i]);
            if (f)
                return refuse(o, set, MS_EINVAL, "%s: a %s of a %s, given without its main input",
                              set->in[i].name, f->extra_title ? f->extra_title : "extra input",
                              f->title);
        }
        /* A lone input no format recognizes is read as this library's
         * own: its reader says what is wrong with it in its own terms (a
         * damaged magic, the magic it expected, an empty stream). */
        if (n == 1) {
            main = 0;
            set->in[0].format = &native_ops;
        }
    }
    if (main == SIZE_MAX) {
        char hex[40], known[256];
        size_t k = 0;
        known[0] = 0;
        for (size_t f = 0; f < NFORMATS && k < sizeof known; f++)
            k += (size_t)snprintf(known + k, sizeof known - k, "%s%s",
                                  f == 0              ? ""
                                  : f + 1 == NFORMATS ? " and "
                                                      : ", ",
                                  formats[f]->title);
        return refuse(o, set, MS_EMAGIC,
                      "%s: not a migration stream this build reads (first bytes %s); it reads: %s",
                      set->in[0].name, head_hex(&set->in[0], hex, sizeof hex), known);
    }
    const msi_source_ops *ops = forced ? forced : set->in[main].format;

    /* Several libmigstream streams: the parts of one migration (FORMAT.md
     * section 2.1), which the parts source tells apart by their PART
     * records, or a refusal naming the input that is none. */
    bool all_native = ops == &native_ops && n > 1;
    for (size_t i = 0; i < n && all_native; i++)
        all_native = set->in[i].format == &native_ops;
    if (all_native)
        return open_parts(o, set, n);

    /* Every other input must be one of its extra inputs. */
    size_t nextra = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == main)
            continue;
        input *in = &set->in[i];
        int b = ops->bid_extra ? ops->bid_extra(in->head, in->head_len) : 0;
        if (b <= 0) {
            if (in->format == ops)
                return refuse(o, set, MS_EINVAL,
                              "%s and %s are both main inputs (%ss): open one stream at a time",
                              set->in[main].name, in->name, in->format->title);
            if (in->format)
                return refuse(o, set, MS_EINVAL,
                              "%s (a %s) and %s (a %s) are both main inputs: open one stream at "
                              "a time",
                              set->in[main].name, ops->title, in->name, in->format->title);
            const msi_source_ops *f = extra_format(in);
            if (f)
                return refuse(o, set, MS_EINVAL,
                              "%s: a %s of a %s, not an extra input of the %s %s", in->name,
                              f->extra_title ? f->extra_title : "extra input", f->title, ops->title,
                              set->in[main].name);
            char hex[40];
            return refuse(o, set, MS_EINVAL,
                          "%s: not an extra input of the %s %s (first bytes %s)%s", in->name,
                          ops->title, set->in[main].name, head_hex(in, hex, sizeof hex),
                          ops->bid_extra ? "" : ", which has none");
        }
        nextra++;
    }

    if (ops == &native_ops) {
        ms_read_fn fn;
        void *ctx;
        input_reads(&set->in[main], &fn, &ctx);
        ms_reader *r = ms_reader_new(o->reader, fn, ctx);
        if (r && msi_reader_on_free(r, set_free, set) == 0)
            return r;
        set_free(set);
        return r;
    }

    /* A module's source, its extra inputs as channels in the order given. */
    if (nextra && !(set->channels = msi_calloc(&set->alloc, nextra, sizeof *set->channels))) {
        set_free(set);
        return NULL;
    }
    msi_source_io io = {.pread = set->in[main].in.pread,
                        .pread_ctx = set->in[main].in.pread_ctx,
                        .channels = set->channels,
                        .nchannels = nextra};
    input_reads(&set->in[main], &io.read, &io.read_ctx);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (i == main)
            continue;
        input_reads(&set->in[i], &set->channels[k].read, &set->channels[k].ctx);
        set->channels[k++].name = set->in[i].name;
    }
    const void *module_options = NULL;
#if MS_HAVE_QEMU
    if (ops == &mq_source_ops)
        module_options = o->qemu;
#endif
#if MS_HAVE_LIBVIRT
    /* The QEMU stream inside takes the libvirt options' QEMU limits, else
     * those given for QEMU streams. */
    if (ops == &mlv_source_ops) {
        if (!set->libvirt.qemu)
            set->libvirt.qemu = o->qemu;
        module_options = &set->libvirt;
    }
#endif
#if MS_HAVE_XEN
    if (ops == &mx_source_ops)
        module_options = o->xen;
#endif
    const ms_allocator *alloc = o->reader ? &o->reader->allocator : NULL;
    msi_source *src = msi_source_create(ops, alloc, &io, module_options);
    if (!src) {
        set_free(set);
        return NULL;
    }
    ms_reader *r = msi_reader_new_source(o->reader, src);
    if (r && msi_reader_on_free(r, set_free, set) == 0)
        return r;
    set_free(set);
    return r;
}

/* A set of @n inputs, named. NULL when out of memory. */
static input_set *new_set(const ms_open_options *o, size_t n)
{
    ms_allocator a;
    msi_allocator_set(&a, o->reader ? &o->reader->allocator : NULL);
    input_set *set = msi_calloc(&a, 1, sizeof *set);
    if (!set)
        return NULL;
    set->alloc = a;
    if (n && !(set->in = msi_calloc(&a, n, sizeof *set->in))) {
        msi_free(&a, set);
        return NULL;
    }
    set->n = n;
    for (size_t i = 0; i < n; i++)
        set->in[i].fd = -1;
    return set;
}

/* The caller's options by the struct rule, or why not. */
static const char *take_options(ms_open_options *o, const ms_open_options *given)
{
    ms_open_options_init(o);
    if (!given)
        return NULL;
    const char *why =
        msi_struct_take(o, MSI_STRUCT_END(ms_open_options, xen), given, given->struct_size);
    if (why)
        ms_open_options_init(o);
    return why;
}

/* The libvirt module's options into @set, by the struct rule: NULL, or why
 * they cannot be taken. */
static const char *take_libvirt(input_set *set, const ms_open_options *o)
{
#if MS_HAVE_LIBVIRT
    ms_libvirt_options_init(&set->libvirt);
    const ms_libvirt_options *lo = o->libvirt;
    if (!lo)
        return NULL;
    const char *why = msi_struct_take(&set->libvirt, MSI_STRUCT_END(ms_libvirt_options, qemu), lo,
                                      lo->struct_size);
    mlv_options_defaults(&set->libvirt);
    return why;
#else
    (void)set;
    (void)o;
    return NULL;
#endif
}

/* What ms_open() and ms_open_files() do first: the options by the struct
 * rule, at least one input (@what: "input", "file"), a set of @n inputs.
 * NULL with *@r set when that fails (a failed reader, or NULL without
 * memory). */
static input_set *begin(ms_open_options *o, const ms_open_options *opts, const void *inputs,
                        size_t n, const char *what, ms_reader **r)
{
    const char *why = take_options(o, opts);
    char msg[256];
    *r = NULL;
    if (why) {
        snprintf(msg, sizeof msg, "invalid open options: %s", why);
        *r = msi_reader_new_failed(NULL, MS_EINVAL, msg);
        return NULL;
    }
    if (n == 0 || !inputs) {
        snprintf(msg, sizeof msg, "invalid argument: no %s", what);
        *r = msi_reader_new_failed(o->reader, MS_EINVAL, msg);
        return NULL;
    }
    input_set *set = new_set(o, n);
    if (set && (why = take_libvirt(set, o))) {
        *r = refuse(o, set, MS_EINVAL, "invalid libvirt options: %s", why);
        return NULL;
    }
    return set;
}

ms_reader *ms_open(const ms_open_options *opts, const ms_input *inputs, size_t n)
{
    ms_open_options o;
    ms_reader *r;
    input_set *set = begin(&o, opts, inputs, n, "input", &r);
    if (!set)
        return r;
    for (size_t i = 0; i < n; i++) {
        input *in = &set->in[i];
        in->in = inputs[i];
        if (inputs[i].name)
            snprintf(in->name, sizeof in->name, "%s", inputs[i].name);
        else
            snprintf(in->name, sizeof in->name, "input %zu", i + 1);
        in->in.name = in->name;
        if (!in->in.read && !in->in.pread)
            return refuse(&o, set, MS_EINVAL, "invalid argument: %s has no read callback",
                          in->name);
    }
    return open_inputs(&o, set, n);
}

ms_reader *ms_open_files(const ms_open_options *opts, const char *const *paths, size_t n)
{
    ms_open_options o;
    ms_reader *r;
    input_set *set = begin(&o, opts, paths, n, "file", &r);
    if (!set)
        return r;
    for (size_t i = 0; i < n; i++) {
        input *in = &set->in[i];
        bool std = strcmp(paths[i], "-") == 0;
        snprintf(in->name, sizeof in->name, "%s", std ? "standard input" : paths[i]);
        in->fd = std ? STDIN_FILENO : open(paths[i], O_RDONLY | O_CLOEXEC);
        if (in->fd < 0)
            return refuse(&o, set, MS_EIO, "%s: %s", in->name, strerror(errno));
        struct stat st;
        in->in.name = in->name;
        in->in.read = msi_fd_read;
        in->in.read_ctx = msi_fd_ctx(in->fd);
        /* A regular file read from its start can also be read by offset. */
        if (fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(in->fd, 0, SEEK_CUR) == 0) {
            in->in.pread = msi_fd_pread;
            in->in.pread_ctx = msi_fd_ctx(in->fd);
        }
    }
    return open_inputs(&o, set, n);
}
