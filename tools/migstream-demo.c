/*
 * migstream-demo: writes a synthetic guest's memory and device state as a
 * libmigstream stream, reads the stream back, rebuilds the guest's memory
 * from it and checks that it is byte for byte what went in.
 *
 * Only the public API is used, the way a VMM would use it: the source side
 * declares regions and hands in memory and device state; the destination
 * side pulls records and applies them. Everything derives from a fixed seed
 * and the writer is deterministic, so the same options give the same stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <migstream/migstream.h>

#define PAGE 4096u
#define MIB (1024u * 1024u)
#define MAX_RAM_MIB 3072u /* pc.ram stays below the 32-bit PCI hole, as on a PC */
#define FB_ROW_FIRST 200u /* framebuffer rows (one page each) the guest drew on */
#define FB_ROW_END 500u
#define EXIT_VERIFY 1
#define EXIT_USAGE 2 /* also I/O errors */

typedef struct guest_region {
    ms_region r;
    uint8_t *src; /* what the source VM holds */
    uint8_t *dst; /* what the destination rebuilt from the stream */
    bool declared;
    uint64_t pages[MS_PAGE_STATE_SLOTS]; /* pages read back, by state */
} guest_region;

/* ------------------------------------------------------------ guest image */

/* splitmix64: tiny, and random enough that such pages do not compress. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Page cache and heap strings: a small vocabulary, so zstd finds repeats. */
static void fill_text(uint8_t *p, size_t n, uint64_t *s)
{
    static const char *const words[] = {"the",    "guest", "kernel", "page", "memory", "device",
                                        "virtio", "queue", "of",     "and",  "to",     "migration",
                                        "stream", "is",    "a",      "in",   "for",    "return"};
    size_t i = 0;
    while (i < n) {
        const char *w = words[rnd(s) % (sizeof words / sizeof words[0])];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (uint8_t)w[k];
        if (i < n)
            p[i++] = rnd(s) % 10 ? ' ' : '\n';
    }
}

/* Machine code: common x86-64 encodings, some followed by random operands. */
static void fill_code(uint8_t *p, size_t n, uint64_t *s)
{
    static const struct {
        uint8_t len, imm, b[5];
    } ops[] = {
        {1, 0, {0x55}},                         /* push rbp */
        {3, 0, {0x48, 0x89, 0xe5}},             /* mov rbp, rsp */
        {4, 0, {0x48, 0x83, 0xec, 0x20}},       /* sub rsp, 0x20 */
        {4, 0, {0x48, 0x8b, 0x45, 0xf8}},       /* mov rax, [rbp-8] */
        {3, 0, {0x48, 0x85, 0xc0}},             /* test rax, rax */
        {1, 1, {0x75}},                         /* jne rel8 */
        {1, 4, {0xe8}},                         /* call rel32 */
        {1, 4, {0xb8}},                         /* mov eax, imm32 */
        {1, 0, {0xc9}},                         /* leave */
        {1, 0, {0xc3}},                         /* ret */
        {5, 0, {0x0f, 0x1f, 0x44, 0x00, 0x00}}, /* nop dword [rax+rax] */
    };
    size_t i = 0;
    while (i < n) {
        size_t k = rnd(s) % (sizeof ops / sizeof ops[0]);
        for (size_t j = 0; j < ops[k].len && i < n; j++)
            p[i++] = ops[k].b[j];
        for (size_t j = 0; j < ops[k].imm && i < n; j++)
            p[i++] = (uint8_t)rnd(s);
    }
}

/* RAM as runs of pages of one kind. Weights count runs, not pages: a few
 * long zero runs (RAM the guest never touched) outweigh many short ones. */
enum fill { FILL_ZERO, FILL_TEXT, FILL_CODE, FILL_ONE_BYTE, FILL_RANDOM };
static const struct {
    enum fill fill;
    unsigned weight, min, max;
} run_kinds[] = {
    {FILL_ZERO, 30, 256, 2048}, /* RAM the guest never touched */
    {FILL_TEXT, 110, 4, 32},    /* page cache, strings */
    {FILL_CODE, 110, 4, 32},    /* kernel and program text */
    {FILL_ONE_BYTE, 440, 1, 4}, /* one flag set: not zero, but only just */
    {FILL_RANDOM, 310, 1, 16},  /* compressed or encrypted data */
};

