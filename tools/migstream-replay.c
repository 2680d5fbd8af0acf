/*
 * migstream-replay: applies a stream and writes the guest's final state to a
 * directory: one sparse raw image per memory region, each device's state as
 * CBOR and as JSON, and manifest.json. The stream is read with ms_replay(),
 * the same engine a VMM uses to receive a migration; this file only turns its
 * callbacks into files. File names are made up here ("region-<id>.img",
 * "device-<n>.cbor"): names from the stream only appear inside the manifest
 * (FORMAT.md section 7 asks consumers to sanitize paths; we never use them).
 *
 * The directory is built under a temporary name and renamed into place once
 * complete (tools/common.h mst_dir_*), so a stream that turns out damaged
 * leaves nothing behind. Memory: the reader's largest record, two bits per
 * page of every region (pages sent; pages holding data) and a small entry per
 * device; never a whole region.
 */
#define _GNU_SOURCE /* fallocate, FALLOC_FL_* */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* ms_replay() hands back a callback's own negative value: these cannot be
 * mistaken for an MS_E... status. */
enum { CB_FAIL = -1000, CB_SIGNAL = -1001, CB_REFUSE = -1002 };

#define MAX_OPEN_IMAGES 256 /* image descriptors kept open at once */

typedef struct image {
    ms_region r; /* name points at our own copy */
    uint64_t pages;
    uint64_t *sent; /* bit per page: some record set it */
    uint64_t *data; /* bit per page: the image file holds its bytes */
    uint64_t n_sent, n_data;
    int fd;        /* -1 while closed (see image_fd) */
    char file[32]; /* "region-<id>.img" */
} image;

typedef struct device {
    char *path, *schema;
    uint32_t instance, version;
    size_t state_size;
    size_t stage; /* index of its staged files, in order of first appearance */
} device;

typedef struct replay {
    const char *dir; /* the temporary output directory */
    ms_reader *reader;
    mst_progress progress;
    uint64_t pages_applied;

    ms_header header;
    char *machine, *description;

    image *images;
    size_t nimages, images_cap;
    size_t *by_id; /* indexes into images, sorted by region id */
    size_t open_images, next_victim;

    device *devices;
    size_t ndevices, devices_cap;
    size_t *dev_index; /* open-addressing table of device indexes + 1 */
    size_t dev_index_cap;

    uint64_t skipped;
    bool ended;
    ms_totals totals;
    uint64_t digest;
    bool punch_unsupported;
} replay;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

static sigset_t unblocked; /* the signal mask at start */

/* Catches the signals that end a run, unless they are ignored (nohup), and
 * blocks them: they are taken only while waiting for input (see read_input),
 * so that a signal cannot slip in between a check and a blocking read. */
static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa, old;
    sigset_t set;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) {
            sigaction(sigs[i], &sa, NULL);
            sigaddset(&set, sigs[i]);
        }
    sigprocmask(SIG_BLOCK, &set, &unblocked);
}

typedef struct input {
    int fd;
    int err; /* errno of a failed read */
} input;

/* The reader's input. Waits in ppoll() with the caught signals unblocked:
 * a signal then stops a read that waits on a pipe, instead of the read being
 * retried as ms_reader_new_fd() would. */
static ssize_t read_input(void *ctx, void *buf, size_t len)
{
    input *in = ctx;
    for (;;) {
        struct pollfd p = {.fd = in->fd, .events = POLLIN};
        if (!got_signal && ppoll(&p, 1, NULL, &unblocked) < 0 && errno != EINTR) {
            in->err = errno;
            return -1;
        }
        if (got_signal) {
            in->err = EINTR;
            return -1;
        }
        ssize_t n = read(in->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR && errno != EAGAIN) {
            in->err = errno;
            return -1;
        }
    }
}

/* ------------------------------------------------------------------ bitmaps */

/* Counts the set bits among [first, first + count) of @bm, then sets (op 1)
 * or clears (op -1) them all, or leaves them (op 0). Word at a time. */
