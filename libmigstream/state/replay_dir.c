/*
 * ms_replay_dir (include/migstream/replay_dir.h): replaying a stream into a
 * directory. The stream is read with ms_replay(), the same engine a VMM uses
 * to receive a migration; this file only turns its callbacks into files.
 *
 * Memory: the reader's largest record, a page-state map per region
 * (region_map.h: what was sent, not what was declared, within a budget)
 * and a small entry per device; never a whole region.
 */
#define _GNU_SOURCE /* fallocate, FALLOC_FL_*, nftw flags */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "migstream/replay_dir.h"
#include "migstream/cbor.h"
#include "migstream/overlay.h"
#include "migstream/replay.h"
#include "common/util.h"
#include "state/in_place.h"
#include "state/region_map.h"

/* ms_replay() hands back a callback's own negative value: these cannot be
 * mistaken for an MS_E... status. */
enum { CB_FAIL = -1000, CB_STOP = -1001, CB_REFUSE = -1002 };

#define MAX_OPEN_IMAGES 256 /* image descriptors kept open at once */

typedef struct image {
    ms_region r; /* name points at our own copy */
    uint64_t pages;
    msi_pm *map;   /* final state of each page: MISSING, DATA (the file holds
                      its bytes), FILL (with its word: written at the end),
                      ZERO, DISCARDED or IN_PLACE (a hole) */
    uint64_t held; /* bytes of its DATA and FILL pages */
    int fd;        /* -1 while closed (see image_fd) */
    char file[32]; /* "region-<id>.img" */
} image;

typedef struct device {
    char *path, *schema;
    uint32_t instance, version;
    size_t state_size;
    uint64_t files; /* disk bytes of its staged files */
    size_t stage;   /* index of its staged files, in order of first appearance */
} device;

/* An overlay (FORMAT.md section 7.2) and the 4 KiB it shows the guest. */
typedef struct overlay {
    ms_overlay o; /* slot pointers cleared: the contents are in page */
    uint8_t page[MS_OVERLAY_PAGE_SIZE];
} overlay;

struct ms_replay_dir {
    ms_replay_dir_options o;
    ms_replay_dir_result result;
    int status; /* MS_EINVAL when made from bad options (sticky), else 0 */
    char err[1024];
};

/* One ms_replay_dir_write(). */
typedef struct replay {
    const ms_replay_dir_options *o;
    const char *label;
    char *err;
    size_t err_size;
    int status;         /* of the first failure */
    ms_allocator alloc; /* malloc, for the maps */

    /* The output: built in tmp (open as dirfd), renamed to final. */
    char *final, *tmp;
    int dirfd;

    ms_reader *reader;
    uint64_t pages_applied;
    msi_pm_budget budget;

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

    ms_in_place in_place; /* IN_PLACE extents, for the manifest's references */
    overlay *overlays;
    size_t noverlays;
    uint64_t rounds;

    uint64_t skipped;
    bool ended;
    ms_totals totals;
    uint64_t digest;
    bool punch_unsupported, punch_probed;
    /* FILL patterns and view copies: the replay's own, so that replays in
     * different threads share nothing (common.h, "Handles"). */
    uint8_t *chunk;

    /* What the output takes (docs/SECURITY.md, "Cost"): the images' DATA
     * and FILL pages and the other files, against the smaller of
     * max_output and the free space when the replay began (limit_free). */
    uint64_t held, files;
    uint64_t limit;
    bool limit_free;
} replay;

/* Disk blocks a small file takes, at least. */
#define BLOCK 4096u

#define CHUNK 65536u
/* The map's state of a DATA page whose bytes are all zero: a hole in the
 * image, counted as zero in the manifest, but still a page a DUPLICATE may
 * name as its source (FORMAT.md section 6.2), which a ZERO page is not. */
#define ST_DATA_ZERO 7u

/* Keeps the first status and message: later failures are consequences. */
__attribute__((format(printf, 3, 4))) static int fail(replay *rp, int status, const char *fmt, ...)
{
    if (!rp->status) {
        va_list ap;
        va_start(ap, fmt);
        msi_vformat(rp->err, rp->err_size, fmt, ap);
        va_end(ap);
        rp->status = status;
    }
    return CB_FAIL;
}

/* The replay's CHUNK-byte buffer, allocated on first use; NULL when out of
 * memory (the failure is recorded). */
static uint8_t *chunk_of(replay *rp)
{
    if (!rp->chunk && !(rp->chunk = malloc(CHUNK)))
        fail(rp, MS_ENOMEM, "out of memory");
    return rp->chunk;
}

static bool stopped(const replay *rp)
{
    return rp->o->stop && *rp->o->stop;
}