static void fill_ram(uint8_t *mem, uint64_t npages, uint64_t *s)
{
    for (uint64_t pg = 0; pg < npages;) {
        unsigned pick = (unsigned)(rnd(s) % 1000), k = 0;
        while (pick >= run_kinds[k].weight)
            pick -= run_kinds[k++].weight;
        uint64_t len = run_kinds[k].min + rnd(s) % (run_kinds[k].max - run_kinds[k].min + 1);
        for (; len > 0 && pg < npages; len--, pg++) {
            uint8_t *p = mem + pg * PAGE;
            if (run_kinds[k].fill == FILL_TEXT)
                fill_text(p, PAGE, s);
            else if (run_kinds[k].fill == FILL_CODE)
                fill_code(p, PAGE, s);
            else if (run_kinds[k].fill == FILL_ONE_BYTE)
                p[rnd(s) % PAGE] = (uint8_t)(1 + rnd(s) % 255);
            else if (run_kinds[k].fill == FILL_RANDOM)
                for (size_t i = 0; i < PAGE; i += 8) {
                    uint64_t v = rnd(s);
                    memcpy(p + i, &v, 8);
                }
        }
    }
}

/* VRAM: a 1024x768 32-bit framebuffer, one row per page, black but for a
 * grey window with a blue title bar on rows FB_ROW_FIRST..FB_ROW_END-1.
 * Firmware: code, ending with the reset vector's far jump to F000:E05B. */
static void fill_vram_bios(uint8_t *vram, uint8_t *bios, size_t bios_size, uint64_t *s)
{
    static const uint8_t reset[16] = {0xea, 0x5b, 0xe0, 0x00, 0xf0};
    for (unsigned y = FB_ROW_FIRST; y < FB_ROW_END; y++)
        for (unsigned x = 256; x < 768; x++) {
            uint32_t px = y < FB_ROW_FIRST + 20 ? 0x000000a0u : 0x00c0c0c0u;
            memcpy(vram + (size_t)y * PAGE + x * 4, &px, 4);
        }
    fill_code(bios, bios_size - 16, s);
    memcpy(bios + bios_size - 16, reset, sizeof reset);
}

/* ------------------------------------------------------- device state CBOR */

/*
 * A minimal CBOR encoder (RFC 8949): only the item heads the two device
 * states need. The library checks device state against the CBOR profile of
 * docs/FORMAT.md but has no encoder for it: a VMM brings its own serializer.
 * Definite lengths, the shortest head for each value, small unsigned keys.
 */
typedef struct cbuf {
    uint8_t b[256];
    size_t len;
} cbuf;
enum { CBOR_UINT = 0, CBOR_BYTES = 2, CBOR_ARRAY = 4, CBOR_MAP = 5 };

static void cbor_head(cbuf *c, unsigned major, uint64_t v)
{
    static const uint8_t info[9] = {0, 24, 25, 0, 26, 0, 0, 0, 27}; /* by extra bytes */
    unsigned extra = v < 24 ? 0 : v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
    if (c->len + 1 + extra > sizeof c->b)
        abort(); /* cannot happen: the states below are small and fixed */
    c->b[c->len++] = (uint8_t)(major << 5 | (extra ? info[extra] : v));
    for (unsigned i = extra; i > 0; i--)
        c->b[c->len++] = (uint8_t)(v >> (8 * (i - 1)));
}

static void cbor_pair(cbuf *c, uint64_t key, uint64_t value)
{
    cbor_head(c, CBOR_UINT, key);
    cbor_head(c, CBOR_UINT, value);
}