static uint64_t bits_range(uint64_t *bm, uint64_t first, uint64_t count, int op)
{
    uint64_t was = 0;
    while (count > 0) {
        uint64_t w = first / 64, b = first % 64;
        uint64_t n = 64 - b < count ? 64 - b : count;
        uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << b;
        was += (uint64_t)__builtin_popcountll(bm[w] & mask);
        if (op > 0)
            bm[w] |= mask;
        else if (op < 0)
            bm[w] &= ~mask;
        first += n;
        count -= n;
    }
    return was;
}

/* ------------------------------------------------------------------- files */

static int path_in_dir(char *buf, size_t n, const char *dir, const char *name)
{
    int k = snprintf(buf, n, "%s/%s", dir, name);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off, const char *what)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = pwrite(fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            mst_error("cannot write %s: %s", what, k < 0 ? strerror(errno) : "no space");
            return CB_FAIL;
        }
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int open_file(replay *rp, const char *path, int flags);

/* Writes a small file in the output directory (replacing it). */
static int write_file(replay *rp, const char *name, const void *p, size_t n)
{
    char path[4096];
    if (path_in_dir(path, sizeof path, rp->dir, name)) {
        mst_error("output path too long");
        return CB_FAIL;
    }
    int fd = open_file(rp, path, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0) {
        mst_error("cannot create %s: %s", path, strerror(errno));
        return CB_FAIL;
    }
    int rc = write_all(fd, p, n, 0, path);
    if (close(fd) != 0 && rc == 0) {
        mst_error("cannot write %s: %s", path, strerror(errno));
        rc = CB_FAIL;
    }
    return rc;
}

static void image_close(replay *rp, image *im)
{
    if (im->fd >= 0) {
        close(im->fd);
        im->fd = -1;
        rp->open_images--;
    }
}

/* Closes one open image other than @keep (round robin). */
static void evict_image(replay *rp, const image *keep)
{
    for (size_t tries = 0; tries < 2 * rp->nimages; tries++) {
        image *v = &rp->images[rp->next_victim++ % rp->nimages];
        if (v != keep && v->fd >= 0) {
            image_close(rp, v);
            return;
        }
    }
}

/* open(), closing images to make room when the process is out of
 * descriptors (a low ulimit -n). */
static int open_file(replay *rp, const char *path, int flags)
{
    for (;;) {
        int fd = open(path, flags | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EMFILE || rp->open_images == 0)
            return fd;
        evict_image(rp, NULL);
    }
}

/* The image's descriptor, reopening it when it was closed to stay under
 * MAX_OPEN_IMAGES (a stream may declare thousands of regions). */
static int image_fd(replay *rp, image *im)
{
    if (im->fd >= 0)
        return im->fd;
    char path[4096];
    if (path_in_dir(path, sizeof path, rp->dir, im->file)) {
        mst_error("output path too long");
        return -1;
    }
    if (rp->open_images >= MAX_OPEN_IMAGES)
        evict_image(rp, im);
    im->fd = open_file(rp, path, O_RDWR);
    if (im->fd < 0) {
        mst_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    rp->open_images++;
    return im->fd;
}

/* Makes [off, off + len) of the image read as zeros: a hole where the file
 * system can punch one, else written zeros. */
static int zero_range(replay *rp, image *im, uint64_t off, uint64_t len)
{
    int fd = image_fd(rp, im);
    if (fd < 0)
        return CB_FAIL;
    if (!rp->punch_unsupported) {
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
            return 0;
        if (errno != EOPNOTSUPP && errno != ENOSYS) {
            mst_error("cannot punch a hole in %s/%s: %s", rp->dir, im->file, strerror(errno));
            return CB_FAIL;
        }
        rp->punch_unsupported = true;
    }
    static const uint8_t zeros[65536];
    while (len > 0) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        if (write_all(fd, zeros, n, off, im->file))
            return CB_FAIL;
        off += n;
        len -= n;
    }
    return 0;
}

/* ---------------------------------------------------------------- regions */

