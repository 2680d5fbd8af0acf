/*
 * migstream-bench: throughput, stream size and peak memory of the writer,
 * the reader and the replay engine on guest memory images, each as a ratio
 * against a baseline measured in the same run on the same bytes (memcpy,
 * the zstd CLI, cp --sparse=always, QEMU's own stream size).
 *
 * Every measurement runs in a child process (this program re-executed with
 * a sub-command), so that wait4() gives each one's own peak RSS and no
 * measurement inherits another's heap or page cache state in its address
 * space. `run` drives everything and prints one table of medians; the
 * sub-commands are documented in usage() and can be run by hand under perf.
 *
 * Images are synthetic and deterministic (the same size and profile give the
 * same bytes on any machine), plus an optional image of a real guest saved
 * by bench/real-guest.sh. Nothing here is a test: results depend on the
 * machine and are read by people.
 */
#define _GNU_SOURCE /* syncfs */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <migstream/migstream.h>

#include "format/zero.h" /* internal: zero-speed times both routines directly */

extern char **environ;

#define MIB (1024.0 * 1024.0)
#define GEN_VERSION 1 /* part of cached image names: bump when a generator changes */

static const char *prog = "migstream-bench";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

/* ================================================================ images */

/* splitmix64: small, fast, and the same everywhere. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n, uint64_t *s)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = rnd(s);
        memcpy(p + i, &v, 8);
    }
}

/* Log and configuration text, as page cache and tmpfs hold it. */
static void fill_text(uint8_t *p, size_t n, uint64_t *s)
{
    static const char *const words[] = {
        "kernel:", "systemd[1]:", "eth0:", "link", "up", "down", "Started", "Stopping",
        "session", "user", "root", "from", "port", "ssh2", "Accepted", "publickey", "for",
        "audit:", "type=1400", "apparmor=\"ALLOWED\"", "operation=\"open\"", "profile=",
        "name=\"/usr/lib/x86_64-linux-gnu/libc.so.6\"", "pid=", "comm=", "requested_mask=\"r\"",
        "denied_mask=", "fsuid=0", "ouid=0", "cron[", "CMD", "(run-parts", "/etc/cron.hourly)",
        "dhclient", "DHCPREQUEST", "on", "to", "255.255.255.255", "DHCPACK", "bound", "renewal",
        "in", "seconds.", "EXT4-fs", "(vda1):", "mounted", "filesystem", "with", "ordered",
        "data", "mode.", "Quota", "mode:", "none.", "[Unit]", "Description=", "After=network",
        "ExecStart=/usr/sbin/", "Restart=on-failure", "WantedBy=multi-user.target", "#", "=",
    };
    const size_t nw = sizeof words / sizeof *words;
    size_t i = 0;
    while (i < n) {
        char line[256];
        uint64_t r = rnd(s);
        int k = snprintf(line, sizeof line, "Jan %2u %02u:%02u:%02u host ", (unsigned)(r % 28 + 1),
                         (unsigned)(r >> 8) % 24, (unsigned)(r >> 16) % 60,
                         (unsigned)(r >> 24) % 60);
        unsigned nwords = 4 + (unsigned)(rnd(s) % 9);
        for (unsigned w = 0; w < nwords && k < 200; w++) {
            uint64_t x = rnd(s);
            if (x % 7 == 0)
                k += snprintf(line + k, sizeof line - (size_t)k, "%u ", (unsigned)(x >> 32) % 65536);
            else
                k += snprintf(line + k, sizeof line - (size_t)k, "%s ", words[(x >> 8) % nw]);
        }
        line[k - 1] = '\n';
        size_t take = (size_t)k < n - i ? (size_t)k : n - i;
        memcpy(p + i, line, take);
        i += take;
    }
}

/* x86-64 machine code: common instruction shapes with varying registers,
 * displacements and call targets, functions padded with int3. */
static void fill_code(uint8_t *p, size_t n, uint64_t *s)
{
    static const struct {
        uint8_t len, imm; /* bytes, of which the last `imm` vary */
        uint8_t b[8];
    } ins[] = {
        {1, 0, {0x55}},                         /* push rbp */
        {3, 0, {0x48, 0x89, 0xe5}},             /* mov rbp, rsp */
        {4, 1, {0x48, 0x83, 0xec, 0x20}},       /* sub rsp, imm8 */
        {4, 1, {0x48, 0x8b, 0x45, 0xf8}},       /* mov rax, [rbp-8] */
        {4, 1, {0x48, 0x89, 0x7d, 0xe8}},       /* mov [rbp-24], rdi */
        {3, 1, {0x8b, 0x45, 0xfc}},             /* mov eax, [rbp-4] */
        {5, 4, {0xe8, 0, 0, 0, 0}},             /* call rel32 */
        {5, 4, {0xe9, 0, 0, 0, 0}},             /* jmp rel32 */
        {2, 1, {0x74, 0x10}},                   /* je rel8 */
        {2, 1, {0x75, 0x08}},                   /* jne rel8 */
        {3, 0, {0x48, 0x85, 0xc0}},             /* test rax, rax */
        {2, 0, {0x31, 0xc0}},                   /* xor eax, eax */
        {5, 4, {0xb8, 0, 0, 0, 0}},             /* mov eax, imm32 */
        {7, 4, {0x48, 0x8d, 0x05, 0, 0, 0, 0}}, /* lea rax, [rip+rel32] */
        {7, 4, {0x48, 0x8b, 0x05, 0, 0, 0, 0}}, /* mov rax, [rip+rel32] */
        {3, 0, {0x4c, 0x89, 0xe7}},             /* mov rdi, r12 */
        {3, 0, {0x48, 0x89, 0xc7}},             /* mov rdi, rax */
        {2, 0, {0x41, 0x54}},                   /* push r12 */
        {2, 0, {0x41, 0x5c}},                   /* pop r12 */
        {1, 0, {0x5d}},                         /* pop rbp */
        {1, 0, {0xc3}},                         /* ret */
    };
    const size_t ni = sizeof ins / sizeof *ins;
    size_t i = 0;
    while (i < n) {
        uint64_t r = rnd(s);
        if (r % 23 == 0) { /* end of a function: ret, then int3 up to 16 bytes */
            p[i++] = 0xc3;
            while (i < n && i % 16)
                p[i++] = 0xcc;
            continue;
        }
        unsigned k = (unsigned)((r >> 8) % ni);
        uint8_t b[8];
        memcpy(b, ins[k].b, 8);
        for (unsigned j = 0; j < ins[k].imm; j++)
            b[ins[k].len - ins[k].imm + j] = (uint8_t)(r >> (24 + 8 * j));
        for (unsigned j = 0; j < ins[k].len && i < n; j++)
            p[i++] = b[j];
    }
}

/* Kernel and heap objects: pointers that share their high bits, small
 * counters and flags, some zero words. */
static void fill_pointers(uint8_t *p, size_t n, uint64_t *s)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t r = rnd(s), v;
        switch (r % 8) {
        case 0: case 1: case 2:
            v = 0xffff888000000000u | ((r >> 8) & 0x3fffffff8u);
            break;
        case 3:
            v = (r >> 20) % 512;
            break;
        case 4: case 5:
            v = 0;
            break;
        default:
            v = 0xffffffff81000000u | ((r >> 12) & 0xfffff0u);
        }
        memcpy(p + i, &v, 8);
    }
}

/* Database pages: 128-byte rows of an ascending key, a timestamp, a random
 * 16-byte id, a short text field and random payload. */
static void fill_rows(uint8_t *p, size_t n, uint64_t *s, uint64_t *key)
{
    static const char *const status[] = {"shipped", "pending", "cancelled", "delivered"};
    for (size_t i = 0; i + 128 <= n; i += 128) {
        uint64_t k = (*key)++, ts = 1700000000000u + k * 37, r = rnd(s);
        memcpy(p + i, &k, 8);
        memcpy(p + i + 8, &ts, 8);
        fill_random(p + i + 16, 16, s);
        char txt[32];
        memset(txt, 0, sizeof txt);
        snprintf(txt, sizeof txt, "%s/%u", status[r % 4], (unsigned)(r >> 32) % 1000);
        memcpy(p + i + 32, txt, 32);
        fill_random(p + i + 64, 64, s);
    }
}

enum page_class { C_ZERO, C_FILL, C_TEXT, C_CODE, C_PTR, C_RANDOM, C_ROWS, C_CLASSES };

typedef struct profile {
    const char *name;
    const char *about;
    uint32_t page_size;           /* region page size */
    unsigned weight[C_CLASSES];   /* per 32 KiB chunk, out of 1000 */
    unsigned huge_zero;           /* 2 MiB pages left all zero, out of 1000 */
} profile;