/* Schema "x86-cpu" v1: a map from register number (the index below) to value. */
static void encode_cpu(cbuf *c)
{
    static const uint64_t regs[] = {
        0x0,                /* rax */
        0xffff888003a1c000, /* rbx */
        0x1,                /* rcx */
        0xffffffff82a03e58, /* rdx */
        0x0,                /* rsi */
        0xffff888003a1c000, /* rdi */
        0xffffffff82a03e80, /* rbp */
        0xffffffff82a03e48, /* rsp */
        0xffffffff81e0a1b2, /* rip */
        0x246,              /* rflags */
        0x80050033,         /* cr0 */
        0x10a2000,          /* cr3 */
        0x3706f0,           /* cr4 */
        0xd01,              /* efer */
    };
    cbor_head(c, CBOR_MAP, sizeof regs / sizeof regs[0]);
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        cbor_pair(c, i, regs[i]);
}

static void encode_nic(cbuf *c)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    static const uint16_t idx[2] = {812, 4093};
    cbor_head(c, CBOR_MAP, 5);
    cbor_head(c, CBOR_UINT, 0);
    cbor_head(c, CBOR_BYTES, sizeof mac);
    memcpy(c->b + c->len, mac, sizeof mac);
    c->len += sizeof mac;
    cbor_pair(c, 1, 1); /* link up */
    cbor_pair(c, 2, 1500);
    cbor_pair(c, 3, 0x130af8064ull);
    cbor_head(c, CBOR_UINT, 4);
    cbor_head(c, CBOR_ARRAY, 2);
    for (int q = 0; q < 2; q++) {
        cbor_head(c, CBOR_MAP, 2);
        cbor_pair(c, 0, idx[q]);
        cbor_pair(c, 1, idx[q]);
    }
}

static const struct {
    const char *path, *schema;
    void (*encode)(cbuf *);
} devices[] = {
    {"cpu/0", "x86-cpu", encode_cpu},
    {"pci0/0000:00:03.0/virtio-net", "virtio-net", encode_nic},
};
#define NDEV (sizeof devices / sizeof devices[0])

/* --------------------------------------------------------- write and read */

typedef struct report {
    ms_header hdr;
    char machine[MS_MAX_NAME_LEN + 1];
    uint64_t count[6], bytes[6], zstd; /* by record type; [0]: unknown types */
    uint64_t preamble, stream_size;
    struct {
        char path[MS_MAX_PATH_LEN + 1], schema[MS_MAX_NAME_LEN + 1];
    } dev[NDEV];
    ms_device devv[NDEV]; /* copies of the views, pointing at dev[] */
    size_t ndev;
    ms_totals end;
    const char *bad; /* set when the stream holds something we did not write */
} report;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* The source side. Errors are sticky (writer.h): one check at finish covers
 * every call before it. */
static int write_guest(ms_writer *w, guest_region *g, const cbuf *state, ms_totals *totals)
{
    for (size_t i = 0; i < 3; i++)
        ms_writer_add_region(w, &g[i].r);
    /* RAM and firmware in one call each: the writer finds the zero pages. */
    ms_writer_pages(w, g[0].r.id, 0, g[0].r.size / PAGE, g[0].src);
    ms_writer_pages(w, g[2].r.id, 0, g[2].r.size / PAGE, g[2].src);
    /* VRAM as a VMM that tracks dirty pages sends it: the rows it knows the
     * guest drew on, and the rest declared zero without being read. */
    ms_writer_zero_pages(w, g[1].r.id, 0, FB_ROW_FIRST);
    ms_writer_pages(w, g[1].r.id, FB_ROW_FIRST, FB_ROW_END - FB_ROW_FIRST,
                    g[1].src + (size_t)FB_ROW_FIRST * PAGE);
    ms_writer_zero_pages(w, g[1].r.id, FB_ROW_END, g[1].r.size / PAGE - FB_ROW_END);
    for (size_t i = 0; i < NDEV; i++)
        ms_writer_device(w, devices[i].path, 0, devices[i].schema, 1, state[i].b, state[i].len);
    return ms_writer_finish(w, totals);
}

/* Writes to a temporary file beside @path, renamed into place only once the
 * stream is complete, so that @path never holds half a stream. */