static image *find_image(replay *rp, uint32_t id)
{
    size_t lo = 0, hi = rp->nimages;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t m = rp->images[rp->by_id[mid]].r.id;
        if (m == id)
            return &rp->images[rp->by_id[mid]];
        if (m < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int on_header(void *c, const ms_header *h)
{
    ((replay *)c)->header = *h;
    return 0;
}

static int on_info(void *c, const ms_info *info)
{
    replay *rp = c;
    if ((info->machine && !(rp->machine = strdup(info->machine))) ||
        (info->description && !(rp->description = strdup(info->description)))) {
        mst_error("out of memory");
        return CB_FAIL;
    }
    return 0;
}

static int on_region(void *c, const ms_region *reg)
{
    replay *rp = c;
    if (got_signal)
        return CB_SIGNAL;
    if (find_image(rp, reg->id)) { /* the reader refuses this; be safe anyway */
        mst_error("region %" PRIu32 " is declared twice", reg->id);
        return CB_FAIL;
    }
    if (rp->nimages == rp->images_cap) {
        size_t cap = rp->images_cap ? rp->images_cap * 2 : 8;
        image *im = realloc(rp->images, cap * sizeof *im);
        size_t *ix = im ? realloc(rp->by_id, cap * sizeof *ix) : NULL;
        if (im)
            rp->images = im;
        if (!ix) {
            mst_error("out of memory");
            return CB_FAIL;
        }
        rp->by_id = ix;
        rp->images_cap = cap;
    }
    image *im = &rp->images[rp->nimages];
    memset(im, 0, sizeof *im);
    im->fd = -1;
    im->r = *reg;
    im->pages = reg->size / reg->page_size;
    snprintf(im->file, sizeof im->file, "region-%" PRIu32 ".img", reg->id);
    size_t words = (size_t)((im->pages + 63) / 64);
    im->r.name = strdup(reg->name);
    im->sent = calloc(words, sizeof *im->sent);
    im->data = calloc(words, sizeof *im->data);
    if (!im->r.name || !im->sent || !im->data) {
        mst_error("out of memory tracking region %" PRIu32 " \"%s\" (%" PRIu64 " pages)", reg->id,
                  reg->name, im->pages);
        free((char *)im->r.name);
        free(im->sent);
        free(im->data);
        return CB_FAIL;
    }
    rp->nimages++;
    /* Keep by_id sorted: insert this image's index in place. */
    size_t at = rp->nimages - 1;
    while (at > 0 && rp->images[rp->by_id[at - 1]].r.id > reg->id) {
        rp->by_id[at] = rp->by_id[at - 1];
        at--;
    }
    rp->by_id[at] = rp->nimages - 1;

    char path[4096];
    if (path_in_dir(path, sizeof path, rp->dir, im->file)) {
        mst_error("output path too long");
        return CB_FAIL;
    }
    int fd = open_file(rp, path, O_RDWR | O_CREAT | O_EXCL);
    if (fd < 0) {
        mst_error("cannot create %s: %s", path, strerror(errno));
        return CB_FAIL;
    }
    /* The image has the region's size from the start: pages never sent are
     * holes and read as zeros. */
    if (ftruncate(fd, (off_t)reg->size) != 0) {
        mst_error("cannot size %s to %" PRIu64 " bytes: %s", path, reg->size, strerror(errno));
        close(fd);
        return CB_FAIL;
    }
    close(fd);
    return 0;
}

/* ------------------------------------------------------------------- pages */

static bool page_is_zero(const uint8_t *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Pages [first, first + count) now read as zero. */
static int apply_zero(replay *rp, image *im, uint64_t first, uint64_t count)
{
    uint64_t had = bits_range(im->data, first, count, -1);
    if (had == 0)
        return 0; /* already holes: nothing to do */
    im->n_data -= had;
    const uint64_t ps = im->r.page_size;
    return zero_range(rp, im, first * ps, count * ps);
}

static int on_extent(void *c, const ms_region *reg, const ms_extent *x, const uint8_t *bytes)
{
    replay *rp = c;
    int rc = 0;
    if (got_signal)
        return CB_SIGNAL;
    image *im = find_image(rp, reg->id);
    if (!im) {
        mst_error("pages for region %" PRIu32 ", which was never declared", reg->id);
        return CB_FAIL;
    }
    const size_t ps = im->r.page_size;
    if (x->state == MS_PAGE_ZERO) {
        rc = apply_zero(rp, im, x->first, x->count);
    } else if (x->state == MS_PAGE_DATA) {
        /* Runs of non-zero pages are written; zero pages stay (or become)
         * holes, so the image is sparse whatever the writer sent as DATA. */
        for (uint32_t i = 0; i < x->count && rc == 0;) {
            bool zero = page_is_zero(bytes + (size_t)i * ps, ps);
            uint32_t j = i + 1;
            while (j < x->count && page_is_zero(bytes + (size_t)j * ps, ps) == zero)
                j++;
            if (zero) {
                rc = apply_zero(rp, im, x->first + i, j - i);
            } else {
                int fd = image_fd(rp, im);
                rc = fd < 0 ? CB_FAIL
                            : write_all(fd, bytes + (size_t)i * ps, (size_t)(j - i) * ps,
                                        (x->first + i) * ps, im->file);
                im->n_data += (j - i) - bits_range(im->data, x->first + i, j - i, 1);
            }
            i = j;
        }
    } else {
        const char *name = ms_page_state_name(x->state);
        mst_error("region %" PRIu32 " \"%s\": page state %u%s%s%s is not supported by this tool",
                  reg->id, reg->name, x->state, name ? " (" : "", name ? name : "",
                  name ? ")" : "");
        return CB_REFUSE;
    }
    if (rc)
        return rc;
    im->n_sent += x->count - bits_range(im->sent, x->first, x->count, 1);
    rp->pages_applied += x->count;
    mst_progress_update(&rp->progress, ms_reader_offset(rp->reader), rp->pages_applied);
    return 0;
}

/* ----------------------------------------------------------------- devices */

static uint64_t device_hash(const char *path, uint32_t instance)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return (h ^ instance) * 0x100000001b3ull;
}

/* Slot of (path, instance) in dev_index: its entry, or the empty slot where
 * it belongs. */
static size_t *device_slot(replay *rp, const char *path, uint32_t instance)
{
    size_t mask = rp->dev_index_cap - 1;
    for (size_t i = (size_t)device_hash(path, instance) & mask;; i = (i + 1) & mask) {
        size_t *s = &rp->dev_index[i];
        if (*s == 0)
            return s;
        const device *d = &rp->devices[*s - 1];
        if (d->instance == instance && strcmp(d->path, path) == 0)
            return s;
    }
}

static int grow_devices(replay *rp)
{
    if (rp->ndevices == rp->devices_cap) {
        size_t cap = rp->devices_cap ? rp->devices_cap * 2 : 8;
        device *d = realloc(rp->devices, cap * sizeof *d);
        if (!d)
            return -1;
        rp->devices = d;
        rp->devices_cap = cap;
    }
    if (2 * (rp->ndevices + 1) > rp->dev_index_cap) { /* keep the table half empty */
        size_t cap = rp->dev_index_cap ? rp->dev_index_cap * 2 : 16;
        size_t *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        free(rp->dev_index);
        rp->dev_index = t;
        rp->dev_index_cap = cap;
        for (size_t i = 0; i < rp->ndevices; i++)
            *device_slot(rp, rp->devices[i].path, rp->devices[i].instance) = i + 1;
    }
    return 0;
}

/* Each device's state is staged in stage-<k>.cbor/.json as it arrives (a
 * later record overwrites it: the last one wins) and renamed to its final
 * name at the end, once the order of the manifest is known. */
static int on_device(void *c, const ms_device *dv)
{
    replay *rp = c;
    if (got_signal)
        return CB_SIGNAL;
    if (grow_devices(rp)) {
        mst_error("out of memory");
        return CB_FAIL;
    }
    size_t *slot = device_slot(rp, dv->path, dv->instance);
    device *d;
    if (*slot) {
        d = &rp->devices[*slot - 1];
        free(d->schema);
        d->schema = NULL;
    } else {
        d = &rp->devices[rp->ndevices];
        memset(d, 0, sizeof *d);
        d->instance = dv->instance;
        d->stage = rp->ndevices;
        if (!(d->path = strdup(dv->path))) {
            mst_error("out of memory");
            return CB_FAIL;
        }
        *slot = ++rp->ndevices;
    }
    d->version = dv->version;
    d->state_size = dv->state_size;
    char *json = mst_cbor_text(dv->state, dv->state_size, MS_CBOR_JSON);
    if (!(d->schema = strdup(dv->schema)) || !json) {
        /* The reader checked the state, so only memory can be short here. */
        mst_error("out of memory formatting the state of device \"%s\"", dv->path);
        free(json);
        return CB_FAIL;
    }
    char name[64];
    snprintf(name, sizeof name, "stage-%zu.cbor", d->stage);
    int rc = write_file(rp, name, dv->state, dv->state_size);
    if (rc == 0) {
        size_t n = strlen(json);
        json[n] = '\n'; /* replaces the NUL: the file ends with a newline */
        snprintf(name, sizeof name, "stage-%zu.json", d->stage);
        rc = write_file(rp, name, json, n + 1);
    }
    free(json);
    return rc;
}

static int on_unknown(void *c, const ms_record *rec)
{
    (void)rec;
    ((replay *)c)->skipped++;
    return 0;
}

static int on_end(void *c, const ms_totals *t, uint64_t digest)
{
    replay *rp = c;
    rp->totals = *t;
    rp->digest = digest;
    rp->ended = true;
    return 0;
}

/* ---------------------------------------------------------------- manifest */

static int device_order(const void *a, const void *b)
{
    const device *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    return x->instance < y->instance ? -1 : x->instance > y->instance;
}

static void json_opt_string(FILE *f, const char *s)
{
    if (s)
        mst_json_string(f, s);
    else
        fputs("null", f);
}

static void write_manifest_to(const replay *rp, FILE *f)
{
    const ms_header *h = &rp->header;
    fprintf(f, "{\n  \"manifest_version\": 1,\n");
    fprintf(f, "  \"format\": \"%u.%u\",\n", h->major, h->minor);
    fprintf(f, "  \"page_size\": %" PRIu32 ",\n", h->page_size);
    fputs("  \"writer_name\": ", f);
    mst_json_string(f, h->writer_name);
    fputs(",\n  \"writer_version\": ", f);
    mst_json_string(f, h->writer_version);
    fputs(",\n  \"machine\": ", f);
    json_opt_string(f, rp->machine);
    fputs(",\n  \"description\": ", f);
    json_opt_string(f, rp->description);
    fprintf(f, ",\n  \"digest\": \"0x%016" PRIx64 "\",\n", rp->digest);
    fprintf(f,
            "  \"totals\": {\n    \"records\": %" PRIu64 ",\n    \"bytes\": %" PRIu64
            ",\n    \"pages\": {",
            rp->totals.records, rp->totals.bytes);
    const char *sep = "";
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS; s++) {
        const char *name = ms_page_state_name(s);
        if (!name)
            continue;
        fprintf(f, "%s\"", sep);
        for (; *name; name++)
            fputc(*name >= 'A' && *name <= 'Z' ? *name - 'A' + 'a' : *name, f);
        fprintf(f, "\": %" PRIu64, rp->totals.pages[s]);
        sep = ", ";
    }
    fprintf(f, "},\n    \"devices\": %" PRIu64 "\n  },\n", rp->totals.devices);
    fprintf(f, "  \"skipped_records\": %" PRIu64 ",\n", rp->skipped);

    fputs("  \"regions\": [", f);
    for (size_t i = 0; i < rp->nimages; i++) {
        const image *im = &rp->images[i];
        fprintf(f, "%s\n    {\n      \"id\": %" PRIu32 ",\n      \"name\": ", i ? "," : "",
                im->r.id);
        mst_json_string(f, im->r.name);
        if (im->r.has_gpa)
            fprintf(f, ",\n      \"gpa\": \"0x%" PRIx64 "\"", im->r.gpa);
        else
            fputs(",\n      \"gpa\": null", f);
        fprintf(f,
                ",\n      \"size\": %" PRIu64 ",\n      \"page_size\": %" PRIu32
                ",\n      \"pages\": %" PRIu64 ",\n      \"data\": %" PRIu64
                ",\n      \"zero\": %" PRIu64 ",\n      \"missing\": %" PRIu64
                ",\n      \"file\": \"%s\"\n    }",
                im->r.size, im->r.page_size, im->pages, im->n_data, im->n_sent - im->n_data,
                im->pages - im->n_sent, im->file);
    }
    fputs(rp->nimages ? "\n  ],\n" : "],\n", f);

    fputs("  \"devices\": [", f);
    for (size_t i = 0; i < rp->ndevices; i++) {
        const device *d = &rp->devices[i];
        fprintf(f, "%s\n    {\n      \"path\": ", i ? "," : "");
        mst_json_string(f, d->path);
        fprintf(f, ",\n      \"instance\": %" PRIu32 ",\n      \"schema\": ", d->instance);
        mst_json_string(f, d->schema);
        fprintf(f,
                ",\n      \"version\": %" PRIu32 ",\n      \"size\": %zu"
                ",\n      \"cbor\": \"device-%zu.cbor\",\n      \"json\": \"device-%zu.json\"\n"
                "    }",
                d->version, d->state_size, i, i);
    }
    fputs(rp->ndevices ? "\n  ]\n}\n" : "]\n}\n", f);
}

/* Renames the staged device files, writes the manifest and makes every file
 * durable, so that the rename of the directory publishes a complete one. */
static int finish_output(replay *rp)
{
    char from[4096], to[4096], a[64], b[64];
    if (rp->ndevices) /* devices is NULL when there are none */
        qsort(rp->devices, rp->ndevices, sizeof *rp->devices, device_order);
    for (size_t i = 0; i < rp->ndevices; i++) {
        for (int k = 0; k < 2; k++) {
            const char *ext = k ? "json" : "cbor";
            snprintf(a, sizeof a, "stage-%zu.%s", rp->devices[i].stage, ext);
            snprintf(b, sizeof b, "device-%zu.%s", i, ext);
            if (path_in_dir(from, sizeof from, rp->dir, a) ||
                path_in_dir(to, sizeof to, rp->dir, b) || rename(from, to) != 0) {
                mst_error("cannot rename %s to %s: %s", from, b, strerror(errno));
                return -1;
            }
        }
    }
    /* Staged names never collide with final ones, so the renames above never
     * replace a file still to be renamed. */
    for (size_t i = 0; i < rp->nimages; i++) {
        image *im = &rp->images[i];
        int fd = image_fd(rp, im);
        if (fd < 0)
            return -1;
        if (fsync(fd) != 0) {
            mst_error("cannot write %s/%s: %s", rp->dir, im->file, strerror(errno));
            return -1;
        }
        image_close(rp, im);
    }
    char path[4096];
    if (path_in_dir(path, sizeof path, rp->dir, "manifest.json")) {
        mst_error("output path too long");
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        mst_error("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    write_manifest_to(rp, f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || ferror(f)) {
        mst_error("cannot write %s: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0) {
        mst_error("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    int dfd = open(rp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static void replay_free(replay *rp)
{
    for (size_t i = 0; i < rp->nimages; i++) {
        image_close(rp, &rp->images[i]);
        free((char *)rp->images[i].r.name);
        free(rp->images[i].sent);
        free(rp->images[i].data);
    }
    for (size_t i = 0; i < rp->ndevices; i++) {
        free(rp->devices[i].path);
        free(rp->devices[i].schema);
    }
    free(rp->images);
    free(rp->by_id);
    free(rp->devices);
    free(rp->dev_index);
    free(rp->machine);
    free(rp->description);
}

/* -------------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options] -o DIR STREAM\n"
            "Applies STREAM (a file, or - for standard input) and writes the guest's final\n"
            "state to DIR: region-<id>.img (sparse raw images), device-<n>.cbor and\n"
            "device-<n>.json, and manifest.json.\n"
            "\n"
            "  -o, --output DIR  directory to create (required)\n"
            "      --force       replace DIR if it exists\n"
            "  -q, --quiet       no progress bar\n"
            "  -h, --help        show this help and exit\n"
            "  -V, --version     show the version and exit\n"
            "\n"
            "Exit status: 0 done; 1 the stream was refused (damaged, truncated or\n"
            "unsupported), nothing written; 2 usage or I/O error, nothing written.\n",
            mst_prog);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    bool force = false, quiet = false;
    mst_init(argv[0]);
    opterr = 0; /* messages below, as "PROG: ..." */
    for (int opt; (opt = getopt_long(argc, argv, ":o:qhV", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return MST_EXIT_OK;
        case 'V':
            mst_print_version();
            return MST_EXIT_OK;
        case ':':
            mst_error("option %s needs a value", argv[optind - 1]);
            fprintf(stderr, "Try '%s --help'.\n", mst_prog);
            return MST_EXIT_ERROR;
        default:
            if (optopt)
                mst_error("unknown option -%c", optopt);
            else
                mst_error("unknown option %s", argv[optind - 1]);
            fprintf(stderr, "Try '%s --help'.\n", mst_prog);
            return MST_EXIT_ERROR;
        }
    }
    if (!out || !*out || optind != argc - 1) {
        mst_error(!out || !*out ? "-o DIR is required" : "expected exactly one STREAM");
        fprintf(stderr, "Try '%s --help'.\n", mst_prog);
        return MST_EXIT_ERROR;
    }
    const char *name = argv[optind];
    const char *label = strcmp(name, "-") ? name : "standard input";

    /* An interrupted run removes its temporary directory, then dies of the
     * signal as it would have. */
    catch_signals();
    input in = {mst_open_input(name), 0};
    if (in.fd < 0)
        return MST_EXIT_ERROR;
    mst_dir dir;
    if (mst_dir_begin(&dir, out, force)) {
        if (in.fd != STDIN_FILENO)
            close(in.fd);
        return MST_EXIT_ERROR;
    }
    replay rp;
    memset(&rp, 0, sizeof rp);
    rp.dir = dir.tmp_path;
    rp.reader = ms_reader_new(NULL, read_input, &in);
    mst_progress_init(&rp.progress, quiet, mst_input_size(in.fd));

    int status = MST_EXIT_OK;
    if (!rp.reader) {
        mst_error("out of memory");
        status = MST_EXIT_ERROR;
    } else {
        ms_replay_callbacks cb = {
            .struct_size = sizeof cb,
            .header = on_header,
            .info = on_info,
            .region = on_region,
            .extent = on_extent,
            .device = on_device,
            .unknown = on_unknown,
            .end = on_end,
        };
        int rc = ms_replay(rp.reader, &cb, &rp);
        if (rc == 0 && !got_signal)
            rc = ms_reader_expect_eof(rp.reader);
        mst_progress_done(&rp.progress);
        if (got_signal) {
            status = MST_EXIT_ERROR;
        } else if (rc == CB_FAIL) {
            status = MST_EXIT_ERROR; /* said why already */
        } else if (rc == CB_REFUSE) {
            status = MST_EXIT_FAIL;
        } else if (rc == MS_EIO && in.err) {
            mst_error("cannot read %s: %s", label, strerror(in.err));
            status = MST_EXIT_ERROR;
        } else if (rc < 0) {
            mst_error("%s: %s", label, ms_reader_errmsg(rp.reader));
            status =
                rc == MS_EIO || rc == MS_ENOMEM || rc == MS_EINVAL ? MST_EXIT_ERROR : MST_EXIT_FAIL;
        } else if (!rp.ended) { /* cannot happen: ms_replay returns 0 only after END */
            mst_error("%s: the stream ended without END", label);
            status = MST_EXIT_FAIL;
        } else if (finish_output(&rp) != 0) {
            status = MST_EXIT_ERROR;
        }
    }
    replay_free(&rp);
    ms_reader_free(rp.reader);
    if (in.fd != STDIN_FILENO)
        close(in.fd);
    if (status == MST_EXIT_OK && !got_signal && mst_dir_commit(&dir) != 0)
        status = MST_EXIT_ERROR;
    if (status != MST_EXIT_OK || got_signal)
        mst_dir_abort(&dir);
    if (got_signal) { /* die of it as we would have, the temporary directory gone */
        signal(got_signal, SIG_DFL);
        sigprocmask(SIG_SETMASK, &unblocked, NULL);
        raise(got_signal);
    }
    return status;
}