static const profile profiles[] = {
    {"zero", "all zero", 4096, {1000, 0, 0, 0, 0, 0, 0}, 0},
    {"idle-linux", "70% zero, 4% 0xcc fill, text, code, pointers, 5% random", 4096,
     {700, 40, 80, 80, 50, 50, 0}, 0},
    {"busy-db", "80% random, 15% table rows, 5% zero", 4096, {50, 0, 0, 0, 0, 800, 150}, 0},
    {"huge-2m", "2 MiB pages: 60% untouched (zero), the rest as idle-linux", 2u << 20,
     {700, 40, 80, 80, 50, 50, 0}, 600},
};
#define NPROFILES (sizeof profiles / sizeof *profiles)

static const profile *find_profile(const char *name)
{
    for (size_t i = 0; i < NPROFILES; i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

static void fill_page(uint8_t *p, size_t n, enum page_class c, uint64_t *s, uint64_t *key)
{
    switch (c) {
    case C_ZERO: memset(p, 0, n); break;
    case C_FILL: memset(p, 0xcc, n); break;
    case C_TEXT: fill_text(p, n, s); break;
    case C_CODE: fill_code(p, n, s); break;
    case C_PTR: fill_pointers(p, n, s); break;
    case C_RANDOM: fill_random(p, n, s); break;
    case C_ROWS: fill_rows(p, n, s, key); break;
    default: break;
    }
}

static enum page_class pick(const profile *pr, uint64_t *s)
{
    unsigned r = (unsigned)(rnd(s) % 1000), acc = 0;
    for (int c = 0; c < C_CLASSES; c++) {
        acc += pr->weight[c];
        if (r < acc)
            return (enum page_class)c;
    }
    return C_ZERO;
}

/* Writes the image of @pr, @bytes long, to @path (atomically, via a
 * temporary name). Chunks of 8 pages share a class, with one page in 8
 * of another, as memory has locality but is not uniform. */
static void generate(const profile *pr, uint64_t bytes, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("cannot create %s: %s", tmp, strerror(errno));
    uint64_t seed = 0x6d6967737472656du ^ (uint64_t)(pr - profiles), key = 1;
    const size_t chunk = 32768, huge = 2u << 20;
    uint8_t *buf = xmalloc(huge);
    for (uint64_t off = 0; off < bytes; off += huge) {
        size_t n = bytes - off < huge ? (size_t)(bytes - off) : huge;
        bool untouched = pr->huge_zero && rnd(&seed) % 1000 < pr->huge_zero;
        for (size_t c = 0; c < n; c += chunk) {
            enum page_class cls = untouched ? C_ZERO : pick(pr, &seed);
            for (size_t pg = c; pg < c + chunk && pg < n; pg += 4096) {
                enum page_class pc = cls;
                if (!untouched && rnd(&seed) % 8 == 0)
                    pc = pick(pr, &seed);
                fill_page(buf + pg, 4096, pc, &seed, &key);
            }
        }
        for (size_t done = 0; done < n;) {
            ssize_t k = write(fd, buf + done, n - done);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                die("cannot write %s: %s", tmp, strerror(errno));
            done += (size_t)k;
        }
    }
    free(buf);
    if (close(fd) != 0 || rename(tmp, path) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

/* Reads a whole file into anonymous memory, as guest RAM would be. */
static uint8_t *load(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        die("cannot open %s: %s", path, strerror(errno));
    size_t n = (size_t)st.st_size;
    uint8_t *p = xmalloc(n);
    for (size_t done = 0; done < n;) {
        ssize_t k = read(fd, p + done, n - done > (1u << 30) ? (1u << 30) : n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            die("cannot read %s: %s", path, k < 0 ? strerror(errno) : "short file");
        done += (size_t)k;
    }
    close(fd);
    /* The first access from user space to a page the kernel filled costs
     * about 2.5 us per 4 KiB page on some VMs (shadow paging), many times
     * the cost of reading it: pay it here, not in the measurement, as a
     * VMM's guest memory is mapped long before it migrates. */
    for (size_t i = 0; i < n; i += 4096)
        (void)*(volatile uint8_t *)(p + i);
    *size = n;
    return p;
}

/* ======================================================== child commands */

/* Each prints one line "seconds bytes" on stdout. */

static int sink_count(void *ctx, const struct iovec *iov, int iovcnt)
{
    uint64_t *n = ctx;
    for (int i = 0; i < iovcnt; i++)
        *n += iov[i].iov_len;
    return 0;
}

/* CPU time of @clock (CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID), s. */
static double cpu_now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* encode IMAGE PAGE_SIZE LEVEL THREADS CALL_BYTES [OUT]: the writer over the
 * image in memory, to a counting sink (or to OUT through the fd writer, to
 * make streams for decode and replay). CALL_BYTES 0: one ms_writer_pages()
 * for the whole image; else one call per CALL_BYTES, as a VMM walking a
 * dirty bitmap would make. */
static int cmd_encode(int argc, char **argv)
{
    if (argc < 6)
        die("encode IMAGE PAGE_SIZE LEVEL THREADS CALL_BYTES [OUT]");
    size_t size;
    uint8_t *img = load(argv[1], &size);
    uint32_t ps = (uint32_t)strtoul(argv[2], NULL, 0);
    int level = atoi(argv[3]), threads = atoi(argv[4]);
    size_t call = (size_t)strtoull(argv[5], NULL, 0);
    const char *out = argc > 6 ? argv[6] : NULL;
    if (ps == 0 || size % ps)
        die("image size %zu is not a multiple of the page size %u", size, ps);
    if (call == 0 || call > size)
        call = size;
    call -= call % ps;
    if (call == 0)
        call = ps;

    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "migstream-bench";
    o.compress_level = level;
    /* MIGSTREAM_BENCH_FEATURES: MS_FEATURE_... bits for the writer (e.g. 2,
     * FILL), for experiments; the table uses the default, format 1.0. */
    const char *feat = getenv("MIGSTREAM_BENCH_FEATURES");
    if (feat)
        o.features = strtoull(feat, NULL, 0);
    /* MIGSTREAM_BENCH_BATCH: batch_bytes, for experiments on how much page
     * data one compressed record should hold. */
    const char *batch = getenv("MIGSTREAM_BENCH_BATCH");
    if (batch)
        o.batch_bytes = (uint32_t)strtoul(batch, NULL, 0);
    /* MIGSTREAM_BENCH_STABLE=1: the image holds still, so DATA pages may go
     * out without the writer's copy (the "zero-copy" row). */
    const char *stable = getenv("MIGSTREAM_BENCH_STABLE");
    o.stable_memory = stable && strcmp(stable, "1") == 0;
    o.threads = threads;
    uint64_t counted = 0;
    int fd = -1;
    if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
        die("cannot create %s: %s", out, strerror(errno));

    double t0 = now(), c0 = cpu_now(CLOCK_THREAD_CPUTIME_ID), p0 = cpu_now(CLOCK_PROCESS_CPUTIME_ID);
    ms_writer *w = fd >= 0 ? ms_writer_new_fd(&o, fd) : ms_writer_new(&o, sink_count, &counted);
    if (!w || ms_writer_status(w))
        die("writer: %s", w ? ms_writer_errmsg(w) : "out of memory");
    ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = size,
                   .page_size = ps};
    int rc = ms_writer_add_region(w, &r);
    for (size_t off = 0; rc == 0 && off < size; off += call) {
        size_t n = size - off < call ? size - off : call;
        rc = ms_writer_pages(w, 0, off / ps, n / ps, img + off);
    }
    ms_totals t;
    if (rc == 0)
        rc = ms_writer_finish(w, &t);
    double t1 = now();
    if (rc)
        die("writer: %s", ms_writer_errmsg(w));
    /* MIGSTREAM_BENCH_CPU=1: the CPU time of the calling thread and of
     * every other (the workers), on stderr: what a wall-clock ratio cannot
     * show on a machine other work keeps busy. */
    const char *cpu = getenv("MIGSTREAM_BENCH_CPU");
    if (cpu && strcmp(cpu, "1") == 0) {
        double c = cpu_now(CLOCK_THREAD_CPUTIME_ID) - c0;
        double all = cpu_now(CLOCK_PROCESS_CPUTIME_ID) - p0;
        fprintf(stderr, "cpu calling %.4f workers %.4f\n", c, all - c);
    }
    uint64_t bytes = ms_writer_bytes_written(w);
    ms_writer_free(w);
    if (fd >= 0 && close(fd) != 0)
        die("cannot write %s: %s", out, strerror(errno));
    printf("%.9f %" PRIu64 "\n", t1 - t0, bytes);
    free(img);
    return 0;
}

/* memcpy IMAGE: copies the image in memory to a buffer already faulted in. */
static int cmd_memcpy(int argc, char **argv)
{
    if (argc < 2)
        die("memcpy IMAGE");
    size_t size;
    uint8_t *img = load(argv[1], &size);
    uint8_t *dst = xmalloc(size);
    memset(dst, 1, size);
    /* Without this the compiler drops the memset as a dead store, and the
     * copy would pay the page faults. */
    __asm__ volatile("" : : "r"(dst) : "memory");
    double t0 = now();
    memcpy(dst, img, size);
    double t1 = now();
    /* Keeps the copy from being optimized away. */
    volatile uint8_t sink = dst[size / 2];
    (void)sink;
    printf("%.9f %zu\n", t1 - t0, size);
    free(dst);
    free(img);
    return 0;
}

/* decode STREAM: the reader over the stream in memory, reading one word of
 * every cache line of page data (the checksum has read all of it). */
static int cmd_decode(int argc, char **argv)
{
    if (argc < 2)
        die("decode STREAM");
    size_t size;
    uint8_t *s = load(argv[1], &size);
    uint64_t fold = 0, pages_bytes = 0;
    double t0 = now();
    ms_reader *r = ms_reader_new_memory(NULL, s, size);
    const ms_record *rec;
    int rc;
    if (!r)
        die("out of memory");
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->type != MS_REC_PAGES)
            continue;
        const uint8_t *d = rec->pages.data;
        for (size_t i = 0; i < rec->pages.data_size; i += 64) {
            uint64_t v;
            memcpy(&v, d + i, 8);
            fold ^= v;
        }
        for (size_t i = 0; i < rec->pages.extent_count; i++)
            pages_bytes += (uint64_t)rec->pages.extents[i].count * rec->pages.region->page_size;
    }
    double t1 = now();
    if (rc < 0)
        die("%s: %s", argv[1], ms_reader_errmsg(r));
    ms_reader_free(r);
    printf("%.9f %" PRIu64 " %" PRIx64 "\n", t1 - t0, pages_bytes, fold);
    free(s);
    return 0;
}

typedef struct replay_ctx {
    const char *path;
    int fd;
    uint8_t *fill; /* one page of a FILL word */
    size_t fill_cap;
} replay_ctx;

static int on_region(void *c, const ms_region *reg)
{
    replay_ctx *x = c;
    if (x->fd >= 0)
        die("replay: one region expected");
    x->fd = open(x->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (x->fd < 0 || ftruncate(x->fd, (off_t)reg->size) != 0)
        die("cannot create %s: %s", x->path, strerror(errno));
    return 0;
}

/* Bytes per pwrite in replay: 256 KiB, as migstream-replay writes
 * (libmigstream/state/replay_dir.c); MIGSTREAM_BENCH_WRITE_CHUNK overrides, 0 = whole
 * runs. */
static size_t write_chunk = 256u << 10;

static void pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = pwrite(fd, p, write_chunk && n > write_chunk ? write_chunk : n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            die("replay: write failed: %s", k < 0 ? strerror(errno) : "no space");
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
}

/* The file starts as one hole and every page is sent once, so ZERO pages
 * need nothing; DATA runs are written in write_chunk pieces. */
static int on_extent(void *c, const ms_region *reg, const ms_extent *e, const uint8_t *data)
{
    replay_ctx *x = c;
    const size_t ps = reg->page_size;
    if (e->state == MS_PAGE_DATA) {
        pwrite_all(x->fd, data, (size_t)e->count * ps, e->first * ps);
    } else if (e->state == MS_PAGE_FILL) {
        if (x->fill_cap < ps) {
            free(x->fill);
            x->fill = xmalloc(ps);
            x->fill_cap = ps;
        }
        for (size_t i = 0; i < ps; i += 8)
            for (int b = 0; b < 8; b++)
                x->fill[i + (size_t)b] = (uint8_t)(e->arg >> (8 * b));
        for (uint32_t i = 0; i < e->count; i++)
            pwrite_all(x->fd, x->fill, ps, (e->first + i) * ps);
    }
    return 0;
}

/* replay STREAM OUT: ms_replay() reading the stream file with the fd reader,
 * writing the region into a sparse file with pwrite (no fsync, as cp). */
static int cmd_replay(int argc, char **argv)
{
    if (argc < 3)
        die("replay STREAM OUT");
    unlink(argv[2]);
    replay_ctx x = {.path = argv[2], .fd = -1};
    const char *chunk = getenv("MIGSTREAM_BENCH_WRITE_CHUNK");
    if (chunk)
        write_chunk = (size_t)strtoull(chunk, NULL, 0);
    double t0 = now();
    int in = open(argv[1], O_RDONLY);
    if (in < 0)
        die("cannot open %s: %s", argv[1], strerror(errno));
    ms_reader *r = ms_reader_new_fd(NULL, in);
    if (!r)
        die("out of memory");
    ms_replay_callbacks cb = {.struct_size = sizeof cb, .region = on_region,
                              .extent = on_extent};
    int rc = ms_replay(r, &cb, &x);
    if (rc)
        die("%s: %s", argv[1], ms_reader_errmsg(r));
    if (x.fd < 0 || close(x.fd) != 0)
        die("cannot write %s", argv[2]);
    double t1 = now();
    ms_reader_free(r);
    close(in);
    free(x.fill);
    printf("%.9f 0\n", t1 - t0);
    return 0;
}

/* zero-speed [MIB]: uniform-page detection alone, portable and AVX2 routine,
 * over MIB of zero pages (from memory), a 64 KiB working set (from cache),
 * and random data pages (rejected after their first bytes). Best of 3. */
static int cmd_zero_speed(int argc, char **argv)
{
    size_t n = (argc > 1 ? (size_t)strtoull(argv[1], NULL, 0) : 1024) << 20;
    uint8_t *z = xmalloc(n), *d = xmalloc(n);
    uint64_t seed = 1;
    memset(z, 0, n);
    fill_random(d, n, &seed);
    __asm__ volatile("" : : "r"(z), "r"(d) : "memory");
    static const struct {
        const char *name;
        bool (*fn)(const void *, size_t, uint64_t *);
    } v[] = {{"portable", msi_page_uniform_portable}, {"avx2", msi_page_uniform_avx2}};
    printf("%-9s %14s %14s %16s\n", "routine", "zero, memory", "zero, cache", "data pages");
    for (size_t i = 0; i < 2; i++) {
        if (i == 1 && !msi_cpu_has_avx2()) {
            printf("%-9s (this CPU has no AVX2)\n", v[i].name);
            continue;
        }
        double best[3] = {1e9, 1e9, 1e9};
        size_t hits = 0;
        for (int rep = 0; rep < 3; rep++) {
            uint64_t w;
            double t0 = now();
            for (size_t off = 0; off < n; off += 4096)
                hits += v[i].fn(z + off, 4096, &w);
            double t1 = now();
            for (size_t k = 0; k < n / 65536; k++)
                for (size_t off = 0; off < 65536; off += 4096)
                    hits += v[i].fn(z + off, 4096, &w);
            double t2 = now();
            for (size_t off = 0; off < n; off += 4096)
                hits += v[i].fn(d + off, 4096, &w);
            double t3 = now();
            best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
            best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
            best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
        }
        printf("%-9s %9.1f GB/s %9.1f GB/s %10.1f ns/page   (%zu)\n", v[i].name,
               (double)n / best[0] / 1e9, (double)n / best[1] / 1e9,
               best[2] / (double)(n / 4096) * 1e9, hits);
    }
    free(z);
    free(d);
    return 0;
}

/* ============================================================== channels */

/* A migration over N channels (FORMAT.md section 2.1), all in memory: N
 * sender threads, each with its own writer making part k of N (a plain
 * stream for one channel) of its range of the image, into a buffer of its
 * own, as a socket would take the bytes; then N receiver threads, each
 * reading its part with its own reader and applying it into guest memory
 * (DATA copied, FILL written; ZERO pages left as the fresh, zeroed memory
 * has them), with a barrier at each ROUND and at END as a receiver of
 * parts must have. The aggregate throughput is image bytes over the wall
 * time of all the threads. */

#define MAX_BENCH_CHANNELS 16

typedef struct bench_channel {
    int k, n;
    const uint8_t *img;
    uint8_t *dst;
    uint64_t img_bytes;
    uint32_t ps;
    uint64_t first, count; /* its pages */
    int level;
    const uint8_t *id; /* the migration id */
    uint8_t *out;      /* the part's bytes, as its connection took them */
    size_t len, cap;
    pthread_barrier_t *barrier;
    char err[300];
} bench_channel;

static int bench_sink(void *ctx, const struct iovec *iov, int iovcnt)
{
    bench_channel *c = ctx;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > c->cap - c->len)
            return -ENOSPC;
        memcpy(c->out + c->len, iov[i].iov_base, iov[i].iov_len);
        c->len += iov[i].iov_len;
    }
    return 0;
}

static void *bench_send(void *arg)
{
    bench_channel *c = arg;
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "migstream-bench";
    o.compress_level = c->level;
    ms_part part = {.index = (uint32_t)c->k, .count = (uint32_t)c->n};
    memcpy(part.migration_id, c->id, MS_MIGRATION_ID_SIZE);
    o.part = c->n > 1 ? &part : NULL;
    ms_writer *w = ms_writer_new(&o, bench_sink, c);
    ms_region r = {.id = 0,
                   .name = "ram",
                   .has_gpa = true,
                   .gpa = 0,
                   .size = c->img_bytes,
                   .page_size = c->ps};
    int rc = ms_writer_status(w);
    if (!rc)
        rc = ms_writer_add_region(w, &r);
    if (!rc)
        rc = ms_writer_round(w, &(ms_round){.number = 0, .final = true});
    if (!rc)
        rc = ms_writer_pages(w, 0, c->first, c->count, c->img + c->first * c->ps);
    if (!rc)
        rc = ms_writer_finish(w, NULL);
    if (rc)
        snprintf(c->err, sizeof c->err, "channel %d: %s", c->k, ms_writer_errmsg(w));
    ms_writer_free(w);
    return NULL;
}

static void *bench_receive(void *arg)
{
    bench_channel *c = arg;
    ms_reader *r = ms_reader_new_memory(NULL, c->out, c->len);
    const ms_record *rec;
    int rc;
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        if (rec->type == MS_REC_ROUND || rec->type == MS_REC_END) {
            if (c->barrier) /* no part goes on before every part is there */
                pthread_barrier_wait(c->barrier);
            continue;
        }
        if (rec->type != MS_REC_PAGES)
            continue;
        const ms_pages *pg = &rec->pages;
        const uint8_t *data = pg->data;
        const size_t ps = pg->region->page_size;
        for (size_t i = 0; i < pg->extent_count; i++) {
            const ms_extent *x = &pg->extents[i];
            uint8_t *to = c->dst + x->first * ps;
            size_t len = (size_t)x->count * ps;
            if (x->state == MS_PAGE_DATA) {
                memcpy(to, data, len);
                data += len;
            } else if (x->state == MS_PAGE_FILL) {
                for (size_t b = 0; b < len; b += 8)
                    memcpy(to + b, &x->arg, 8);
            }
        }
    }
    if (rc)
        snprintf(c->err, sizeof c->err, "channel %d: %s", c->k, ms_reader_errmsg(r));
    ms_reader_free(r);
    return NULL;
}