/* --batch-kib: the writer's batch size. Streams of one guest written with
 * different batch sizes differ in bytes but not in effect (migstream-diff
 * compares them equal); demo.sh shows that. */
static uint32_t batch_bytes;

static int write_file(const char *path, bool force, int level, guest_region *g, const cbuf *state,
                      ms_totals *totals, double *secs)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp)
        return fprintf(stderr, "migstream-demo: path too long\n"), EXIT_USAGE;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return fprintf(stderr, "migstream-demo: %s: %s\n", tmp, strerror(errno)), EXIT_USAGE;
    mode_t mask = umask(0); /* mkstemp makes 0600; give the usual 0666 & ~umask */
    umask(mask);
    fchmod(fd, 0666 & ~mask);

    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "migstream-demo";
    o.writer_version = ms_version_string();
    o.machine = "synthetic-pc";
    o.description = "libmigstream demo: synthetic guest from a fixed seed";
    o.compress_level = level;
    o.batch_bytes = batch_bytes; /* 0: the library's default */
    double t0 = now();
    ms_writer *w = ms_writer_new_fd(&o, fd);
    int rc = w ? write_guest(w, g, state, totals) : MS_EINVAL;
    *secs = now() - t0;
    if (!w) /* ms_writer_new_fd() has no handle to carry a message */
        fprintf(stderr, "migstream-demo: the writer refused its options, or out of memory\n");
    else if (rc)
        fprintf(stderr, "migstream-demo: writing %s: %s\n", tmp, ms_writer_errmsg(w));
    ms_writer_free(w);
    int err = fsync(fd) ? errno : 0; /* so a crash cannot leave PATH naming an empty file */
    if (close(fd) && !err)
        err = errno;
    if (!rc && err) {
        fprintf(stderr, "migstream-demo: writing %s: %s\n", tmp, strerror(err));
        rc = MS_EIO;
    }
    if (!rc && !force && access(path, F_OK) == 0) { /* it may have appeared meanwhile */
        fprintf(stderr, "migstream-demo: %s exists (use --force to replace it)\n", path);
        rc = MS_EINVAL;
    }
    if (!rc && rename(tmp, path)) {
        fprintf(stderr, "migstream-demo: rename %s: %s\n", tmp, strerror(errno));
        rc = MS_EIO;
    }
    if (rc)
        unlink(tmp);
    return rc ? EXIT_USAGE : 0;
}

/* The destination side, for one record: counts it and applies it to g[].dst. */
static void apply(const ms_record *rec, uint64_t size, guest_region *g, const cbuf *state,
                  report *rep)
{
    unsigned t = rec->type <= MS_REC_END ? rec->type : 0;
    rep->count[t]++;
    rep->bytes[t] += size;
    if (rec->index == 0)
        rep->preamble = rec->offset;
    if (rec->type == MS_REC_INFO && rec->info.machine)
        snprintf(rep->machine, sizeof rep->machine, "%s", rec->info.machine);
    for (size_t i = 0; rec->type == MS_REC_REGIONS && i < rec->region_count; i++) {
        const ms_region *d = &rec->regions[i];
        guest_region *gr = d->id < 3 ? &g[d->id] : NULL; /* our ids index g[] */
        if (!gr || strcmp(d->name, gr->r.name) || d->size != gr->r.size || d->gpa != gr->r.gpa ||
            d->page_size != PAGE)
            rep->bad = "a region differs from the one written";
        else
            gr->declared = true;
    }
    if (rec->type == MS_REC_PAGES) {
        /* The reader has checked the extents against the region's bounds. */
        guest_region *gr = &g[rec->pages.region->id]; /* declared, so < 3 */
        const uint8_t *data = rec->pages.data;
        for (size_t i = 0; i < rec->pages.extent_count; i++) {
            const ms_extent *x = &rec->pages.extents[i];
            size_t off = (size_t)x->first * PAGE, len = (size_t)x->count * PAGE;
            if (x->state == MS_PAGE_DATA) {
                memcpy(gr->dst + off, data, len);
                data += len;
            } else {
                memset(gr->dst + off, 0, len);
            }
            gr->pages[x->state] += x->count;
        }
        rep->zstd += rec->pages.encoding == MS_ENCODING_ZSTD;
    }
    if (rec->type == MS_REC_DEVICE) {
        size_t k = rep->ndev++;
        const ms_device *d = &rec->device;
        if (k >= NDEV || strcmp(d->path, devices[k].path) || d->state_size != state[k].len ||
            memcmp(d->state, state[k].b, state[k].len))
            rep->bad = "a device's state differs from what was written";
        else { /* the views last only until the next call on the reader */
            rep->devv[k] = *d;
            rep->devv[k].path = strcpy(rep->dev[k].path, d->path);
            rep->devv[k].schema = strcpy(rep->dev[k].schema, d->schema);
            rep->devv[k].state = NULL;
        }
    }
    if (rec->type == MS_REC_END)
        rep->end = rec->totals;
}