static uint64_t blocks_of(uint64_t n)
{
    return n > UINT64_MAX - (BLOCK - 1) ? UINT64_MAX : (n + BLOCK - 1) / BLOCK * BLOCK;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Whether the output may grow by @more bytes; fails (MS_ELIMIT) saying how
 * much it would take, and why, when it may not. */
static int output_room(replay *rp, uint64_t more, const char *why)
{
    uint64_t total = add_sat(add_sat(rp->held, rp->files), more);
    if (total <= rp->limit)
        return 0;
    double shown;
    const char *unit = msi_mib_gib(total, &shown);
    if (rp->limit_free)
        return fail(rp, MS_ELIMIT,
                    "%s: the output would take %" PRIu64 " bytes (%.1f %s) with %s, more than "
                    "the %" PRIu64 " bytes free where %s is made",
                    rp->label, total, shown, unit, why, rp->limit, rp->final);
    return fail(rp, MS_ELIMIT,
                "%s: the output would take %" PRIu64 " bytes (%.1f %s) with %s, more than "
                "its limit of %" PRIu64 " bytes (max_output)",
                rp->label, total, shown, unit, why, rp->limit);
}

/* The limit: max_output, or the free space of the output's file system
 * when smaller. */
static void output_limit(replay *rp)
{
    struct statvfs v;
    rp->limit = rp->o->max_output ? rp->o->max_output : MS_MAX_OUTPUT_DEFAULT;
    if (fstatvfs(rp->dirfd, &v) == 0 && v.f_frsize &&
        (uint64_t)v.f_bavail <= rp->limit / v.f_frsize) {
        rp->limit = (uint64_t)v.f_bavail * v.f_frsize;
        rp->limit_free = true;
    }
}

/* ------------------------------------------------------------ directory */

/* Creates FINAL.tmp-XXXXXX beside the output and opens it. */
static int dir_begin(replay *rp, const char *path)
{
    struct stat st;
    if (!rp->o->force && lstat(path, &st) == 0)
        return fail(rp, MS_EINVAL, "%s exists, and force is not set", path);
    size_t n = strlen(path);
    rp->final = strdup(path);
    rp->tmp = malloc(n + 16);
    if (!rp->final || !rp->tmp)
        return fail(rp, MS_ENOMEM, "out of memory");
    /* Trailing slashes would put the temporary directory inside PATH. */
    while (n > 1 && rp->final[n - 1] == '/')
        rp->final[--n] = 0;
    snprintf(rp->tmp, n + 16, "%s.tmp-XXXXXX", rp->final);
    if (!mkdtemp(rp->tmp)) {
        free(rp->tmp);
        rp->tmp = NULL;
        return fail(rp, MS_EIO, "cannot create a temporary directory beside %s: %s", path,
                    strerror(errno));
    }
    rp->dirfd = open(rp->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rp->dirfd < 0)
        return fail(rp, MS_EIO, "cannot open %s: %s", rp->tmp, strerror(errno));
    fchmod(rp->dirfd, 0755);
    output_limit(rp);
    return 0;
}

/* Removes the temporary directory and what it holds: only files this code
 * made, by name relative to its descriptor, so nothing outside it. */
static void dir_abort(replay *rp)
{
    if (rp->dirfd >= 0) {
        int fd = dup(rp->dirfd);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *e;
        if (!d && fd >= 0)
            close(fd);
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(rp->dirfd, e->d_name, 0);
        }
        if (d)
            closedir(d);
        close(rp->dirfd);
        rp->dirfd = -1;
    }
    if (rp->tmp)
        rmdir(rp->tmp);
    free(rp->tmp);
    rp->tmp = NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Renames the finished directory into place. */
static int dir_commit(replay *rp)
{
    struct stat st;
    char *old = NULL;
    if (!rp->o->no_sync && fsync(rp->dirfd) != 0)
        return fail(rp, MS_EIO, "cannot write %s: %s", rp->tmp, strerror(errno));
    if (rp->o->force && lstat(rp->final, &st) == 0) {
        /* Move the old output aside first, so that a failure leaves either
         * the old or the new output complete, never neither. */
        size_t n = strlen(rp->final) + 32;
        old = malloc(n);
        if (!old)
            return fail(rp, MS_ENOMEM, "out of memory");
        snprintf(old, n, "%s.old-%ld", rp->final, (long)getpid());
        if (rename(rp->final, old) != 0) {
            free(old);
            return fail(rp, MS_EIO, "cannot move %s aside: %s", rp->final, strerror(errno));
        }
    }
    if (rename(rp->tmp, rp->final) != 0) {
        int e = errno;
        if (old)
            rename(old, rp->final);
        free(old);
        return fail(rp, MS_EIO, "cannot rename %s to %s: %s", rp->tmp, rp->final, strerror(e));
    }
    if (old) {
        /* FTW_PHYS: a symbolic link in the old output is removed, never
         * followed; an old output that is a link is only unlinked. */
        if (S_ISDIR(st.st_mode))
            nftw(old, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        else
            unlink(old);
        free(old);
    }
    close(rp->dirfd);
    rp->dirfd = -1;
    free(rp->tmp);
    rp->tmp = NULL;
    return 0;
}

/* ------------------------------------------------------------------- files */

/* Largest single pwrite. A run of data pages can be megabytes (a 2 MiB page
 * is one); written whole, the kernel copies it into the page cache in one
 * go, which measured 2 to 3x slower than the same bytes in 256 KiB writes
 * (docs/PERFORMANCE.md, replay of the huge-2m image), and no faster on the
 * others. */
#define WRITE_CHUNK (256u << 10)

static int write_all(replay *rp, int fd, const void *p, size_t n, uint64_t off, const char *what)
{
    const uint8_t *b = p;
    while (n > 0) {
        if (stopped(rp))
            return CB_STOP;
        ssize_t k = pwrite(fd, b, n < WRITE_CHUNK ? n : WRITE_CHUNK, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return fail(rp, MS_EIO, "cannot write %s: %s", what,
                        k < 0 ? strerror(errno) : "no space");
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* Writes [off, off + len) of @fd from @chunk (CHUNK bytes) again and
 * again: zeros, or a FILL pattern, whose period divides CHUNK. */
static int write_repeated(replay *rp, int fd, const uint8_t *chunk, uint64_t off, uint64_t len,
                          const char *what)
{
    while (len > 0) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        int rc = write_all(rp, fd, chunk, n, off, what);
        if (rc)
            return rc;
        off += n;
        len -= n;
    }
    return 0;
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

/* A file in the output directory, never through a symbolic link; closes
 * images to make room when the process is out of descriptors (a low
 * ulimit -n). */
static int open_file(replay *rp, const char *name, int flags)
{
    for (;;) {
        int fd = openat(rp->dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EMFILE || rp->open_images == 0)
            return fd;
        evict_image(rp, NULL);
    }
}

/* Writes a small file in the output directory (replacing it). */
static int write_file(replay *rp, const char *name, const void *p, size_t n)
{
    int fd = open_file(rp, name, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return fail(rp, MS_EIO, "cannot create %s/%s: %s", rp->tmp, name, strerror(errno));
    int rc = write_all(rp, fd, p, n, 0, name);
    if (close(fd) != 0 && rc == 0)
        rc = fail(rp, MS_EIO, "cannot write %s/%s: %s", rp->tmp, name, strerror(errno));
    return rc;
}

/* The image's descriptor, reopening it when it was closed to stay under
 * MAX_OPEN_IMAGES (a stream may declare thousands of regions). */
static int image_fd(replay *rp, image *im)
{
    if (im->fd >= 0)
        return im->fd;
    if (rp->open_images >= MAX_OPEN_IMAGES)
        evict_image(rp, im);
    im->fd = open_file(rp, im->file, O_RDWR);
    if (im->fd < 0) {
        fail(rp, MS_EIO, "cannot open %s/%s: %s", rp->tmp, im->file, strerror(errno));
        return -1;
    }
    rp->open_images++;
    return im->fd;
}

/* Makes [off, off + len) of the image read as zeros: a hole where the file
 * system can punch one (the first image tells, see probe_punch), else
 * written zeros, which apply_hole keeps to the bytes written before. */
static int zero_range(replay *rp, image *im, uint64_t off, uint64_t len)
{
    int fd = image_fd(rp, im);
    if (fd < 0)
        return CB_FAIL;
    if (!rp->punch_unsupported) {
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
            return 0;
        return fail(rp, MS_EIO, "cannot punch a hole in %s/%s: %s", rp->tmp, im->file,
                    strerror(errno));
    }
    static const uint8_t zeros[CHUNK];
    return write_repeated(rp, fd, zeros, off, len, im->file);
}

/* Whether the file system of the output punches holes, from the first
 * image made (the others are in the same directory). */
static void probe_punch(replay *rp, int fd, uint64_t size)
{
    if (rp->punch_probed || size == 0)
        return;
    rp->punch_probed = true;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                  (off_t)(size < BLOCK ? size : BLOCK)) != 0 &&
        (errno == EOPNOTSUPP || errno == ENOSYS))
        rp->punch_unsupported = true;
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
        (info->description && !(rp->description = strdup(info->description))))
        return fail(rp, MS_ENOMEM, "out of memory");
    return 0;
}

static int on_region(void *c, const ms_region *reg)
{
    replay *rp = c;
    if (stopped(rp))
        return CB_STOP;
    if (find_image(rp, reg->id)) /* the reader refuses this; be safe anyway */
        return fail(rp, MS_ECORRUPT, "region %" PRIu32 " is declared twice", reg->id);
    if (rp->nimages == rp->images_cap) {
        size_t cap = rp->images_cap ? rp->images_cap * 2 : 8;
        image *im = realloc(rp->images, cap * sizeof *im);
        size_t *ix = im ? realloc(rp->by_id, cap * sizeof *ix) : NULL;
        if (im)
            rp->images = im;
        if (!ix)
            return fail(rp, MS_ENOMEM, "out of memory");
        rp->by_id = ix;
        rp->images_cap = cap;
    }
    image *im = &rp->images[rp->nimages];
    memset(im, 0, sizeof *im);
    im->fd = -1;
    im->r = *reg;
    im->pages = reg->size / reg->page_size;
    snprintf(im->file, sizeof im->file, "region-%" PRIu32 ".img", reg->id);
    im->r.name = strdup(reg->name);
    int rc = im->r.name ? msi_pm_new(&im->map, im->pages, &rp->budget, &rp->alloc) : MS_ENOMEM;
    if (rc) {
        free((char *)im->r.name);
        if (rc == MS_ELIMIT)
            return fail(rp, rc,
                        "region %" PRIu32 " \"%s\": the page-state maps would exceed %zu MiB",
                        reg->id, reg->name, rp->budget.limit >> 20);
        return fail(rp, rc, "out of memory tracking region %" PRIu32 " \"%s\" (%" PRIu64 " pages)",
                    reg->id, reg->name, im->pages);
    }
    rp->nimages++;
    /* Keep by_id sorted: insert this image's index in place. */
    size_t at = rp->nimages - 1;
    while (at > 0 && rp->images[rp->by_id[at - 1]].r.id > reg->id) {
        rp->by_id[at] = rp->by_id[at - 1];
        at--;
    }
    rp->by_id[at] = rp->nimages - 1;

    int fd = open_file(rp, im->file, O_RDWR | O_CREAT | O_EXCL);
    if (fd < 0)
        return fail(rp, MS_EIO, "cannot create %s/%s: %s", rp->tmp, im->file, strerror(errno));
    /* The image has the region's size from the start: pages never sent are
     * holes and read as zeros. */
    if (reg->size > (uint64_t)INT64_MAX || ftruncate(fd, (off_t)reg->size) != 0) {
        int e = reg->size > (uint64_t)INT64_MAX ? EFBIG : errno;
        close(fd);
        return fail(rp, MS_EIO, "cannot size %s/%s to %" PRIu64 " bytes: %s", rp->tmp, im->file,
                    reg->size, strerror(e));
    }
    probe_punch(rp, fd, reg->size);
    close(fd);
    return 0;
}

/* ------------------------------------------------------------------- pages */

static bool page_is_zero(const uint8_t *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Records pages [first, first + count) of @im in state @st (with @arg when
 * @with_arg: a FILL word); @had gets what they were before. */
static int set_pages(replay *rp, image *im, uint64_t first, uint64_t count, unsigned st,
                     bool with_arg, uint64_t arg, uint64_t *had)
{
    int rc = with_arg ? msi_pm_set_arg(im->map, first, count, st, arg, had)
                      : msi_pm_set(im->map, first, count, st, had);
    if (rc == MS_ELIMIT)
        return fail(rp, MS_ELIMIT,
                    "region %" PRIu32 " \"%s\": the page-state maps would exceed %zu MiB; "
                    "the stream scatters page states too finely",
                    im->r.id, im->r.name, rp->budget.limit >> 20);
    if (rc == MS_ENOMEM)
        return fail(rp, MS_ENOMEM, "out of memory tracking region %" PRIu32 " \"%s\"", im->r.id,
                    im->r.name);
    if (rc) /* the reader checked the range (FORMAT.md section 6.2) */
        return fail(rp, MS_ECORRUPT,
                    "region %" PRIu32 ": pages %" PRIu64 "+%" PRIu64 " outside the region",
                    im->r.id, first, count);
    return 0;
}

typedef struct zero_ctx {
    replay *rp;
    image *im;
} zero_ctx;

static int zero_run(void *ctx, uint64_t a, uint64_t b)
{
    zero_ctx *z = ctx;
    const uint64_t ps = z->im->r.page_size;
    return zero_range(z->rp, z->im, a * ps, (b - a) * ps);
}

/* Pages [first, first + count) take state @st (and @arg, see set_pages),
 * whose bytes are not in the image: a hole (ZERO, DISCARDED, IN_PLACE) or
 * FILL, written at the end. Only DATA pages have bytes in the image
 * meanwhile: those are removed, a hole punched over the range, or zeros
 * written over just them where holes cannot be punched. */
static int replace_data(replay *rp, image *im, uint64_t first, uint64_t count, unsigned st,
                        bool with_arg, uint64_t arg)
{
    uint64_t had[MSI_PM_STATES] = {0};
    const uint64_t ps = im->r.page_size;
    zero_ctx z = {rp, im};
    int rc = 0;
    if (rp->punch_unsupported)
        rc = msi_pm_each_chunk_run(im->map, first, first + count, MSI_PM_DATA, zero_run, &z);
    if (!rc)
        rc = set_pages(rp, im, first, count, st, with_arg, arg, had);
    if (!rc && !rp->punch_unsupported && had[MSI_PM_DATA])
        rc = zero_range(rp, im, first * ps, count * ps);
    uint64_t gone = (had[MSI_PM_DATA] + had[MS_PAGE_FILL]) * ps;
    im->held -= gone;
    rp->held -= gone;
    return rc;
}

/* Pages [first, first + count) now hold no bytes in the image: ZERO, or
 * (@st) DISCARDED or IN_PLACE, which replay leaves as holes too. */
static int apply_hole(replay *rp, image *im, uint64_t first, uint64_t count, unsigned st)
{
    return replace_data(rp, im, first, count, st, false, 0);
}

/* Pages [first, first + count) hold the little-endian word @word repeated:
 * recorded with the word, and written once the stream is read
 * (write_fills), so that a stream sending FILL runs again and again over
 * the same pages writes them once. They count against the output limit
 * from now. */
static int apply_fill(replay *rp, image *im, uint64_t first, uint64_t count, uint64_t word)
{
    int rc = replace_data(rp, im, first, count, MS_PAGE_FILL, true, word);
    const uint64_t bytes = count * im->r.page_size;
    if (!rc && !(rc = output_room(rp, bytes, "these FILL pages"))) {
        im->held += bytes;
        rp->held += bytes;
    }
    return rc;
}

/* DATA pages [first, first + n), not all zero, from @bytes. */
static int apply_data(replay *rp, image *im, uint64_t first, uint64_t n, const uint8_t *bytes)
{
    uint64_t had[MSI_PM_STATES] = {0};
    const uint64_t ps = im->r.page_size;
    int rc = set_pages(rp, im, first, n, MSI_PM_DATA, false, 0, had);
    if (rc)
        return rc;
    /* Pages that held DATA or FILL take no more room. */
    uint64_t more = (n - had[MSI_PM_DATA] - had[MS_PAGE_FILL]) * ps;
    if ((rc = output_room(rp, more, "these DATA pages")))
        return rc;
    im->held += more;
    rp->held += more;
    int fd = image_fd(rp, im);
    return fd < 0 ? CB_FAIL : write_all(rp, fd, bytes, (size_t)(n * ps), first * ps, im->file);
}

/* The FILL pages of @im, each written once with its word. */
static int write_fills(replay *rp, image *im)
{
    uint64_t n[MSI_PM_STATES];
    msi_pm_counts(im->map, n);
    if (!n[MS_PAGE_FILL])
        return 0;
    uint8_t *pattern = chunk_of(rp);
    int fd = pattern ? image_fd(rp, im) : -1;
    if (fd < 0 || msi_pm_freeze(im->map))
        return fd < 0 ? CB_FAIL : fail(rp, MS_ENOMEM, "out of memory");
    const uint64_t ps = im->r.page_size;
    msi_pm_walk w;
    msi_pm_walk_init(&w, im->map);
    for (uint64_t p = 0, end; p < im->pages; p = end) {
        int64_t slot;
        unsigned st = msi_pm_run(&w, p, &end, &slot);
        if (end > im->pages)
            end = im->pages;
        for (uint64_t q = p, stop; st == MS_PAGE_FILL && q < end; q = stop) {
            uint64_t word = msi_pm_arg(im->map, q, &stop);
            if (stop > end)
                stop = end;
            for (size_t k = 0; k < CHUNK; k++)
                pattern[k] = (uint8_t)(word >> (8 * (k % 8)));
            /* Each write starts at a page, so on the pattern. */
            int rc = write_repeated(rp, fd, pattern, q * ps, (stop - q) * ps, im->file);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Pages [first, first + count) take the contents of pages [src, src +
 * count), each of which must hold what a DATA copy brought (FORMAT.md
 * section 6.2): a source whose last copy is ZERO, FILL, DISCARDED or
 * IN_PLACE, or which was never sent, is refused. */
static int apply_duplicate(replay *rp, image *im, uint64_t first, uint32_t count, uint64_t src)
{
    uint64_t n[MSI_PM_STATES] = {0};
    msi_pm_range_counts(im->map, src, count, n);
    if (n[MSI_PM_DATA] + n[ST_DATA_ZERO] != count) {
        fail(rp, MS_ECORRUPT,
             "region %" PRIu32 " \"%s\": DUPLICATE pages %" PRIu64 "..%" PRIu64
             " refer to pages %" PRIu64 "..%" PRIu64 ", not all of which hold DATA sent "
             "earlier (FORMAT.md section 6.2)",
             im->r.id, im->r.name, first, first + count - 1, src, src + count - 1);
        return CB_REFUSE;
    }
    uint8_t *buf = chunk_of(rp);
    int fd = image_fd(rp, im);
    if (!buf || fd < 0)
        return CB_FAIL;
    const uint64_t ps = im->r.page_size;
    for (uint32_t k = 0; k < count; k++) {
        uint64_t one[MSI_PM_STATES] = {0};
        msi_pm_range_counts(im->map, src + k, 1, one);
        int rc;
        if (one[ST_DATA_ZERO]) {
            rc = apply_hole(rp, im, first + k, 1, ST_DATA_ZERO);
        } else {
            /* Accounted as a DATA page (apply_data): a page that held DATA
             * or FILL takes no more room. */
            uint64_t had[MSI_PM_STATES] = {0};
            rc = set_pages(rp, im, first + k, 1, MSI_PM_DATA, false, 0, had);
            uint64_t more = had[MSI_PM_DATA] + had[MS_PAGE_FILL] ? 0 : ps;
            if (!rc && !(rc = output_room(rp, more, "these DUPLICATE pages"))) {
                im->held += more;
                rp->held += more;
            }
            for (uint64_t off = 0; off < ps && !rc; off += CHUNK) {
                size_t len = ps - off < CHUNK ? (size_t)(ps - off) : CHUNK;
                ssize_t got = pread(fd, buf, len, (off_t)((src + k) * ps + off));
                if (got != (ssize_t)len)
                    return fail(rp, MS_EIO, "cannot read back %s/%s: %s", rp->tmp, im->file,
                                got < 0 ? strerror(errno) : "short read");
                rc = write_all(rp, fd, buf, len, (first + k) * ps + off, im->file);
            }
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int on_round(void *c, const ms_round *round)
{
    (void)round; /* a later copy wins whatever the round: nothing to apply */
    ((replay *)c)->rounds++;
    return 0;
}

static int on_overlay(void *c, const ms_overlay *o)
{
    replay *rp = c;
    /* The reader bounds the number of overlays (ms_reader_options). */
    overlay *grown = realloc(rp->overlays, (rp->noverlays + 1) * sizeof *grown);
    if (!grown)
        return fail(rp, MS_ENOMEM, "out of memory");
    rp->overlays = grown;
    overlay *v = &rp->overlays[rp->noverlays];
    if (ms_overlay_render(o, v->page)) /* the reader checked it */
        return fail(rp, MS_ECORRUPT, "overlay at frame 0x%" PRIx64 " cannot be rendered", o->gfn);
    v->o = *o;
    memset(v->o.synic.slot, 0, sizeof v->o.synic.slot);
    char name[32];
    snprintf(name, sizeof name, "overlay-%zu.bin", rp->noverlays);
    rp->noverlays++;
    int rc = output_room(rp, blocks_of(sizeof v->page), "an overlay's file");
    if (rc)
        return rc;
    rp->files += blocks_of(sizeof v->page);
    return write_file(rp, name, v->page, sizeof v->page);
}

static int on_extent(void *c, const ms_region *reg, const ms_extent *x, const uint8_t *bytes)
{
    replay *rp = c;
    int rc = 0;
    if (stopped(rp))
        return CB_STOP;
    image *im = find_image(rp, reg->id);
    if (!im)
        return fail(rp, MS_ECORRUPT, "pages for region %" PRIu32 ", which was never declared",
                    reg->id);
    const size_t ps = im->r.page_size;
    if (x->state == MS_PAGE_ZERO || x->state == MS_PAGE_DISCARDED) {
        rc = apply_hole(rp, im, x->first, x->count, x->state);
    } else if (x->state == MS_PAGE_IN_PLACE) {
        /* Not in the stream: the manifest says where each page is. */
        rc = ms_in_place_add(&rp->in_place, reg, x);
        if (rc == MS_ELIMIT) { /* a limit of FORMAT.md section 9: the stream is refused */
            fail(rp, rc,
                 "region %" PRIu32 " \"%s\": more IN_PLACE extents than the replay "
                 "keeps (%u)",
                 reg->id, reg->name, MS_IN_PLACE_DEFAULT_EXTENTS);
            return CB_REFUSE;
        }
        if (rc)
            return fail(rp, rc, "region %" PRIu32 " \"%s\": %s", reg->id, reg->name,
                        rc == MS_ENOMEM ? "out of memory"
                                        : "an IN_PLACE reference the reader should refuse");
        rc = apply_hole(rp, im, x->first, x->count, MS_PAGE_IN_PLACE);
    } else if (x->state == MS_PAGE_FILL) {
        rc = apply_fill(rp, im, x->first, x->count, x->arg);
    } else if (x->state == MS_PAGE_DUPLICATE) {
        rc = apply_duplicate(rp, im, x->first, x->count, x->arg);
    } else if (x->state == MS_PAGE_DATA && bytes) {
        /* Runs of non-zero pages are written; zero pages stay (or become)
         * holes, so the image is sparse whatever the writer sent as DATA. */
        for (uint32_t i = 0; i < x->count && rc == 0;) {
            bool zero = page_is_zero(bytes + (size_t)i * ps, ps);
            uint32_t j = i + 1;
            while (j < x->count && page_is_zero(bytes + (size_t)j * ps, ps) == zero)
                j++;
            if (zero)
                rc = apply_hole(rp, im, x->first + i, j - i, ST_DATA_ZERO);
            else
                rc = apply_data(rp, im, x->first + i, j - i, bytes + (size_t)i * ps);
            i = j;
        }
    } else {
        const char *name = ms_page_state_name(x->state);
        fail(rp, MS_EFEATURE,
             "region %" PRIu32 " \"%s\": page state %u%s%s%s is not supported by the replay",
             reg->id, reg->name, x->state, name ? " (" : "", name ? name : "", name ? ")" : "");
        return CB_REFUSE;
    }
    if (rc)
        return rc;
    rp->pages_applied += x->count;
    if (rp->o->progress)
        rp->o->progress(rp->o->progress_ctx, ms_reader_offset(rp->reader), rp->pages_applied);
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

/* A device state in the JSON form of ms_cbor_format(), in a malloc'd
 * string; NULL when out of memory (the reader checked the item and its
 * nesting, which is within the format's limit). */
static char *cbor_json(const uint8_t *cbor, size_t n)
{
    ssize_t len = ms_cbor_format(cbor, n, MS_CBOR_JSON, MS_MAX_CBOR_DEPTH, NULL, 0);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s)
        ms_cbor_format(cbor, n, MS_CBOR_JSON, MS_MAX_CBOR_DEPTH, s, (size_t)len + 1);
    return s;
}

/* Each device's state is staged in stage-<k>.cbor/.json as it arrives (a
 * later record overwrites it: the last one wins) and renamed to its final
 * name at the end, once the order of the manifest is known. */
static int on_device(void *c, const ms_device *dv)
{
    replay *rp = c;
    if (stopped(rp))
        return CB_STOP;
    if (grow_devices(rp))
        return fail(rp, MS_ENOMEM, "out of memory");
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
        if (!(d->path = strdup(dv->path)))
            return fail(rp, MS_ENOMEM, "out of memory");
        *slot = ++rp->ndevices;
    }
    d->version = dv->version;
    d->state_size = dv->state_size;
    char *json = cbor_json(dv->state, dv->state_size);
    if (!(d->schema = strdup(dv->schema)) || !json) {
        /* The reader checked the state, so only memory can be short here. */
        free(json);
        return fail(rp, MS_ENOMEM, "out of memory formatting the state of device \"%s\"", dv->path);
    }
    /* Its files replace the ones of its earlier records. */
    uint64_t files = blocks_of(dv->state_size) + blocks_of(strlen(json) + 1);
    int rc = files > d->files ? output_room(rp, files - d->files, "a device's files") : 0;
    if (rc) {
        free(json);
        return rc;
    }
    rp->files = rp->files - d->files + files;
    d->files = files;
    char name[64];
    snprintf(name, sizeof name, "stage-%zu.cbor", d->stage);
    rc = write_file(rp, name, dv->state, dv->state_size);
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

/* The first IN_PLACE extent that breaks FORMAT.md section 6.2's overlap
 * rule refuses the stream: two guest pages cannot be kept at one place. */
static int on_overlap(void *c, size_t later, size_t earlier)
{
    replay *rp = c;
    const ms_in_place_extent *x = ms_in_place_get(&rp->in_place, later);
    const ms_in_place_extent *f = ms_in_place_get(&rp->in_place, earlier);
    fail(rp, MS_ECORRUPT,
         "%s: IN_PLACE pages %" PRIu64 "..%" PRIu64 " of region %" PRIu32 " reference 0x%" PRIx64
         "..0x%" PRIx64 ", which overlaps the bytes that pages %" PRIu64 "..%" PRIu64
         " of region %" PRIu32 " reference at 0x%" PRIx64 "..0x%" PRIx64 " (FORMAT.md section 6.2)",
         rp->label, x->first, x->first + x->count - 1, x->region, x->address,
         x->address + x->count * x->page_size - 1, f->first, f->first + f->count - 1, f->region,
         f->address, f->address + f->count * f->page_size - 1);
    return CB_REFUSE;
}

static int on_end(void *c, const ms_totals *t, uint64_t digest)
{
    replay *rp = c;
    rp->totals = *t;
    rp->digest = digest;
    rp->ended = true;
    int rc = ms_in_place_overlaps(&rp->in_place, on_overlap, rp);
    if (rc == MS_ENOMEM)
        return fail(rp, MS_ENOMEM, "%s: out of memory checking IN_PLACE references", rp->label);
    return rc < 0 ? rc : 0;
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

/* @s as a JSON string literal, quotes and escapes included. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_opt_string(FILE *f, const char *s)
{
    if (s)
        json_string(f, s);
    else
        fputs("null", f);
}

/* "in_place_refs": the final IN_PLACE pages of @im with their addresses,
 * as runs of consecutive pages at consecutive addresses. */
static void write_in_place_refs(const replay *rp, const image *im, FILE *f)
{
    msi_pm_walk w;
    const char *sep = "";
    const uint64_t ps = im->r.page_size;
    fputs(",\n      \"in_place_refs\": [", f);
    if (msi_pm_freeze(im->map) == 0) {
        msi_pm_walk_init(&w, im->map);
        uint64_t open_first = 0, open_count = 0, open_addr = 0;
        for (uint64_t p = 0, end; p < im->pages; p = end) {
            int64_t slot;
            unsigned st = msi_pm_run(&w, p, &end, &slot);
            if (end > im->pages)
                end = im->pages;
            for (uint64_t q = p; st == MS_PAGE_IN_PLACE && q < end;) {
                uint64_t stop, addr = ms_in_place_address(&rp->in_place, im->r.id, q, &stop);
                if (stop > end)
                    stop = end;
                if (open_count && open_first + open_count == q &&
                    open_addr + open_count * ps == addr) {
                    open_count += stop - q;
                } else {
                    if (open_count)
                        fprintf(f,
                                "%s{\"first\": %" PRIu64 ", \"count\": %" PRIu64
                                ", \"address\": \"0x%" PRIx64 "\"}",
                                sep, open_first, open_count, open_addr);
                    if (open_count)
                        sep = ", ";
                    open_first = q;
                    open_count = stop - q;
                    open_addr = addr;
                }
                q = stop;
            }
        }
        if (open_count)
            fprintf(f,
                    "%s{\"first\": %" PRIu64 ", \"count\": %" PRIu64 ", \"address\": "
                    "\"0x%" PRIx64 "\"}",
                    sep, open_first, open_count, open_addr);
    }
    fputc(']', f);
}

/* Whether overlay @i is the one the guest sees at its frame: the highest
 * priority kind there (FORMAT.md section 7.2; one of each kind per frame). */
static bool overlay_active(const replay *rp, size_t i)
{
    const ms_overlay *o = &rp->overlays[i].o;
    for (size_t k = 0; k < rp->noverlays; k++)
        if (rp->overlays[k].o.gfn == o->gfn &&
            ms_overlay_priority(rp->overlays[k].o.kind) > ms_overlay_priority(o->kind))
            return false;
    return true;
}

/* "overlays": each overlay, whether the guest sees it (the highest priority
 * at its frame, FORMAT.md section 7.2) and the file holding its 4 KiB. */
static void write_overlays(const replay *rp, FILE *f)
{
    fputs("  \"overlays\": [", f);
    for (size_t i = 0; i < rp->noverlays; i++) {
        const ms_overlay *o = &rp->overlays[i].o;
        fprintf(f,
                "%s\n    {\"gfn\": \"0x%" PRIx64 "\", \"kind\": \"%s\", \"priority\": %u"
                ", \"active\": %s, \"file\": \"overlay-%zu.bin\"}",
                i ? "," : "", o->gfn, ms_overlay_kind_name(o->kind), ms_overlay_priority(o->kind),
                overlay_active(rp, i) ? "true" : "false", i);
    }
    fputs("\n  ],\n", f);
}

static void write_manifest_to(const replay *rp, FILE *f)
{
    const ms_header *h = &rp->header;
    /* A stream of another format (open.h) has no preamble of this format
     * and no checksums: its format's name, and null where the preamble's
     * members and the digest would be. */
    const char *format = ms_reader_format(rp->reader);
    const bool foreign = format && strcmp(format, "migstream") != 0;
    /* schema_version 2 (docs/schemas/manifest.schema.json): manifest_version
     * 1 was the layout before page states were spelled as FORMAT.md spells
     * them and the u64 rule of docs/OUTPUT.md applied. */
    fprintf(f, "{\n  \"schema_version\": %d,\n", MS_REPLAY_DIR_SCHEMA_VERSION);
    if (foreign) {
        fputs("  \"format\": ", f);
        json_string(f, format);
        fputs(",\n", f);
    } else {
        fprintf(f, "  \"format\": \"%u.%u\",\n", h->major, h->minor);
    }
    fprintf(f, "  \"page_size\": %" PRIu32 ",\n", h->page_size);
    if (foreign) {
        fputs("  \"writer_name\": null,\n  \"writer_version\": null", f);
    } else {
        fputs("  \"writer_name\": ", f);
        json_string(f, h->writer_name);
        fputs(",\n  \"writer_version\": ", f);
        json_string(f, h->writer_version);
    }
    fputs(",\n  \"machine\": ", f);
    json_opt_string(f, rp->machine);
    fputs(",\n  \"description\": ", f);
    json_opt_string(f, rp->description);
    if (foreign)
        fputs(",\n  \"digest\": null,\n", f);
    else
        fprintf(f, ",\n  \"digest\": \"0x%016" PRIx64 "\",\n", rp->digest);
    /* END's totals: what the stream declares, so strings (u64 rule). */
    fprintf(f,
            "  \"totals\": {\n    \"records\": \"%" PRIu64 "\",\n    \"bytes\": \"%" PRIu64
            "\",\n    \"pages\": {",
            rp->totals.records, rp->totals.bytes);
    const char *sep = "";
    for (unsigned s = 1; s < MS_PAGE_STATE_SLOTS; s++) {
        const char *name = ms_page_state_name(s);
        if (!name)
            continue;
        fprintf(f, "%s\"%s\": \"%" PRIu64 "\"", sep, name, rp->totals.pages[s]);
        sep = ", ";
    }
    fprintf(f, "},\n    \"devices\": \"%" PRIu64 "\"\n  },\n", rp->totals.devices);
    fprintf(f, "  \"skipped_records\": %" PRIu64 ",\n", rp->skipped);
    if (rp->rounds)
        fprintf(f, "  \"rounds\": %" PRIu64 ",\n", rp->rounds);
    if (rp->noverlays)
        write_overlays(rp, f);

    fputs("  \"regions\": [", f);
    for (size_t i = 0; i < rp->nimages; i++) {
        const image *im = &rp->images[i];
        uint64_t n[MSI_PM_STATES];
        msi_pm_counts(im->map, n);
        uint64_t data = n[MSI_PM_DATA], missing = n[MSI_PM_MISSING];
        fprintf(f, "%s\n    {\n      \"id\": %" PRIu32 ",\n      \"name\": ", i ? "," : "",
                im->r.id);
        json_string(f, im->r.name);
        if (im->r.has_gpa)
            fprintf(f, ",\n      \"gpa\": \"0x%" PRIx64 "\"", im->r.gpa);
        else
            fputs(",\n      \"gpa\": null", f);
        /* "final": the pages in each final state; ZERO: every page sent
         * that reads as zero (FORMAT.md section 2); "missing": never sent. */
        fprintf(f,
                ",\n      \"size\": \"%" PRIu64 "\",\n      \"page_size\": %" PRIu32
                ",\n      \"pages\": %" PRIu64 ",\n      \"final\": {\"DATA\": %" PRIu64
                ", \"ZERO\": %" PRIu64,
                im->r.size, im->r.page_size, im->pages, data, n[MSI_PM_ZERO] + n[ST_DATA_ZERO]);
        /* The states of format 1.1, when the region has any: FILL pages are
         * in the image; DISCARDED and IN_PLACE pages are holes. */
        static const unsigned more[] = {MS_PAGE_FILL, MS_PAGE_DISCARDED, MS_PAGE_IN_PLACE};
        for (size_t k = 0; k < sizeof more / sizeof more[0]; k++)
            if (n[more[k]])
                fprintf(f, ", \"%s\": %" PRIu64, ms_page_state_name(more[k]), n[more[k]]);
        fprintf(f, ", \"missing\": %" PRIu64 "}", missing);
        if (n[MS_PAGE_IN_PLACE])
            write_in_place_refs(rp, im, f);
        fprintf(f, ",\n      \"file\": \"%s\"\n    }", im->file);
    }
    fputs(rp->nimages ? "\n  ],\n" : "],\n", f);

    fputs("  \"devices\": [", f);
    for (size_t i = 0; i < rp->ndevices; i++) {
        const device *d = &rp->devices[i];
        fprintf(f, "%s\n    {\n      \"path\": ", i ? "," : "");
        json_string(f, d->path);
        fprintf(f, ",\n      \"instance\": %" PRIu32 ",\n      \"schema\": ", d->instance);
        json_string(f, d->schema);
        fprintf(f,
                ",\n      \"version\": %" PRIu32 ",\n      \"state_size\": %zu"
                ",\n      \"cbor\": \"device-%zu.cbor\",\n      \"json\": \"device-%zu.json\"\n"
                "    }",
                d->version, d->state_size, i, i);
    }
    fputs(rp->ndevices ? "\n  ]\n}\n" : "]\n}\n", f);
}

/* Bytes the manifest takes at most: every name escaped as \u00XX. */
static uint64_t manifest_bound(const replay *rp)
{
    uint64_t n = 4096 + 6 * ((rp->machine ? strlen(rp->machine) : 0) +
                             (rp->description ? strlen(rp->description) : 0));
    for (size_t i = 0; i < rp->nimages; i++)
        n += 1024 + 6 * strlen(rp->images[i].r.name);
    for (size_t i = 0; i < rp->ndevices; i++)
        n += 512 + 6 * (strlen(rp->devices[i].path) + strlen(rp->devices[i].schema));
    return blocks_of(n + 256 * rp->noverlays + 128 * (uint64_t)ms_in_place_count(&rp->in_place));
}

/* The guest-visible view of @im (ms_replay_dir_options.view): a copy of the
 * image, holes kept, with each active overlay's 4 KiB written over the RAM
 * at its frame. Written only for regions that hold an active overlay. */
static int write_view(replay *rp, image *im)
{
    uint64_t overlays = 0;
    for (size_t i = 0; i < rp->noverlays; i++) {
        uint64_t gpa = rp->overlays[i].o.gfn * MS_OVERLAY_PAGE_SIZE;
        overlays += im->r.has_gpa && gpa >= im->r.gpa && gpa - im->r.gpa < im->r.size;
    }
    if (!overlays)
        return 0;
    uint64_t bytes = add_sat(im->held, overlays * MS_OVERLAY_PAGE_SIZE);
    int room = output_room(rp, bytes, "a view image");
    if (room)
        return room;
    rp->files += bytes;
    char name[48];
    snprintf(name, sizeof name, "region-%" PRIu32 ".view.img", im->r.id);
    int src = image_fd(rp, im);
    int dst = src < 0 ? -1 : open_file(rp, name, O_RDWR | O_CREAT | O_EXCL);
    if (src < 0)
        return CB_FAIL;
    if (dst < 0)
        return fail(rp, MS_EIO, "cannot create %s/%s: %s", rp->tmp, name, strerror(errno));
    int rc = ftruncate(dst, (off_t)im->r.size)
                 ? fail(rp, MS_EIO, "cannot write %s/%s: %s", rp->tmp, name, strerror(errno))
                 : 0;
    /* Copy the data extents only, so the view is as sparse as the image. */
    uint8_t *buf = chunk_of(rp);
    if (!buf)
        rc = CB_FAIL;
    off_t at = 0, size = (off_t)im->r.size;
    while (rc == 0 && at < size) {
        off_t data = lseek(src, at, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: only a hole is left */
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            hole = size;
        for (off_t p = data; rc == 0 && p < hole;) {
            size_t n = hole - p < (off_t)CHUNK ? (size_t)(hole - p) : CHUNK;
            ssize_t got = pread(src, buf, n, p);
            if (got <= 0)
                rc = fail(rp, MS_EIO, "cannot read %s/%s: %s", rp->tmp, im->file,
                          got < 0 ? strerror(errno) : "unexpected end");
            else
                rc = write_all(rp, dst, buf, (size_t)got, (uint64_t)p, name);
            p += got > 0 ? got : 0;
        }
        at = hole;
    }
    for (size_t i = 0; rc == 0 && i < rp->noverlays; i++) {
        const overlay *v = &rp->overlays[i];
        uint64_t gpa = v->o.gfn * MS_OVERLAY_PAGE_SIZE;
        if (!im->r.has_gpa || gpa < im->r.gpa || gpa - im->r.gpa >= im->r.size)
            continue;
        if (overlay_active(rp, i))
            rc = write_all(rp, dst, v->page, sizeof v->page, gpa - im->r.gpa, name);
    }
    if (rc == 0 && !rp->o->no_sync && fsync(dst) != 0)
        rc = fail(rp, MS_EIO, "cannot write %s/%s: %s", rp->tmp, name, strerror(errno));
    close(dst);
    return rc;
}

/* Renames the staged device files, writes the manifest and makes every file
 * durable, so that the rename of the directory publishes a complete one. */
static int finish_output(replay *rp)
{
    char a[64], b[64];
    if (rp->ndevices) /* devices is NULL when there are none */
        qsort(rp->devices, rp->ndevices, sizeof *rp->devices, device_order);
    for (size_t i = 0; i < rp->ndevices; i++) {
        for (int k = 0; k < 2; k++) {
            const char *ext = k ? "json" : "cbor";
            snprintf(a, sizeof a, "stage-%zu.%s", rp->devices[i].stage, ext);
            snprintf(b, sizeof b, "device-%zu.%s", i, ext);
            if (renameat(rp->dirfd, a, rp->dirfd, b) != 0)
                return fail(rp, MS_EIO, "cannot rename %s/%s to %s: %s", rp->tmp, a, b,
                            strerror(errno));
        }
    }
    /* Staged names never collide with final ones, so the renames above never
     * replace a file still to be renamed. */
    for (size_t i = 0; i < rp->nimages; i++) {
        int rc = write_fills(rp, &rp->images[i]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; rp->o->view && i < rp->nimages; i++) {
        int rc = write_view(rp, &rp->images[i]);
        if (rc)
            return rc;
    }
    int rc = output_room(rp, manifest_bound(rp), "the manifest");
    if (rc)
        return rc;
    for (size_t i = 0; i < rp->nimages; i++) {
        image *im = &rp->images[i];
        if (!rp->o->no_sync) {
            int fd = image_fd(rp, im);
            if (fd < 0)
                return CB_FAIL;
            if (fsync(fd) != 0)
                return fail(rp, MS_EIO, "cannot write %s/%s: %s", rp->tmp, im->file,
                            strerror(errno));
        }
        image_close(rp, im);
    }
    int fd = open_file(rp, "manifest.json", O_WRONLY | O_CREAT | O_EXCL);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return fail(rp, MS_EIO, "cannot create %s/manifest.json: %s", rp->tmp, strerror(e));
    }
    write_manifest_to(rp, f);
    if (fflush(f) != 0 || (!rp->o->no_sync && fsync(fileno(f)) != 0) || ferror(f)) {
        int e = errno;
        fclose(f);
        return fail(rp, MS_EIO, "cannot write %s/manifest.json: %s", rp->tmp, strerror(e));
    }
    if (fclose(f) != 0)
        return fail(rp, MS_EIO, "cannot write %s/manifest.json: %s", rp->tmp, strerror(errno));
    return 0;
}

static void replay_free(replay *rp)
{
    for (size_t i = 0; i < rp->nimages; i++) {
        image_close(rp, &rp->images[i]);
        free((char *)rp->images[i].r.name);
        msi_pm_free(rp->images[i].map);
    }
    for (size_t i = 0; i < rp->ndevices; i++) {
        free(rp->devices[i].path);
        free(rp->devices[i].schema);
    }
    free(rp->images);
    free(rp->overlays);
    msi_in_place_clear(&rp->in_place);
    free(rp->by_id);
    free(rp->devices);
    free(rp->dev_index);
    free(rp->machine);
    free(rp->description);
    free(rp->chunk);
}

/* ------------------------------------------------------------------- entry */

void ms_replay_dir_options_init(ms_replay_dir_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->max_map_memory = MS_PAGEMAP_DEFAULT_MEMORY;
    opts->max_output = MS_MAX_OUTPUT_DEFAULT;
}

ms_replay_dir *ms_replay_dir_new(const ms_replay_dir_options *opts)
{
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    const char *why = opts ? msi_struct_take(&o, MSI_STRUCT_END(ms_replay_dir_options, max_output),
                                             opts, opts->struct_size)
                           : NULL;
    if (why)
        ms_replay_dir_options_init(&o);
    o.struct_size = sizeof o;
    if (!o.max_map_memory)
        o.max_map_memory = MS_PAGEMAP_DEFAULT_MEMORY;
    ms_replay_dir *rd = calloc(1, sizeof *rd);
    if (!rd)
        return NULL;
    rd->o = o;
    /* A handle in the failed state carries the reason (common.h, "Handles"). */
    if (why) {
        rd->status = MS_EINVAL;
        snprintf(rd->err, sizeof rd->err, "invalid replay options: %s", why);
    }
    return rd;
}

int ms_replay_dir_status(const ms_replay_dir *rd)
{
    return rd ? rd->status : MS_ENOMEM; /* NULL: a constructor without memory */
}

void ms_replay_dir_free(ms_replay_dir *rd)
{
    free(rd);
}

const ms_replay_dir_result *ms_replay_dir_get_result(const ms_replay_dir *rd)
{
    static const ms_replay_dir_result none;
    return rd ? &rd->result : &none;
}

const char *ms_replay_dir_errmsg(const ms_replay_dir *rd)
{
    return rd ? rd->err : "out of memory creating the replay job";
}

int ms_replay_dir_write(ms_replay_dir *rd, ms_reader *r, const char *name, const char *path)
{
    if (!rd)
        return MS_EINVAL;
    if (rd->status)
        return rd->status;
    ms_replay_dir_result *result = &rd->result;
    replay rp;
    memset(&rp, 0, sizeof rp);
    memset(result, 0, sizeof *result);
    rp.o = &rd->o;
    rp.label = name ? name : "stream";
    rp.err = rd->err;
    rp.err_size = sizeof rd->err;
    rp.err[0] = 0;
    rp.dirfd = -1;
    rp.budget.limit = rd->o.max_map_memory;
    msi_allocator_set(&rp.alloc, NULL);
    msi_in_place_init(&rp.in_place, NULL, MS_IN_PLACE_DEFAULT_EXTENTS);
    if (!r || !path || !*path) {
        fail(&rp, MS_EINVAL, "no input or no output directory");
        return MS_EINVAL;
    }

    int status = 0; /* 0, MS_REPLAY_DIR_STOPPED or a failure */
    rp.reader = r;
    if (dir_begin(&rp, path)) {
        status = rp.status;
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
            .round = on_round,
            .overlay = on_overlay,
        };
        int rc = ms_replay(r, &cb, &rp);
        if (rc == 0 && !stopped(&rp))
            rc = ms_reader_expect_eof(r);
        if (stopped(&rp)) {
            status = MS_REPLAY_DIR_STOPPED;
            snprintf(rp.err, rp.err_size, "%s: interrupted", rp.label);
        } else if (rc == CB_FAIL) {
            status = rp.status;
        } else if (rc == CB_REFUSE) {
            status = result->stream_status = rp.status;
        } else if (rc < 0) {
            const char *msg = ms_reader_errmsg(r);
            fail(&rp, rc, "%s: %s", rp.label, *msg ? msg : ms_strerror(rc));
            status = result->stream_status = rc;
        } else if (!rp.ended) { /* cannot happen: ms_replay returns 0 only after END */
            fail(&rp, MS_ETRUNCATED, "%s: the stream ended without END", rp.label);
            status = result->stream_status = MS_ETRUNCATED;
        } else if (finish_output(&rp) != 0) {
            status = rp.status;
        }
    }
    result->regions = rp.nimages;
    result->devices = rp.ndevices;
    result->overlays = rp.noverlays;
    result->skipped_records = rp.skipped;
    result->pages = rp.pages_applied;
    result->digest = rp.digest;
    replay_free(&rp);
    if (status == 0 && stopped(&rp)) {
        status = MS_REPLAY_DIR_STOPPED;
        snprintf(rp.err, rp.err_size, "%s: interrupted", rp.label);
    }
    if (status == 0 && dir_commit(&rp) != 0)
        status = rp.status;
    if (status != 0)
        dir_abort(&rp);
    free(rp.final);
    return status;
}