/* CPU seconds this process has used, every thread's, user and system. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Runs @fn on every channel, one thread each (the calling thread for one
 * channel); wall time in seconds, CPU seconds of all the threads in *cpu. */
static double bench_threads(bench_channel *ch, int n, void *(*fn)(void *), double *cpu)
{
    pthread_t t[MAX_BENCH_CHANNELS];
    double c0 = cpu_seconds();
    double t0 = now();
    if (n == 1) {
        fn(&ch[0]);
    } else {
        for (int k = 0; k < n; k++)
            if (pthread_create(&t[k], NULL, fn, &ch[k]))
                die("cannot start a thread");
        for (int k = 0; k < n; k++)
            pthread_join(t[k], NULL);
    }
    double t1 = now();
    *cpu = cpu_seconds() - c0;
    for (int k = 0; k < n; k++)
        if (ch[k].err[0])
            die("%s", ch[k].err);
    return t1 - t0;
}

/* channels IMAGE PAGE_SIZE LEVEL N: prints "send_seconds stream_bytes
 * receive_seconds send_cpu_seconds receive_cpu_seconds" for the image sent
 * over N channels and received back, and checks that the guest memory
 * received is the image. */
static int cmd_channels(int argc, char **argv)
{
    if (argc < 5)
        die("channels IMAGE PAGE_SIZE LEVEL N");
    size_t size;
    uint8_t *img = load(argv[1], &size);
    uint32_t ps = (uint32_t)strtoul(argv[2], NULL, 0);
    int level = atoi(argv[3]), n = atoi(argv[4]);
    if (ps == 0 || size % ps)
        die("image size %zu is not a multiple of the page size %u", size, ps);
    if (n < 1 || n > MAX_BENCH_CHANNELS)
        die("N must be 1 to %d", MAX_BENCH_CHANNELS);
    uint8_t id[MS_MIGRATION_ID_SIZE] = "migstream-bench!";
    /* Guest memory on the destination, fresh (zero) and already mapped, as
     * a VMM's is before the migration starts. */
    uint8_t *dst = xmalloc(size);
    memset(dst, 0, size);
    __asm__ volatile("" : : "r"(dst) : "memory");
    pthread_barrier_t barrier;
    if (n > 1 && pthread_barrier_init(&barrier, NULL, (unsigned)n))
        die("cannot set up a barrier");
    static bench_channel ch[MAX_BENCH_CHANNELS];
    const uint64_t pages = size / ps;
    for (int k = 0; k < n; k++) {
        bench_channel *c = &ch[k];
        *c = (bench_channel){.k = k,
                             .n = n,
                             .img = img,
                             .dst = dst,
                             .img_bytes = size,
                             .ps = ps,
                             .level = level,
                             .id = id,
                             .barrier = n > 1 ? &barrier : NULL};
        c->first = pages * (uint64_t)k / (uint64_t)n;
        c->count = pages * (uint64_t)(k + 1) / (uint64_t)n - c->first;
        /* Room for the part raw, with its headers; mapped before the clock
         * starts, as a socket's buffers are. */
        c->cap = (size_t)(c->count * ps + c->count / 8 * 64 + (4u << 20));
        c->out = xmalloc(c->cap);
        memset(c->out, 0, c->cap);
    }
    double send_cpu, receive_cpu;
    double send = bench_threads(ch, n, bench_send, &send_cpu);
    uint64_t bytes = 0;
    for (int k = 0; k < n; k++)
        bytes += ch[k].len;
    double receive = bench_threads(ch, n, bench_receive, &receive_cpu);
    if (memcmp(dst, img, size) != 0)
        die("the memory received is not the image sent");
    printf("%.9f %" PRIu64 " %.9f %.6f %.6f\n", send, bytes, receive, send_cpu, receive_cpu);
    for (int k = 0; k < n; k++)
        free(ch[k].out);
    if (n > 1)
        pthread_barrier_destroy(&barrier);
    free(dst);
    free(img);
    return 0;
}