static int read_file(const char *path, guest_region *g, const cbuf *state, report *rep,
                     double *secs)
{
    double t0 = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return fprintf(stderr, "migstream-demo: %s: %s\n", path, strerror(errno)), EXIT_USAGE;
    ms_reader *r = ms_reader_new_fd(NULL, fd);
    const ms_header *h;
    const ms_record *rec;
    int rc = r ? ms_reader_header(r, &h) : MS_ENOMEM;
    if (rc == 0) {
        rep->hdr = *h;
        while (!rep->bad && (rc = ms_reader_next(r, &rec)) > 0)
            apply(rec, ms_reader_offset(r) - rec->offset, g, state, rep);
    }
    if (rc == 0)
        rc = ms_reader_expect_eof(r); /* a file holds one stream and nothing after it */
    rep->stream_size = ms_reader_offset(r);
    *secs = now() - t0;
    if (rc < 0)
        fprintf(stderr, "migstream-demo: reading %s: %s\n", path,
                r ? ms_reader_errmsg(r) : "out of memory");
    else if (rep->bad)
        fprintf(stderr, "migstream-demo: verification failed: %s\n", rep->bad);
    ms_reader_free(r);
    close(fd);
    if (rc == MS_EIO || rc == MS_ENOMEM)
        return EXIT_USAGE;
    return rc < 0 || rep->bad ? EXIT_VERIFY : 0;
}

/* ------------------------------------------------------------------ main */

static int verify(const guest_region *g, const ms_totals *wrote, const report *rep)
{
    int rc = 0;
    for (size_t i = 0; i < 3; i++) {
        if (!g[i].declared) {
            fprintf(stderr, "migstream-demo: verification failed: no region %s\n", g[i].r.name);
            rc = EXIT_VERIFY;
            continue;
        }
        for (uint64_t pg = 0; pg < g[i].r.size / PAGE; pg++)
            if (memcmp(g[i].src + pg * PAGE, g[i].dst + pg * PAGE, PAGE)) {
                fprintf(stderr,
                        "migstream-demo: verification failed: %s differs from page "
                        "%llu on\n",
                        g[i].r.name, (unsigned long long)pg);
                rc = EXIT_VERIFY;
                break;
            }
    }
    if (rep->ndev != NDEV || memcmp(wrote, &rep->end, sizeof *wrote)) {
        fprintf(stderr, "migstream-demo: verification failed: END totals differ\n");
        rc = EXIT_VERIFY;
    }
    return rc;
}

static void print_report(const guest_region *g, const report *rep, double wsecs, double rsecs)
{
    static const char *const names[] = {"(unknown)", "INFO", "REGIONS", "PAGES", "DEVICE", "END"};
    uint64_t raw = 0;
    printf("header     format %u.%u, writer \"%s\" version \"%s\", page size %u, machine %s\n",
           rep->hdr.major, rep->hdr.minor, rep->hdr.writer_name, rep->hdr.writer_version,
           rep->hdr.page_size, rep->machine);
    printf("regions    id  name        guest-physical range       size   page size\n");
    for (size_t i = 0; i < 3; i++) {
        raw += g[i].r.size;
        printf("           %-3u %-11s 0x%08llx..0x%08llx  %7.2f MiB  %u\n", g[i].r.id, g[i].r.name,
               (unsigned long long)g[i].r.gpa, (unsigned long long)(g[i].r.gpa + g[i].r.size - 1),
               (double)g[i].r.size / MIB, g[i].r.page_size);
    }
    printf("records    type       count        bytes\n"
           "           preamble       1 %12llu\n",
           (unsigned long long)rep->preamble);
    for (unsigned t = rep->count[0] ? 0 : 1; t < 6; t++)
        printf("           %-10s %5llu %12llu\n", names[t], (unsigned long long)rep->count[t],
               (unsigned long long)rep->bytes[t]);
    if (rep->zstd)
        printf("           (%llu of the PAGES records hold zstd-compressed data)\n",
               (unsigned long long)rep->zstd);
    printf("pages      region            DATA       ZERO\n");
    for (size_t i = 0; i < 3; i++)
        printf("           %-11s %10llu %10llu\n", g[i].r.name,
               (unsigned long long)g[i].pages[MS_PAGE_DATA],
               (unsigned long long)g[i].pages[MS_PAGE_ZERO]);
    for (size_t i = 0; i < rep->ndev; i++)
        printf("%s %s (instance %u): schema %s v%u, state %zu bytes of CBOR\n",
               i ? "          " : "devices   ", rep->devv[i].path, rep->devv[i].instance,
               rep->devv[i].schema, rep->devv[i].version, rep->devv[i].state_size);
    printf("END        %llu records, END at byte %llu, %llu DATA + %llu ZERO pages, "
           "%llu devices\n",
           (unsigned long long)rep->end.records, (unsigned long long)rep->end.bytes,
           (unsigned long long)rep->end.pages[MS_PAGE_DATA],
           (unsigned long long)rep->end.pages[MS_PAGE_ZERO], (unsigned long long)rep->end.devices);
    printf("size       raw memory %llu bytes (%.1f MiB), stream %llu bytes (%.1f MiB): "
           "ratio %.4f\n",
           (unsigned long long)raw, (double)raw / MIB, (unsigned long long)rep->stream_size,
           (double)rep->stream_size / MIB, (double)rep->stream_size / (double)raw);
    printf("time       write %.3f s (%.0f MiB/s), read and rebuild %.3f s (%.0f MiB/s) of guest "
           "memory\n",
           wsecs, (double)raw / MIB / wsecs, rsecs, (double)raw / MIB / rsecs);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: migstream-demo [-o PATH] [--force] [--size MiB] [--compress LEVEL]\n"
            "                      [--batch-kib N] [--change N]\n"
            "Writes a synthetic guest as a libmigstream stream, reads it back and checks\n"
            "that the rebuilt memory and device state are identical to the original.\n"
            "  -o PATH           stream file to write (default: demo.mig)\n"
            "  --force           replace PATH if it exists\n"
            "  --size MiB        guest RAM, 1..%u (default: 256)\n"
            "  --compress LEVEL  zstd level for page data, 1..19; 0: off (default)\n"
            "  --batch-kib N     page data per PAGES record, 4..32768 KiB (default 1024)\n"
            "  --change N        flip the first byte of N pc.ram pages (default 0)\n"
            "Exit status: 0 identical, 1 verification failed, 2 usage or I/O error.\n",
            MAX_RAM_MIB);
}