static int cmd_gen(int argc, char **argv)
{
    if (argc < 4)
        die("gen PROFILE MIB FILE");
    const profile *pr = find_profile(argv[1]);
    if (!pr)
        die("unknown profile %s", argv[1]);
    generate(pr, strtoull(argv[2], NULL, 0) << 20, argv[3]);
    return 0;
}

/* ================================================================= driver */

typedef struct result {
    double secs;    /* wall time of the measured section */
    uint64_t bytes; /* the child's second field */
    double rss_mib; /* peak RSS */
} result;

/* The last line a child reported (spawn()), for results of more than two
 * numbers. */
static char spawn_line[256];

/* Runs argv with stdout to @out_path (or a pipe we parse when NULL), waits
 * with wait4(); the timing is the child's own when it reports one, else the
 * wall time around the child. */
static result spawn(char *const argv[], const char *out_path, bool reports)
{
    int pipefd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (reports) {
        if (pipe(pipefd) != 0)
            die("pipe: %s", strerror(errno));
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, pipefd[0]);
        posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    } else {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path ? out_path : "/dev/null",
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    pid_t pid;
    double t0 = now();
    int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        die("cannot run %s: %s", argv[0], strerror(err));
    char line[256] = "";
    if (reports) {
        close(pipefd[1]);
        size_t got = 0;
        ssize_t k;
        while ((k = read(pipefd[0], line + got, sizeof line - 1 - got)) > 0)
            got += (size_t)k;
        line[got] = 0;
        close(pipefd[0]);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR)
            die("wait4: %s", strerror(errno));
    double t1 = now();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: command failed:", prog);
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        fputc('\n', stderr);
        exit(2);
    }
    result r = {t1 - t0, 0, (double)ru.ru_maxrss / 1024.0};
    snprintf(spawn_line, sizeof spawn_line, "%s", line);
    if (reports && sscanf(line, "%lf %" SCNu64, &r.secs, &r.bytes) != 2)
        die("%s printed no result", argv[1]);
    return r;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        die("cannot stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

static void settle_disk(const char *dir)
{
    /* Lets writeback of one run's output finish before the next run. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAXRUNS 64

/* One image and everything measured on it. Throughputs are image bytes per
 * second (for decode and replay too), ratios are per run, then medians. */
enum meas {
    M_MEMCPY, M_ZSTD1, M_ZSTD3, M_CP, M_ENC0, M_ENC1, M_ENC3, M_ENC0_SMALL, M_ENC0_T2,
    M_ENC1_T2, M_ENC3_T2, M_DEC0, M_DEC1, M_REPLAY0, M_REPLAY1, M_ENC0_STABLE,
    M_ENC1_D, M_ENC3_D, M_ENC1_D_T2, M_ENC0_D, M_COUNT
};

/* The features of the "+dedup" rows (format 1.3): DUPLICATE pages with the
 * default table (16384 pages). "+window" adds zstd-window records. */
#define DEDUP_FEATURES "32"
#define DEDUP_WINDOW_FEATURES "96"

typedef struct image_run {
    const char *label;
    char path[4096];
    uint32_t page_size;
    uint64_t bytes;
    uint64_t size_raw, size_z1, size_z3, size_cli1, size_cli3, size_qemu, size_fill;
    uint64_t size_z1d, size_z3d, size_z1dw, size_z3dw, size_z3w, size_rawd; /* format 1.3 */
    double secs[M_COUNT][MAXRUNS];
    double rss[M_COUNT][MAXRUNS];
    bool done[M_COUNT];
} image_run;

typedef struct config {
    const char *self;
    const char *dir;
    int runs;
    size_t small_call;   /* bytes per ms_writer_pages() call in the "small calls" row */
} config;

static void measure(const config *cf, image_run *im, int run)
{
    char ps[32], call[32], smallcall[32], s0[4200], s1[4200], out[4200];
    snprintf(ps, sizeof ps, "%" PRIu32, im->page_size);
    snprintf(call, sizeof call, "0");
    snprintf(smallcall, sizeof smallcall, "%zu", cf->small_call);
    snprintf(s0, sizeof s0, "%s.l0.mig", im->path);
    snprintf(s1, sizeof s1, "%s.l1.mig", im->path);
    snprintf(out, sizeof out, "%s/replay-out.img", cf->dir);
    char *self = (char *)cf->self, *img = im->path;
    struct {
        enum meas m;
        char *argv[10];
        bool reports, disk;
        const char *features; /* MIGSTREAM_BENCH_FEATURES, or NULL */
    } plan[] = {
        {M_MEMCPY, {self, "memcpy", img, NULL}, true, false, NULL},
        {M_ENC0, {self, "encode", img, ps, "0", "1", call, NULL}, true, false, NULL},
        {M_ENC1, {self, "encode", img, ps, "1", "1", call, NULL}, true, false, NULL},
        {M_ENC3, {self, "encode", img, ps, "3", "1", call, NULL}, true, false, NULL},
        {M_ENC0_STABLE, {self, "encode", img, ps, "0", "1", call, NULL}, true, false, NULL},
        {M_ENC0_SMALL, {self, "encode", img, ps, "0", "1", smallcall, NULL}, true, false, NULL},
        {M_ENC0_T2, {self, "encode", img, ps, "0", "2", call, NULL}, true, false, NULL},
        {M_ENC1_T2, {self, "encode", img, ps, "1", "2", call, NULL}, true, false, NULL},
        {M_ENC3_T2, {self, "encode", img, ps, "3", "2", call, NULL}, true, false, NULL},
        {M_ZSTD1, {"zstd", "-1", "-T1", "-q", "-c", img, NULL}, false, false, NULL},
        {M_ZSTD3, {"zstd", "-3", "-T1", "-q", "-c", img, NULL}, false, false, NULL},
        {M_DEC0, {self, "decode", s0, NULL}, true, false, NULL},
        {M_DEC1, {self, "decode", s1, NULL}, true, false, NULL},
        {M_REPLAY0, {self, "replay", s0, out, NULL}, true, true, NULL},
        {M_REPLAY1, {self, "replay", s1, out, NULL}, true, true, NULL},
        {M_CP, {"cp", "--sparse=always", img, out, NULL}, false, true, NULL},
        {M_ENC0_D, {self, "encode", img, ps, "0", "1", call, NULL}, true, false, DEDUP_FEATURES},
        {M_ENC1_D, {self, "encode", img, ps, "1", "1", call, NULL}, true, false, DEDUP_FEATURES},
        {M_ENC3_D, {self, "encode", img, ps, "3", "1", call, NULL}, true, false, DEDUP_FEATURES},
        {M_ENC1_D_T2, {self, "encode", img, ps, "1", "2", call, NULL}, true, false,
         DEDUP_FEATURES},
    };
    for (size_t i = 0; i < sizeof plan / sizeof *plan; i++) {
        enum meas m = plan[i].m;
        if (m == M_ENC0_SMALL && im->page_size > cf->small_call)
            continue;
        if (plan[i].disk) {
            unlink(out);
            settle_disk(cf->dir);
        }
        if (m == M_ENC0_STABLE)
            setenv("MIGSTREAM_BENCH_STABLE", "1", 1);
        if (plan[i].features)
            setenv("MIGSTREAM_BENCH_FEATURES", plan[i].features, 1);
        result r = spawn(plan[i].argv, NULL, plan[i].reports);
        unsetenv("MIGSTREAM_BENCH_STABLE");
        unsetenv("MIGSTREAM_BENCH_FEATURES");
        im->secs[m][run] = r.secs;
        im->rss[m][run] = r.rss_mib;
        im->done[m] = true;
        if (plan[i].disk) {
            unlink(out);
            settle_disk(cf->dir);
        }
    }
}

/* Makes the streams decode and replay read, and measures sizes once (they
 * are deterministic). */
static void prepare(const config *cf, image_run *im)
{
    char ps[32], s[4200], cli[4200];
    snprintf(ps, sizeof ps, "%" PRIu32, im->page_size);
    im->bytes = file_size(im->path);
    static const int levels[] = {0, 1, 3};
    for (int i = 0; i < 3; i++) {
        snprintf(s, sizeof s, "%s.l%d.mig", im->path, levels[i]);
        char lv[8];
        snprintf(lv, sizeof lv, "%d", levels[i]);
        char *argv[] = {(char *)cf->self, "encode", im->path, ps, lv, "1", "0", s, NULL};
        spawn(argv, NULL, true);
        uint64_t n = file_size(s);
        *(i == 0 ? &im->size_raw : i == 1 ? &im->size_z1 : &im->size_z3) = n;
    }
    {
        /* The same raw stream with FILL pages (format 1.1). */
        char feat[32];
        snprintf(feat, sizeof feat, "%u", (unsigned)MS_FEATURE_FILL);
        snprintf(s, sizeof s, "%s.fill.mig", im->path);
        char *argv[] = {(char *)cf->self, "encode", im->path, ps, "0", "1", "0", s, NULL};
        setenv("MIGSTREAM_BENCH_FEATURES", feat, 1);
        spawn(argv, NULL, true);
        unsetenv("MIGSTREAM_BENCH_FEATURES");
        im->size_fill = file_size(s);
        unlink(s);
    }
    {
        /* Format 1.3: the same streams with DUPLICATE pages, and with
         * zstd-window records too (sizes only; speed is measured above). */
        static const struct {
            const char *lv, *feat;
            int which;
        } v13[] = {{"0", DEDUP_FEATURES, 0},         {"1", DEDUP_FEATURES, 1},
                   {"3", DEDUP_FEATURES, 3},         {"1", DEDUP_WINDOW_FEATURES, 11},
                   {"3", DEDUP_WINDOW_FEATURES, 13}, {"3", "64", 23}};
        for (size_t i = 0; i < sizeof v13 / sizeof *v13; i++) {
            snprintf(s, sizeof s, "%s.v13.mig", im->path);
            char *argv[] = {(char *)cf->self, "encode", im->path, ps, (char *)v13[i].lv, "1", "0",
                            s, NULL};
            setenv("MIGSTREAM_BENCH_FEATURES", v13[i].feat, 1);
            spawn(argv, NULL, true);
            unsetenv("MIGSTREAM_BENCH_FEATURES");
            uint64_t n = file_size(s);
            unlink(s);
            switch (v13[i].which) {
            case 0: im->size_rawd = n; break;
            case 1: im->size_z1d = n; break;
            case 3: im->size_z3d = n; break;
            case 11: im->size_z1dw = n; break;
            case 13: im->size_z3dw = n; break;
            default: im->size_z3w = n; break;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        snprintf(cli, sizeof cli, "%s.zst%d", im->path, i ? 3 : 1);
        char *argv[] = {"zstd", i ? "-3" : "-1", "-T1", "-q", "-c", im->path, NULL};
        spawn(argv, cli, false);
        *(i ? &im->size_cli3 : &im->size_cli1) = file_size(cli);
        unlink(cli);
    }
}

/* ------------------------------------------------------------- the table */

#define CELL 31

static void cell(const char *s)
{
    printf(" %-*s|", CELL, s);
}

static double ratio_median(image_run *im, enum meas a, enum meas b, int runs, bool speed)
{
    double v[MAXRUNS];
    for (int r = 0; r < runs; r++)
        v[r] = speed ? im->secs[b][r] / im->secs[a][r] : im->secs[a][r] / im->secs[b][r];
    return median(v, runs);
}

static double gbps(image_run *im, enum meas m, int runs)
{
    double v[MAXRUNS];
    for (int r = 0; r < runs; r++)
        v[r] = (double)im->bytes / im->secs[m][r] / 1e9;
    return median(v, runs);
}

static double rss_median(image_run *im, enum meas m, int runs)
{
    double v[MAXRUNS];
    memcpy(v, im->rss[m], sizeof(double) * (size_t)runs);
    return median(v, runs);
}

/* "met" or "missed by N%" for ratio @x against a target @t (@more: at least,
 * else at most). */
static void verdict(char *buf, size_t n, double x, double t, bool more)
{
    bool met = more ? x >= t : x <= t;
    if (met)
        snprintf(buf, n, "met");
    else
        snprintf(buf, n, "MISSED by %.1f%%", more ? (t - x) / t * 100 : (x - t) / t * 100);
}

typedef enum row_kind { R_SPEED, R_SIZE, R_RSS, R_ABS_SPEED, R_ABS_SIZE, R_NA } row_kind;

typedef struct row {
    const char *label;
    row_kind kind;
    enum meas m, base; /* speed: m vs base; rss: m */
    int size_which;    /* sizes: 0 raw/image, 1 z1/cli1, 3 z3/cli3, 9 raw/qemu,
                        * 10 fill/image, 19 fill/qemu; format 1.3: 20 raw+dedup/image,
                        * 21 z1+dedup/cli1, 23 z3+dedup/cli3, 31 and 33 the same with
                        * +window, 43 z3+window/cli3 */
    const char *target;
    double t;          /* target ratio; 0: none */
    bool more;         /* target is "at least" */
    const char *only;  /* target applies to this image only, or NULL for all */
} row;

static void print_table(const config *cf, image_run *ims, size_t nim)
{
    const int R = cf->runs;
    static const row rows[] = {
        {"baseline: memcpy GB/s", R_ABS_SPEED, M_MEMCPY, 0, 0, "", 0, 0, NULL},
        {"baseline: zstd -1 -T1 GB/s", R_ABS_SPEED, M_ZSTD1, 0, 0, "", 0, 0, NULL},
        {"baseline: zstd -3 -T1 GB/s", R_ABS_SPEED, M_ZSTD3, 0, 0, "", 0, 0, NULL},
        {"baseline: cp --sparse GB/s", R_ABS_SPEED, M_CP, 0, 0, "", 0, 0, NULL},
        {"image MiB", R_ABS_SIZE, 0, 0, 0, "", 0, 0, NULL},
        {"encode raw, 1 thr / memcpy", R_SPEED, M_ENC0, M_MEMCPY, 0, ">= 0.90x (idle-linux)", 0.9,
         true, "idle-linux"},
        {"encode raw, zero-copy / memcpy", R_SPEED, M_ENC0_STABLE, M_MEMCPY, 0, "(info)", 0, true,
         NULL},
        {"encode raw, 2 thr / memcpy", R_SPEED, M_ENC0_T2, M_MEMCPY, 0, "", 0, true, NULL},
        {"encode raw, 4K calls / memcpy", R_SPEED, M_ENC0_SMALL, M_MEMCPY, 0, "(info)", 0, true,
         NULL},
        {"encode zstd-1, 1 thr / CLI", R_SPEED, M_ENC1, M_ZSTD1, 0, ">= 1.00x", 1.0, true, NULL},
        {"encode zstd-1, 2 thr / 1 thr", R_SPEED, M_ENC1_T2, M_ENC1, 0, ">= 1.80x (data)", 1.8,
         true, NULL},
        {"size zstd-1 / CLI -1", R_SIZE, 0, 0, 1, "<= 1.00x", 1.0, false, NULL},
        {"encode zstd-3, 1 thr / CLI", R_SPEED, M_ENC3, M_ZSTD3, 0, "(info)", 0, true, NULL},
        {"encode zstd-3, 2 thr / 1 thr", R_SPEED, M_ENC3_T2, M_ENC3, 0, "(info)", 0, true, NULL},
        {"size zstd-3 / CLI -3", R_SIZE, 0, 0, 3, "(info)", 0, false, NULL},
        {"encode raw+dedup / raw", R_SPEED, M_ENC0_D, M_ENC0, 0, "(info)", 0, true, NULL},
        {"encode zstd-1+dedup / zstd-1", R_SPEED, M_ENC1_D, M_ENC1, 0, ">= 1.00x", 1.0, true,
         NULL},
        {"encode zstd-1+dedup / CLI", R_SPEED, M_ENC1_D, M_ZSTD1, 0, ">= 1.00x", 1.0, true, NULL},
        {"encode zstd-3+dedup / zstd-3", R_SPEED, M_ENC3_D, M_ENC3, 0, ">= 1.00x", 1.0, true,
         NULL},
        {"encode zstd-3+dedup / CLI", R_SPEED, M_ENC3_D, M_ZSTD3, 0, ">= 1.00x", 1.0, true, NULL},
        {"encode z1+dedup, 2 thr / 1 thr", R_SPEED, M_ENC1_D_T2, M_ENC1_D, 0, "(info)", 0, true,
         NULL},
        {"size zstd-1+dedup / CLI -1", R_SIZE, 0, 0, 21, "<= 0.90x (real guest)", 0.9, false,
         "real-guest"},
        {"size z1+dedup+window / CLI -1", R_SIZE, 0, 0, 31, "(info)", 0, false, NULL},
        {"size zstd-3+dedup / CLI -3", R_SIZE, 0, 0, 23, "<= 0.95x (real guest)", 0.95, false,
         "real-guest"},
        {"size z3+dedup+window / CLI -3", R_SIZE, 0, 0, 33, "(info)", 0, false, NULL},
        {"size zstd-3+window / CLI -3", R_SIZE, 0, 0, 43, "(info)", 0, false, NULL},
        {"size raw / image", R_SIZE, 0, 0, 0, "(info)", 0, false, NULL},
        {"size raw+dedup / image", R_SIZE, 0, 0, 20, "(info)", 0, false, NULL},
        {"size raw / QEMU stream", R_SIZE, 0, 0, 9, "< 1.00x (real guest)", 1.0, false,
         "real-guest"},
        {"size raw+FILL / image", R_SIZE, 0, 0, 10, "(info)", 0, false, NULL},
        {"size raw+FILL / QEMU stream", R_SIZE, 0, 0, 19, "< 1.00x (real guest)", 1.0, false,
         "real-guest"},
        {"decode raw / memcpy", R_SPEED, M_DEC0, M_MEMCPY, 0, "(info)", 0, true, NULL},
        {"decode zstd-1 / memcpy", R_SPEED, M_DEC1, M_MEMCPY, 0, "(info)", 0, true, NULL},
        {"replay raw / cp --sparse", R_SPEED, M_REPLAY0, M_CP, 0, ">= 1.00x", 1.0, true, NULL},
        {"replay zstd-1 / cp --sparse", R_SPEED, M_REPLAY1, M_CP, 0, "(info)", 0, true, NULL},
        {"peak RSS encode raw, MiB+", R_RSS, M_ENC0, 0, 0, "< 64 MiB over image", 64, false,
         NULL},
        {"peak RSS encode zstd-3, MiB+", R_RSS, M_ENC3, 0, 0, "< 64 MiB over image", 64, false,
         NULL},
        {"peak RSS decode zstd-1, MiB+", R_RSS, M_DEC1, 0, 0, "< 64 MiB over stream", 64,
         false, NULL},
        {"peak RSS replay zstd-1, MiB", R_RSS, M_REPLAY1, 0, 0, "< 64 MiB", 64, false, NULL},
    };
    printf("%-30s|", "measurement");
    for (size_t i = 0; i < nim; i++)
        cell(ims[i].label);
    printf(" target\n");
    printf("%s", "------------------------------|");
    for (size_t i = 0; i < nim; i++)
        for (int k = 0; k < CELL + 2; k++)
            putchar(k == CELL + 1 ? '|' : '-');
    printf("-------\n");
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
        const row *w = &rows[k];
        printf("%-30s|", w->label);
        for (size_t i = 0; i < nim; i++) {
            image_run *im = &ims[i];
            char c[64] = "", v[48] = "";
            bool applies = w->t > 0 && (!w->only || strcmp(w->only, im->label) == 0);
            double x = 0;
            switch (w->kind) {
            case R_ABS_SPEED:
                snprintf(c, sizeof c, "%.2f", gbps(im, w->m, R));
                break;
            case R_ABS_SIZE:
                snprintf(c, sizeof c, "%.0f", (double)im->bytes / MIB);
                break;
            case R_SPEED:
                if (!im->done[w->m] || !im->done[w->base]) {
                    bool two = w->m == M_ENC0_T2 || w->m == M_ENC1_T2 || w->m == M_ENC3_T2 ||
                               w->m == M_ENC1_D_T2;
                    snprintf(c, sizeof c, two ? "n/a" : "-");
                    break;
                }
                x = ratio_median(im, w->m, w->base, R, true);
                snprintf(c, sizeof c, "%.2fx %.2fGB/s", x, gbps(im, w->m, R));
                break;
            case R_SIZE: {
                uint64_t a = 0, b = 0;
                switch (w->size_which) {
                case 0: a = im->size_raw; b = im->bytes; break;
                case 1: a = im->size_z1; b = im->size_cli1; break;
                case 3: a = im->size_z3; b = im->size_cli3; break;
                case 10: a = im->size_fill; b = im->bytes; break;
                case 19: a = im->size_fill; b = im->size_qemu; break;
                case 20: a = im->size_rawd; b = im->bytes; break;
                case 21: a = im->size_z1d; b = im->size_cli1; break;
                case 23: a = im->size_z3d; b = im->size_cli3; break;
                case 31: a = im->size_z1dw; b = im->size_cli1; break;
                case 33: a = im->size_z3dw; b = im->size_cli3; break;
                case 43: a = im->size_z3w; b = im->size_cli3; break;
                default: a = im->size_raw; b = im->size_qemu; break;
                }
                if (!a || !b) {
                    snprintf(c, sizeof c, "-");
                    applies = false;
                    break;
                }
                x = (double)a / (double)b;
                snprintf(c, sizeof c, "%.3fx %.1fMiB", x, (double)a / MIB);
                break;
            }
            case R_RSS: {
                double rss = rss_median(im, w->m, R);
                if (w->m == M_ENC0 || w->m == M_ENC3)
                    rss -= (double)im->bytes / MIB;
                else if (w->m == M_DEC1)
                    rss -= (double)im->size_z1 / MIB;
                x = rss;
                snprintf(c, sizeof c, "%.1f", rss);
                break;
            }
            default:
                break;
            }
            if (applies && x > 0) {
                verdict(v, sizeof v, x, w->t, w->more);
                size_t l = strlen(c);
                snprintf(c + l, sizeof c - l, " %s", v);
            }
            cell(c);
        }
        printf(" %s\n", w->target);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s run [options]\n"
            "Measures the writer, reader and replay engine on guest memory images and\n"
            "prints one table: medians of several runs, each result as a ratio against a\n"
            "baseline measured in the same run on the same bytes.\n"
            "\n"
            "  --dir DIR          where images, streams and outputs go (default build-bench/data)\n"
            "  --size MIB         synthetic image size (default 1024)\n"
            "  --runs N           runs per measurement (default 5, at most %d)\n"
            "  --profiles LIST    comma-separated, of: zero,idle-linux,busy-db,huge-2m (default all)\n"
            "  --real-guest IMAGE a guest memory image (pmemsave) to measure as well\n"
            "  --qemu-stream FILE QEMU's migration stream of the same guest (size compared)\n"
            "  --small-call BYTES bytes per ms_writer_pages() call in the \"4K calls\" row (4096)\n"
            "\n"
            "Sub-commands run by `run` (one measurement each, printing \"seconds bytes\"):\n"
            "  gen PROFILE MIB FILE\n"
            "  encode IMAGE PAGE_SIZE LEVEL THREADS CALL_BYTES [OUT]\n"
            "  memcpy IMAGE | decode STREAM | replay STREAM OUT\n"
            "  zero-speed [MIB]   uniform-page detection alone, portable and AVX2\n"
            "  channels IMAGE PAGE_SIZE LEVEL N  the image sent and received over N channels\n"
            "                     (threads, in memory): \"send_s bytes receive_s send_cpu_s\n"
            "                     receive_cpu_s\"\n"
            "\n"
            "%s channels-run [--dir DIR] [--size MIB] [--runs N] [--profiles LIST]\n"
            "                     [--channels N]\n"
            "  the channels table: aggregate send and receive throughput over 1 and N\n"
            "  channels (default 2), raw and zstd-1, profiles idle-linux,busy-db by default\n"
            "Environment, for experiments by hand (the table sets only MIGSTREAM_BENCH_STABLE):\n"
            "  MIGSTREAM_BENCH_FEATURES=BITS     writer features for encode (2: FILL)\n"
            "  MIGSTREAM_BENCH_WRITE_CHUNK=BYTES largest pwrite in replay (default 262144; 0: whole runs)\n"
            "  MIGSTREAM_BENCH_BATCH=BYTES       writer batch_bytes for encode\n"
            "  MIGSTREAM_BENCH_STABLE=1          encode with stable_memory (zero-copy)\n"
            "  MIGSTREAM_BENCH_CPU=1             encode also prints the CPU time of the\n"
            "                                    calling thread and of the workers (stderr)\n",
            prog, MAXRUNS, prog);
}

static int cmd_run(int argc, char **argv)
{
    config cf = {.dir = "build-bench/data", .runs = 5, .small_call = 4096};
    uint64_t mib = 1024;
    const char *list = "zero,idle-linux,busy-db,huge-2m", *real = NULL, *qemu = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v)
            die("%s needs a value (see --help)", a);
        if (strcmp(a, "--dir") == 0)
            cf.dir = v;
        else if (strcmp(a, "--size") == 0)
            mib = strtoull(v, NULL, 0);
        else if (strcmp(a, "--runs") == 0)
            cf.runs = atoi(v);
        else if (strcmp(a, "--profiles") == 0)
            list = v;
        else if (strcmp(a, "--real-guest") == 0)
            real = *v ? v : NULL;
        else if (strcmp(a, "--qemu-stream") == 0)
            qemu = *v ? v : NULL;
        else if (strcmp(a, "--small-call") == 0)
            cf.small_call = (size_t)strtoull(v, NULL, 0);
        else
            die("unknown option %s (see --help)", a);
    }
    if (cf.runs < 1 || cf.runs > MAXRUNS || mib < 2 || mib % 2)
        die("--runs must be 1..%d and --size an even number of MiB", MAXRUNS);
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        die("cannot find my own executable");
    self[n] = 0;
    cf.self = self;
    if (mkdir(cf.dir, 0755) != 0 && errno != EEXIST)
        die("cannot create %s: %s", cf.dir, strerror(errno));

    image_run *ims = calloc(NPROFILES + 1, sizeof *ims);
    size_t nim = 0;
    char *names = strdup(list);
    for (char *save = NULL, *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const profile *pr = find_profile(t);
        if (!pr)
            die("unknown profile %s", t);
        image_run *im = &ims[nim++];
        im->label = pr->name;
        im->page_size = pr->page_size;
        snprintf(im->path, sizeof im->path, "%s/%s-%" PRIu64 "m-g%d.img", cf.dir, pr->name, mib,
                 GEN_VERSION);
        if (access(im->path, R_OK) != 0) {
            fprintf(stderr, "generating %s\n", im->path);
            generate(pr, mib << 20, im->path);
        }
    }
    if (real) {
        image_run *im = &ims[nim++];
        im->label = "real-guest";
        im->page_size = 4096;
        snprintf(im->path, sizeof im->path, "%s", real);
        if (qemu)
            im->size_qemu = file_size(qemu);
    }
    for (size_t i = 0; i < nim; i++) {
        fprintf(stderr, "preparing %s\n", ims[i].label);
        prepare(&cf, &ims[i]);
    }
    /* Runs are interleaved across images and measurements, so that load
     * from elsewhere on the machine falls on all of them alike. */
    for (int r = 0; r < cf.runs; r++)
        for (size_t i = 0; i < nim; i++) {
            fprintf(stderr, "run %d/%d: %s\n", r + 1, cf.runs, ims[i].label);
            measure(&cf, &ims[i], r);
        }
    printf("migstream-bench: %s, %d runs, medians; throughput in GB/s of image bytes;\n"
           "ratios are medians of per-run ratios against the baseline named in the row\n\n",
           ms_version_string(), cf.runs);
    print_table(&cf, ims, nim);
    free(names);
    free(ims);
    return 0;
}

/* channels-run: the channels table (docs/PERFORMANCE.md). For each image,
 * raw and zstd-1, the image sent and received over one channel (a plain
 * stream) and over N (a migration in N parts), in one child process each,
 * the runs interleaved; medians of the throughputs and of the per-run
 * ratios N channels / 1 channel. */
static int cmd_channels_run(int argc, char **argv)
{
    const char *dir = "build-bench/data", *list = "idle-linux,busy-db";
    uint64_t mib = 1024;
    int runs = 5, n = 2;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("%s needs a value (see --help)", a);
        if (strcmp(a, "--dir") == 0)
            dir = v;
        else if (strcmp(a, "--size") == 0)
            mib = strtoull(v, NULL, 0);
        else if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else if (strcmp(a, "--profiles") == 0)
            list = v;
        else if (strcmp(a, "--channels") == 0)
            n = atoi(v);
        else
            die("unknown option %s (see --help)", a);
    }
    if (runs < 1 || runs > MAXRUNS || mib < 2 || mib % 2 || n < 2 || n > MAX_BENCH_CHANNELS)
        die("--runs must be 1..%d, --size an even number of MiB, --channels 2..%d", MAXRUNS,
            MAX_BENCH_CHANNELS);
    static char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        die("cannot find my own executable");
    self[len] = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die("cannot create %s: %s", dir, strerror(errno));
    enum { MAXIM = 8 };
    struct {
        const profile *pr;
        char path[4096];
        /* [level 0/1][1 channel / n][run] */
        double send[2][2][MAXRUNS], recv[2][2][MAXRUNS];
        double send_cpu[2][2][MAXRUNS], recv_cpu[2][2][MAXRUNS];
        uint64_t bytes[2][2];
        uint64_t size;
    } *im = calloc(MAXIM, sizeof *im);
    size_t nim = 0;
    char *names = strdup(list);
    for (char *save = NULL, *t = strtok_r(names, ",", &save); t && nim < MAXIM;
         t = strtok_r(NULL, ",", &save)) {
        if (!(im[nim].pr = find_profile(t)))
            die("unknown profile %s", t);
        snprintf(im[nim].path, sizeof im[nim].path, "%s/%s-%" PRIu64 "m-g%d.img", dir, t, mib,
                 GEN_VERSION);
        if (access(im[nim].path, R_OK) != 0) {
            fprintf(stderr, "generating %s\n", im[nim].path);
            generate(im[nim].pr, mib << 20, im[nim].path);
        }
        im[nim].size = file_size(im[nim].path);
        nim++;
    }
    for (int r = 0; r < runs; r++)
        for (size_t i = 0; i < nim; i++)
            for (int level = 0; level < 2; level++)
                for (int c = 0; c < 2; c++) {
                    char ps[32], lv[8], nc[8];
                    snprintf(ps, sizeof ps, "%" PRIu32, im[i].pr->page_size);
                    snprintf(lv, sizeof lv, "%d", level);
                    snprintf(nc, sizeof nc, "%d", c ? n : 1);
                    char *av[] = {self, "channels", im[i].path, ps, lv, nc, NULL};
                    result res = spawn(av, NULL, true);
                    double rs = 0, sc = 0, rc = 0;
                    if (sscanf(spawn_line, "%*f %*s %lf %lf %lf", &rs, &sc, &rc) != 3)
                        die("channels printed no receive time");
                    im[i].send[level][c][r] = res.secs;
                    im[i].recv[level][c][r] = rs;
                    im[i].send_cpu[level][c][r] = sc;
                    im[i].recv_cpu[level][c][r] = rc;
                    im[i].bytes[level][c] = res.bytes;
                    fprintf(stderr,
                            "run %d/%d: %s %s, %s channel%s: send %.3f s (CPU %.3f s), "
                            "receive %.3f s (CPU %.3f s)\n",
                            r + 1, runs, im[i].pr->name, level ? "zstd-1" : "raw", nc, c ? "s" : "",
                            res.secs, sc, rs, rc);
                }
    printf("migstream-bench channels: %s, %d runs, medians; aggregate throughput in GB/s of\n"
           "guest memory (all channels together); the ratio is the median of the per-run\n"
           "ratios %d channels / 1 channel\n\n",
           ms_version_string(), runs, n);
    printf("%-11s %-7s %12s %9s %9s %8s %9s %9s %8s\n", "profile", "pages", "stream MiB", "send 1",
           "send N", "ratio", "recv 1", "recv N", "ratio");
    for (size_t i = 0; i < nim; i++)
        for (int level = 0; level < 2; level++) {
            double s1[MAXRUNS], sn[MAXRUNS], r1[MAXRUNS], rn[MAXRUNS], sr[MAXRUNS], rr[MAXRUNS];
            for (int r = 0; r < runs; r++) {
                s1[r] = im[i].send[level][0][r];
                sn[r] = im[i].send[level][1][r];
                r1[r] = im[i].recv[level][0][r];
                rn[r] = im[i].recv[level][1][r];
                sr[r] = s1[r] / sn[r];
                rr[r] = r1[r] / rn[r];
            }
            const double gb = (double)im[i].size / 1e9;
            printf("%-11s %-7s %12.1f %9.2f %9.2f %7.2fx %9.2f %9.2f %7.2fx\n", im[i].pr->name,
                   level ? "zstd-1" : "raw", (double)im[i].bytes[level][1] / MIB,
                   gb / median(s1, runs), gb / median(sn, runs), median(sr, runs),
                   gb / median(r1, runs), gb / median(rn, runs), median(rr, runs));
        }
    printf("\n(send N and recv N with N = %d channels)\n\n", n);
    /* Where the time goes: CPU seconds of all threads per run. A ratio near
     * 1.00 means N channels do the same work as one, spread over N threads:
     * what the wall-time ratio misses of N then is cores the machine did not
     * give (other load), not work the channels added. */
    printf("CPU time of all threads (medians, seconds) and its ratio %d channels / 1:\n", n);
    printf("%-11s %-7s %9s %9s %8s %9s %9s %8s\n", "profile", "pages", "send 1", "send N", "ratio",
           "recv 1", "recv N", "ratio");
    for (size_t i = 0; i < nim; i++)
        for (int level = 0; level < 2; level++) {
            double s1[MAXRUNS], sn[MAXRUNS], r1[MAXRUNS], rn[MAXRUNS], sr[MAXRUNS], rr[MAXRUNS];
            for (int r = 0; r < runs; r++) {
                s1[r] = im[i].send_cpu[level][0][r];
                sn[r] = im[i].send_cpu[level][1][r];
                r1[r] = im[i].recv_cpu[level][0][r];
                rn[r] = im[i].recv_cpu[level][1][r];
                sr[r] = sn[r] / s1[r];
                rr[r] = rn[r] / r1[r];
            }
            printf("%-11s %-7s %9.3f %9.3f %7.2fx %9.3f %9.3f %7.2fx\n", im[i].pr->name,
                   level ? "zstd-1" : "raw", median(s1, runs), median(sn, runs), median(sr, runs),
                   median(r1, runs), median(rn, runs), median(rr, runs));
        }
    free(names);
    free(im);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(c, "gen") == 0)
        return cmd_gen(argc - 1, argv + 1);
    if (strcmp(c, "encode") == 0)
        return cmd_encode(argc - 1, argv + 1);
    if (strcmp(c, "memcpy") == 0)
        return cmd_memcpy(argc - 1, argv + 1);
    if (strcmp(c, "decode") == 0)
        return cmd_decode(argc - 1, argv + 1);
    if (strcmp(c, "replay") == 0)
        return cmd_replay(argc - 1, argv + 1);
    if (strcmp(c, "zero-speed") == 0)
        return cmd_zero_speed(argc - 1, argv + 1);
    if (strcmp(c, "channels") == 0)
        return cmd_channels(argc - 1, argv + 1);
    if (strcmp(c, "channels-run") == 0)
        return cmd_channels_run(argc - 1, argv + 1);
    if (strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