static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return *s >= '0' && *s <= '9' && !*end && !errno && *out >= lo && *out <= hi;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, 'f'},
        {"size", required_argument, NULL, 's'},
        {"compress", required_argument, NULL, 'c'},
        {"batch-kib", required_argument, NULL, 'b'},
        {"change", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = "demo.mig";
    bool force = false;
    unsigned long size_mib = 256, level = 0, batch_kib = 0, change = 0;
    for (int opt; (opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1;) {
        if (opt == 'h')
            return usage(stdout), 0;
        if (opt == 'o')
            path = optarg;
        else if (opt == 'f')
            force = true;
        else if (!(opt == 's' && parse_uint(optarg, 1, MAX_RAM_MIB, &size_mib)) &&
                 !(opt == 'c' && parse_uint(optarg, 0, 19, &level)) &&
                 !(opt == 'b' && parse_uint(optarg, 4, 32768, &batch_kib)) &&
                 !(opt == 'x' && parse_uint(optarg, 0, 1000, &change))) {
            if (opt == 's' || opt == 'c' || opt == 'b' || opt == 'x')
                fprintf(stderr, "migstream-demo: bad value '%s'\n", optarg);
            return usage(stderr), EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage(stderr), EXIT_USAGE;
    /* Refused before the image is built; write_file() checks again. */
    if (!force && access(path, F_OK) == 0) {
        fprintf(stderr, "migstream-demo: %s exists (use --force to replace it)\n", path);
        return EXIT_USAGE;
    }

    guest_region g[3] = {
        {.r = {.id = 0, .name = "pc.ram", .has_gpa = true, .gpa = 0, .size = size_mib * MIB}},
        {.r = {.id = 1, .name = "vga.vram", .has_gpa = true, .gpa = 0xfd000000, .size = 8 * MIB}},
        {.r = {.id = 2, .name = "pc.bios", .has_gpa = true, .gpa = 0xfffc0000, .size = 256 << 10}},
    };
    int rc = 0;
    for (size_t i = 0; i < 3; i++) {
        g[i].r.page_size = PAGE;
        /* Every page is written here, before any timing, so that the timings
         * measure the library and not first-touch page faults. The volatile
         * store keeps the compiler from turning this back into a calloc. dst
         * gets a pattern, not zeros, so that a page the stream misses shows. */
        if ((g[i].src = calloc(1, g[i].r.size)))
            for (size_t off = 0; off < g[i].r.size; off += PAGE)
                ((volatile uint8_t *)g[i].src)[off] = 0;
        if ((g[i].dst = malloc(g[i].r.size)))
            memset(g[i].dst, 0xa5, g[i].r.size);
        if (!g[i].src || !g[i].dst) {
            fprintf(stderr, "migstream-demo: out of memory for %s\n", g[i].r.name);
            rc = EXIT_USAGE;
        }
    }
    uint64_t seed = 0x6d69677374726561ull;
    cbuf state[NDEV];
    for (size_t i = 0; i < NDEV; i++) {
        state[i].len = 0;
        devices[i].encode(&state[i]);
    }
    ms_totals wrote;
    report rep;
    memset(&rep, 0, sizeof rep);
    double wsecs = 0, rsecs = 0;
    if (!rc) {
        fill_ram(g[0].src, g[0].r.size / PAGE, &seed);
        fill_vram_bios(g[1].src, g[2].src, g[2].r.size, &seed);
        batch_bytes = (uint32_t)(batch_kib * 1024);
        /* --change N: the same guest with N pc.ram pages changed, spread
         * evenly, first byte flipped: what migstream-diff should report. */
        uint64_t npages = g[0].r.size / PAGE;
        for (unsigned long k = 0; k < change; k++) {
            uint64_t p = ((k * npages) / change + 7) % npages;
            g[0].src[p * PAGE] ^= 0xff;
            printf("changed    pc.ram page %llu\n", (unsigned long long)p);
        }
        rc = write_file(path, force, (int)level, g, state, &wrote, &wsecs);
    }
    if (!rc) {
        printf("wrote      %s (zstd level %lu)\n", path, level);
        rc = read_file(path, g, state, &rep, &rsecs);
    }
    if (!rc && !(rc = verify(g, &wrote, &rep))) {
        print_report(g, &rep, wsecs, rsecs);
        printf("verified   all 3 regions and %zu device states read back identical\n", rep.ndev);
    }
    for (size_t i = 0; i < 3; i++) {
        free(g[i].src);
        free(g[i].dst);
    }
    return rc;
}
