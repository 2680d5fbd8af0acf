/*
 * kvm-migrate: live pre-copy migration of a KVM guest through libmigstream.
 *
 *   kvm-migrate migrate [options]        source and destination, two processes
 *   kvm-migrate send [options] TARGET    the source: TARGET is a file, "-"
 *                                        (standard output) or unix:PATH
 *   kvm-migrate receive [options] SOURCE the destination: a file, "-" or
 *                                        unix:PATH (listens there)
 *
 * The source runs guest.h's program, which keeps writing memory at a chosen
 * rate, with KVM's dirty log on. Round 0 sends all memory (the writer elides
 * zero pages); each later round reads the dirty bitmap and sends exactly
 * those pages (ms_writer_dirty); once a round's dirty set is small enough,
 * or after --max-rounds, the vCPU is paused and the last dirty pages, the
 * vCPU state and the rate go out as the final round and device records.
 * The destination replays the stream into its own VM (ms_replay), restores
 * the vCPU and resumes the guest, which goes on counting.
 *
 * With --channels N, the migration travels over N connections as a
 * migration in N parts (FORMAT.md section 2.1): N sender threads, each
 * with its own writer and its share of every round's pages, and N receiver
 * threads applying their parts at once, with a barrier at every round.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cbor.h>
#include <xxhash.h>

#include <migstream/migstream.h>

#include "guest.h"
#include "vcpu_state.h"
#include "vm.h"

#define PAGE 4096u
#define MAX_CHANNELS 16
#define PACER_PATH "pacer"
#define PACER_SCHEMA "kvm-migrate-pacer"

typedef struct options {
    uint64_t mem_mib;      /* guest memory */
    uint32_t rate;         /* pages the guest may write per second */
    uint32_t working_set;  /* pages the guest writes into */
    uint32_t max_rounds;   /* rounds before stop-and-copy, round 0 included */
    uint32_t threshold;    /* stop once a round finds at most this many dirty pages */
    uint32_t warmup_ms;    /* guest runs this long before round 0 */
    uint32_t run_ms;       /* destination: runs the guest this long after resume */
    uint64_t max_mem_mib;  /* destination: largest guest accepted */
    int compress;          /* zstd level of the stream, 0: none */
    const char *out;       /* a copy of the stream goes there */
    bool force;
    int channels;          /* connections the migration travels over */
} options;

/* What the destination reports; in "migrate" mode it goes back to the
 * source process over a pipe, so that one process can judge the result. */
typedef struct report {
    uint64_t mem_digest, vcpu_digest;
    uint64_t ready_ns;  /* memory and vCPU state in place: the guest could run */
    uint64_t resume_ns; /* it runs, after the checks below */
    uint32_t counter_resume, counter_after;
    uint64_t rounds;
    int ok;
} report;

static const char *prog = "kvm-migrate";
/* Where progress goes: standard output, or standard error when the
 * stream itself takes standard output (send -). */
static FILE *msg;

/* Temporary files that become outputs on success; die() removes them, so
 * that a failed run leaves nothing behind. */
static char *pending_tmp[2 * MAX_CHANNELS];

static _Noreturn void die(const char *fmt, ...)
{
    /* Channel threads may fail at once: one of them says why and exits. */
    static pthread_mutex_t dying = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&dying);
    for (size_t i = 0; i < sizeof pending_tmp / sizeof *pending_tmp; i++)
        if (pending_tmp[i])
            unlink(pending_tmp[i]);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ms_since(uint64_t t0)
{
    return (double)(now_ns() - t0) / 1e6;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static uint32_t load32(const uint8_t *mem, uint32_t addr)
{
    return atomic_load((_Atomic uint32_t *)(void *)(mem + addr));
}

static void store32(uint8_t *mem, uint32_t addr, uint32_t v)
{
    atomic_store((_Atomic uint32_t *)(void *)(mem + addr), v);
}

/* XXH3-64 of every page, in order, hashed again: equal digests mean equal
 * memory page for page. */
static uint64_t memory_digest(const uint8_t *mem, uint64_t size)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        die("out of memory");
    XXH3_64bits_reset(st);
    for (uint64_t off = 0; off < size; off += PAGE) {
        XXH64_hash_t h = XXH3_64bits(mem + off, PAGE);
        XXH3_64bits_update(st, &h, sizeof h);
    }
    uint64_t d = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return d;
}

/* Digest of the vCPU state as encoded for the stream. */
static uint64_t vcpu_digest(const vcpu_state *s)
{
    uint64_t d = 0;
    for (int p = 0; p < VCPU_PARTS; p++) {
        uint8_t *buf;
        size_t len;
        if (vcpu_encode(s, p, &buf, &len))
            die("out of memory");
        d = XXH3_64bits_withSeed(buf, len, d);
        free(buf);
    }
    return d;
}

/* ---------------------------------------------------------------- pacer */

/* Hands the guest write tokens at the chosen rate: the guest spins while
 * its counter equals "allowed". The pacer writes the control page from
 * the host, which KVM's dirty log does not see, so the source sends that
 * page in every round itself. */
typedef struct pacer {
    uint8_t *mem;
    uint32_t rate;
    atomic_bool stop;
    pthread_t thread;
    bool running;
} pacer;

static void *pacer_thread(void *arg)
{
    pacer *p = arg;
    uint64_t t0 = now_ns();
    uint32_t base = load32(p->mem, GUEST_COUNTER);
    while (!atomic_load(&p->stop)) {
        uint64_t tokens = (now_ns() - t0) / 1000 * p->rate / 1000000;
        store32(p->mem, GUEST_ALLOWED, base + (uint32_t)tokens);
        sleep_ms(1);
    }
    return NULL;
}

static void pacer_start(pacer *p, uint8_t *mem, uint32_t rate)
{
    p->mem = mem;
    p->rate = rate;
    atomic_store(&p->stop, false);
    /* No token is left over from before: the guest waits for the first. */
    store32(mem, GUEST_ALLOWED, load32(mem, GUEST_COUNTER));
    if (pthread_create(&p->thread, NULL, pacer_thread, p))
        die("cannot start the pacer thread");
    p->running = true;
}

static void pacer_stop(pacer *p)
{
    if (!p->running)
        return;
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    p->running = false;
}

/* ------------------------------------------------------------ transport */

/* Output: the stream's destination plus an optional copy (--out), written
 * to a temporary file renamed into place at the end. */
typedef struct sink {
    int fd;
    int copy_fd;
    char *copy_tmp;
    const char *copy_path;
} sink;

static int write_fd(int fd, const struct iovec *iov, int iovcnt)
{
    struct iovec v[64];
    while (iovcnt > 0) {
        int n = iovcnt < 64 ? iovcnt : 64;
        memcpy(v, iov, (size_t)n * sizeof *v);
        struct iovec *p = v;
        int left = n;
        while (left > 0) {
            ssize_t k = writev(fd, p, left);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return -1;
            while (left > 0 && (size_t)k >= p->iov_len) {
                k -= (ssize_t)p->iov_len;
                p++;
                left--;
            }
            if (left > 0) {
                p->iov_base = (uint8_t *)p->iov_base + k;
                p->iov_len -= (size_t)k;
            }
        }
        iov += n;
        iovcnt -= n;
    }
    return 0;
}

static int sink_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    sink *s = ctx;
    if (write_fd(s->fd, iov, iovcnt))
        return MS_EIO;
    if (s->copy_fd >= 0 && write_fd(s->copy_fd, iov, iovcnt))
        return MS_EIO;
    return 0;
}

/* Creates the temporary file beside @p path that becomes @p path on
 * success; refuses an existing @p path unless @p force. */
static int create_beside(const char *path, bool force, char **tmp_out)
{
    struct stat st;
    if (!force && lstat(path, &st) == 0)
        die("%s exists (use --force to replace it)", path);
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        die("out of memory");
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        die("cannot create a file beside %s: %s", path, strerror(errno));
    for (size_t i = 0; i < sizeof pending_tmp / sizeof *pending_tmp; i++)
        if (!pending_tmp[i]) {
            pending_tmp[i] = tmp;
            break;
        }
    *tmp_out = tmp;
    return fd;
}

static void commit_beside(int fd, char *tmp, const char *path)
{
    if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0)
        die("cannot write %s: %s", path, strerror(errno));
    for (size_t i = 0; i < sizeof pending_tmp / sizeof *pending_tmp; i++)
        if (pending_tmp[i] == tmp)
            pending_tmp[i] = NULL;
    free(tmp);
}

static int unix_socket(const char *path, struct sockaddr_un *sa)
{
    if (strlen(path) >= sizeof sa->sun_path)
        die("socket path too long: %s", path);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    strcpy(sa->sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    return fd;
}

/* The destination listens; the source connects, retrying for a while so
 * that the two can be started in either order. */
static int connect_unix(const char *path)
{
    struct sockaddr_un sa;
    for (int i = 0; i < 100; i++) {
        int fd = unix_socket(path, &sa);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        close(fd);
        if (errno != ENOENT && errno != ECONNREFUSED)
            break;
        sleep_ms(100);
    }
    die("cannot connect to unix:%s: %s", path, strerror(errno));
}

/* Accepts @n connections, one per channel, in any order: each part says
 * which it is. */
static void accept_unix(const char *path, int *fds, int n)
{
    struct sockaddr_un sa;
    int fd = unix_socket(path, &sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, n) < 0)
        die("cannot listen on unix:%s: %s", path, strerror(errno));
    fprintf(stderr, "destination: waiting on unix:%s\n", path);
    for (int k = 0; k < n; k++)
        if ((fds[k] = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
            die("accept on unix:%s: %s", path, strerror(errno));
    close(fd);
    unlink(path);
}

/* --------------------------------------------------------------- source */

static uint64_t popcount_bitmap(const uint64_t *bm, size_t words)
{
    uint64_t n = 0;
    for (size_t i = 0; i < words; i++)
        n += (uint64_t)__builtin_popcountll(bm[i]);
    return n;
}

static void check(ms_writer *w, int rc, const char *what)
{
    if (rc)
        die("%s: %s", what, ms_writer_errmsg(w));
}

/* The source's connections: one writer each. With one channel the stream
 * is a plain stream; with N it is a migration in N parts (FORMAT.md
 * section 2.1), each part written by its own thread over its own
 * connection, each round's pages split between the parts by page ranges. */
typedef struct sender sender;

typedef struct channel {
    sender *snd;
    int k;
    ms_writer *w;
    sink s;
    uint64_t first, count; /* round 0: its pages */
    uint64_t *bm;          /* a dirty round: the bitmap, its own words only */
    pthread_t thread;
} channel;

enum job { JOB_FULL, JOB_DIRTY, JOB_STOP };

struct sender {
    int n;
    channel ch[MAX_CHANNELS];
    uint8_t *mem;
    size_t words; /* of the dirty bitmap */
    /* the round every channel sends, set before the threads are let go */
    enum job job;
    ms_round round;
    pthread_barrier_t go, done;
};

/* One channel's part of the round: its ROUND record (every part starts
 * every round, even with nothing to send), its pages, then everything out. */
static void channel_round(channel *c)
{
    sender *s = c->snd;
    check(c->w, ms_writer_round(c->w, &s->round), "round");
    if (s->job == JOB_FULL)
        check(c->w, ms_writer_pages(c->w, 0, c->first, c->count, s->mem + c->first * PAGE),
              "round 0");
    else
        check(c->w, ms_writer_dirty(c->w, 0, c->bm, PAGE, s->mem), "dirty pages");
    check(c->w, ms_writer_flush(c->w), "round");
}

static void *channel_thread(void *arg)
{
    channel *c = arg;
    for (;;) {
        pthread_barrier_wait(&c->snd->go);
        if (c->snd->job == JOB_STOP)
            return NULL;
        channel_round(c);
        pthread_barrier_wait(&c->snd->done);
    }
}

/* Every channel sends round @r; returns when all are done. */
static void send_round(sender *s, enum job job, const ms_round *r)
{
    s->job = job;
    s->round = *r;
    if (s->n == 1) {
        channel_round(&s->ch[0]);
        return;
    }
    pthread_barrier_wait(&s->go);
    pthread_barrier_wait(&s->done);
}

/* Round 0: the region in N ranges of whole bitmap words. */
static void split_full(sender *s, uint64_t pages)
{
    uint64_t words = (pages + 63) / 64;
    for (int k = 0; k < s->n; k++) {
        uint64_t a = words * (uint64_t)k / (uint64_t)s->n * 64;
        uint64_t b = words * (uint64_t)(k + 1) / (uint64_t)s->n * 64;
        s->ch[k].first = a < pages ? a : pages;
        s->ch[k].count = (b < pages ? b : pages) - s->ch[k].first;
    }
}

/* A dirty round: ranges of whole words holding about the same number of
 * dirty pages each, so that the channels share the work; each channel's
 * bitmap keeps its own words. A page goes to one channel in a round, as the
 * format requires (FORMAT.md section 2.1). */
static void split_dirty(sender *s, const uint64_t *bm, uint64_t dirty)
{
    if (s->n == 1) {
        s->ch[0].bm = (uint64_t *)(uintptr_t)bm;
        return;
    }
    size_t w = 0;
    uint64_t seen = 0;
    for (int k = 0; k < s->n; k++) {
        size_t a = w;
        uint64_t goal = dirty * (uint64_t)(k + 1) / (uint64_t)s->n;
        while (w < s->words && (k == s->n - 1 || seen < goal))
            seen += (uint64_t)__builtin_popcountll(bm[w++]);
        memset(s->ch[k].bm, 0, s->words * sizeof *bm);
        memcpy(s->ch[k].bm + a, bm + a, (w - a) * sizeof *bm);
    }
}

/* Opens the writers: a plain stream for one channel, the parts of one
 * migration for more. */
static void sender_start(sender *s, const options *o, const int *fds, uint8_t *mem)
{
    s->n = o->channels;
    s->mem = mem;
    s->words = (size_t)(((o->mem_mib << 20) / PAGE + 63) / 64);
    uint8_t id[MS_MIGRATION_ID_SIZE];
    if (s->n > 1 && ms_migration_id_new(id))
        die("no random bytes for a migration id");
    for (int k = 0; k < s->n; k++) {
        channel *c = &s->ch[k];
        c->snd = s;
        c->k = k;
        c->s = (sink){.fd = fds[k], .copy_fd = -1};
        if (o->out) {
            char *path = malloc(strlen(o->out) + 16);
            if (!path)
                die("out of memory");
            if (s->n > 1)
                sprintf(path, "%s.%d", o->out, k);
            else
                strcpy(path, o->out);
            c->s.copy_path = path;
            c->s.copy_fd = create_beside(path, o->force, &c->s.copy_tmp);
        }
        ms_writer_options wo;
        ms_writer_options_init(&wo);
        wo.writer_name = "kvm-migrate";
        wo.writer_version = "0.1";
        wo.machine = k == 0 ? "kvm-migrate x86 32-bit, 1 vCPU" : NULL; /* INFO in part 0 */
        wo.compress_level = o->compress;
        ms_part part = {.index = (uint32_t)k, .count = (uint32_t)s->n};
        memcpy(part.migration_id, id, sizeof id);
        wo.part = s->n > 1 ? &part : NULL;
        c->w = ms_writer_new(&wo, sink_write, &c->s);
        if (!c->w)
            die("out of memory");
        check(c->w, ms_writer_status(c->w), "writer");
        /* Every part declares the region it sends pages of. */
        ms_region ram = {.id = 0,
                         .name = "ram",
                         .has_gpa = true,
                         .gpa = 0,
                         .size = o->mem_mib << 20,
                         .page_size = PAGE};
        check(c->w, ms_writer_add_region(c->w, &ram), "region");
        if (s->n > 1 && !(c->bm = calloc(s->words, sizeof *c->bm)))
            die("out of memory");
    }
    if (s->n == 1)
        return;
    if (pthread_barrier_init(&s->go, NULL, (unsigned)s->n + 1) ||
        pthread_barrier_init(&s->done, NULL, (unsigned)s->n + 1))
        die("cannot set up the channels");
    for (int k = 0; k < s->n; k++)
        if (pthread_create(&s->ch[k].thread, NULL, channel_thread, &s->ch[k]))
            die("cannot start the sender thread of channel %d", k);
}

static uint64_t sender_bytes(const sender *s)
{
    uint64_t b = 0;
    for (int k = 0; k < s->n; k++)
        b += ms_writer_bytes_written(s->ch[k].w);
    return b;
}

static void sender_stop(sender *s)
{
    if (s->n > 1) {
        s->job = JOB_STOP;
        pthread_barrier_wait(&s->go);
        for (int k = 0; k < s->n; k++)
            pthread_join(s->ch[k].thread, NULL);
        pthread_barrier_destroy(&s->go);
        pthread_barrier_destroy(&s->done);
    }
}

/* Runs the source side into @p fds (one per channel); returns the time the
 * vCPU was paused (CLOCK_MONOTONIC ns) and its digests through the
 * pointers. */
static uint64_t run_source(const options *o, const int *fds, uint64_t *mem_digest,
                           uint64_t *cpu_digest, uint64_t *rounds_out)
{
    char err[256];
    uint64_t size = o->mem_mib << 20;
    vm *v = vm_create(size, true, err, sizeof err);
    if (!v)
        die("%s", err);
    uint8_t *mem = vm_mem(v);
    memcpy(mem + GUEST_ENTRY, guest_code, sizeof guest_code);
    store32(mem, GUEST_NPAGES, o->working_set);
    store32(mem, GUEST_SEED, 0x2545f491u);
    if (vm_reset_vcpu(v, GUEST_ENTRY))
        die("%s", vm_error(v));

    pacer pc = {0};
    pacer_start(&pc, mem, o->rate);
    if (vm_run(v))
        die("%s", vm_error(v));
    fprintf(msg, "source: guest of %" PRIu64 " MiB, working set %u pages, %u pages/s; running %u ms\n",
           o->mem_mib, o->working_set, o->rate, o->warmup_ms);
    if (o->channels > 1)
        fprintf(msg, "source: %d channels, one sender thread and one connection each\n",
                o->channels);
    sleep_ms(o->warmup_ms);

    static sender snd;
    sender_start(&snd, o, fds, mem);
    size_t words = snd.words;
    uint64_t *bm = calloc(words, sizeof *bm);
    if (!bm)
        die("out of memory");

    /* Round 0: everything. The log is read (and so cleared) first: pages
     * the guest writes from here on are in round 1's bitmap. */
    if (vm_dirty_log(v, bm))
        die("%s", vm_error(v));
    uint64_t t = now_ns(), b = sender_bytes(&snd);
    split_full(&snd, size / PAGE);
    send_round(&snd, JOB_FULL, &(ms_round){.number = 0});
    fprintf(msg, "round 0: all %" PRIu64 " pages, %.1f KiB, %.1f ms\n", size / PAGE,
            (double)(sender_bytes(&snd) - b) / 1024, ms_since(t));

    uint64_t n = 1;
    uint64_t paused_at = 0;
    uint64_t last = o->max_rounds - 1; /* the stop-and-copy round */
    for (;; n++) {
        bool final = n >= last;
        if (final) {
            pacer_stop(&pc);
            paused_at = now_ns();
            if (vm_pause(v))
                die("%s", vm_error(v));
        }
        if (vm_dirty_log(v, bm))
            die("%s", vm_error(v));
        uint64_t dirty = popcount_bitmap(bm, words);
        /* The pacer's writes to the control page are the VMM's, unseen by
         * the log; the page goes in every round. */
        bm[GUEST_CTL / PAGE / 64] |= 1ull << (GUEST_CTL / PAGE % 64);
        t = now_ns();
        b = sender_bytes(&snd);
        ms_round r = {.number = n, .tracker = MS_TRACKER_BITMAP, .granularity = PAGE,
                      .has_dirty = true, .dirty = dirty, .final = final};
        split_dirty(&snd, bm, dirty + 1);
        send_round(&snd, JOB_DIRTY, &r);
        fprintf(msg, "round %" PRIu64 "%s: %" PRIu64 " dirty pages, %.1f KiB, %.1f ms\n", n,
                final ? " (final, vCPU paused)" : "", dirty,
                (double)(sender_bytes(&snd) - b) / 1024, ms_since(t));
        if (final)
            break;
        if (dirty <= o->threshold)
            last = n + 1; /* small enough: pause and send the rest */
    }
    sender_stop(&snd); /* the threads are done: the writers are this thread's */

    /* The devices go in part 0, in the final round. */
    ms_writer *w = snd.ch[0].w;
    vcpu_state cs;
    if (vm_get_state(v, &cs))
        die("%s", vm_error(v));
    for (int p = 0; p < VCPU_PARTS; p++) {
        uint8_t *buf;
        size_t len;
        if (vcpu_encode(&cs, p, &buf, &len))
            die("out of memory");
        check(w, ms_writer_device(w, vcpu_part_path(p), 0, vcpu_part_schema(p),
                                  vcpu_part_version(p), buf, len),
              "vCPU state");
        free(buf);
    }
    /* The rate travels too, so that the destination paces the guest alike. */
    uint8_t rate_cbor[32];
    cbor_item_t *m = cbor_new_definite_map(1);
    cbor_map_add(m, (struct cbor_pair){.key = cbor_move(cbor_build_string("rate")),
                                       .value = cbor_move(cbor_build_uint32(pc.rate))});
    size_t rate_len = cbor_serialize(m, rate_cbor, sizeof rate_cbor);
    cbor_decref(&m);
    check(w, ms_writer_device(w, PACER_PATH, 0, PACER_SCHEMA, 1, rate_cbor, rate_len), "pacer");
    for (int k = 0; k < snd.n; k++)
        check(snd.ch[k].w, ms_writer_finish(snd.ch[k].w, NULL), "end");
    double stop_copy = ms_since(paused_at);

    *mem_digest = memory_digest(mem, size);
    *cpu_digest = vcpu_digest(&cs);
    *rounds_out = n + 1;
    fprintf(msg, "source: paused at counter %u; memory digest %016" PRIx64 ", vCPU digest %016" PRIx64
           "\n",
           load32(mem, GUEST_COUNTER), *mem_digest, *cpu_digest);
    fprintf(msg, "source: %" PRIu64 " rounds, stream %.1f KiB, stop-and-copy %.1f ms\n", n + 1,
            (double)sender_bytes(&snd) / 1024, stop_copy);
    for (int k = 0; k < snd.n; k++) {
        channel *c = &snd.ch[k];
        ms_writer_free(c->w);
        if (c->s.copy_fd >= 0) {
            commit_beside(c->s.copy_fd, c->s.copy_tmp, c->s.copy_path);
            fprintf(msg, "source: %s written to %s\n", snd.n > 1 ? "part" : "stream",
                    c->s.copy_path);
        }
        free((char *)c->s.copy_path);
        if (snd.n > 1) /* one channel sends from the round's bitmap itself */
            free(c->bm);
    }
    free(bm);
    vm_free(v);
    return paused_at;
}

/* ---------------------------------------------------------- destination */

typedef struct dest {
    const options *o;
    vm *v;
    vcpu_state cs;
    bool have[VCPU_PARTS];
    uint32_t rate;
    bool have_rate;
    uint64_t rounds;
    char err[300];
} dest;

static int dest_fail(dest *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char raw[sizeof d->err];
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    ms_escape_text(d->err, sizeof d->err, raw); /* names from the stream */
    return MS_EINVAL;
}

static int on_region(void *ctx, const ms_region *r)
{
    dest *d = ctx;
    if (d->v)
        return dest_fail(d, "region %u '%s': a second region (kvm-migrate guests have one)",
                         r->id, r->name);
    if (strcmp(r->name, "ram") != 0 || !r->has_gpa || r->gpa != 0 || r->page_size != PAGE)
        return dest_fail(d, "region %u '%s': expected 'ram' at guest-physical 0 with 4 KiB pages",
                         r->id, r->name);
    if (r->size > d->o->max_mem_mib << 20 || r->size <= GUEST_WORK)
        return dest_fail(d, "region %u '%s': %" PRIu64 " bytes is outside 1 MiB..%" PRIu64
                            " MiB (--max-mem)",
                         r->id, r->name, r->size, d->o->max_mem_mib);
    char err[256];
    d->v = vm_create(r->size, false, err, sizeof err);
    if (!d->v)
        return dest_fail(d, "%s", err);
    return 0;
}

static int on_extent(void *ctx, const ms_region *r, const ms_extent *e, const uint8_t *data)
{
    dest *d = ctx;
    uint8_t *p = vm_mem(d->v) + e->first * PAGE;
    size_t len = (size_t)e->count * PAGE;
    switch (e->state) {
    case MS_PAGE_DATA:
        memcpy(p, data, len);
        return 0;
    case MS_PAGE_ZERO:
    case MS_PAGE_DISCARDED:
        /* Private anonymous memory reads as zero after this, and a run of
         * zero pages costs no memory. */
        if (madvise(p, len, MADV_DONTNEED) < 0)
            return dest_fail(d, "madvise: %s", strerror(errno));
        return 0;
    case MS_PAGE_FILL:
        for (size_t i = 0; i < len; i += 8)
            memcpy(p + i, &e->arg, 8);
        return 0;
    default:
        return dest_fail(d, "region '%s' pages %" PRIu64 "..%" PRIu64
                            ": state %u (in place) cannot be restored by this VMM",
                         r->name, e->first, e->first + e->count - 1, e->state);
    }
}

static int on_device(void *ctx, const ms_device *dev)
{
    dest *d = ctx;
    if (strcmp(dev->path, PACER_PATH) == 0) {
        /* {"rate": n}, read a head at a time (ms_cbor_next): never with
         * cbor_load, which allocates what the input declares. */
        ms_cbor_item m, k, v;
        size_t pos = 0;
        bool ok = !ms_cbor_next(dev->state, dev->state_size, &pos, &m) &&
                  m.kind == MS_CBOR_MAP && m.u == 1 &&
                  !ms_cbor_next(dev->state, dev->state_size, &pos, &k) &&
                  k.kind == MS_CBOR_TEXT && k.len == 4 && memcmp(k.str, "rate", 4) == 0 &&
                  !ms_cbor_next(dev->state, dev->state_size, &pos, &v) &&
                  v.kind == MS_CBOR_UINT && v.u > 0 && v.u <= UINT32_MAX &&
                  pos == dev->state_size;
        if (ok)
            d->rate = (uint32_t)v.u;
        if (!ok)
            return dest_fail(d, "device '%s': expected {\"rate\": 1..2^32-1}", dev->path);
        d->have_rate = true;
        return 0;
    }
    int p = vcpu_part_find(dev->path);
    if (p < 0)
        return dest_fail(d, "device '%s' instance %u: unknown to this VMM", dev->path,
                         dev->instance);
    if (dev->instance != 0 || strcmp(dev->schema, vcpu_part_schema(p)) != 0 ||
        dev->version != vcpu_part_version(p))
        return dest_fail(d, "device '%s' instance %u: schema '%s' version %u, expected '%s' "
                            "version %u instance 0",
                         dev->path, dev->instance, dev->schema, dev->version,
                         vcpu_part_schema(p), vcpu_part_version(p));
    char err[200];
    if (vcpu_decode(&d->cs, p, dev->state, dev->state_size, err, sizeof err))
        return dest_fail(d, "device '%s': %s", dev->path, err);
    d->have[p] = true;
    return 0;
}

static int on_round(void *ctx, const ms_round *r)
{
    dest *d = ctx;
    d->rounds++;
    return 0;
}

/* With N channels, N receiving threads, each applying its part of the
 * migration into guest memory as it reads it; the pages of one round in
 * different parts are disjoint, so the threads never write the same page
 * at once. A barrier at each ROUND (and at END) keeps the rounds in order:
 * no thread applies round k + 1 before every part's round k is in place,
 * so a page sent again in a later round wins whichever part carried it
 * (FORMAT.md section 2.1). */
typedef struct receiver receiver;

typedef struct rchannel {
    receiver *rv;
    int k;
    int fd;
    dest local;      /* its own error message; v once the VM exists */
    uint64_t rounds; /* ROUND records read */
    ms_part part;
    bool have_part;
    pthread_t thread;
} rchannel;

struct receiver {
    dest *d;
    int n;
    rchannel ch[MAX_CHANNELS];
    pthread_mutex_t lock; /* the VM's creation and the devices */
    pthread_barrier_t round;
    uint64_t number[2][MAX_CHANNELS]; /* each channel's round number, by the round's parity */
    uint32_t region_id;
};

#define ENDED UINT64_MAX /* a channel's round number once its part has ended */

static int ch_region(void *ctx, const ms_region *r)
{
    rchannel *c = ctx;
    receiver *rv = c->rv;
    int rc = 0;
    pthread_mutex_lock(&rv->lock);
    if (!rv->d->v) {
        rc = on_region(rv->d, r);
        rv->region_id = r->id;
    } else if (r->id != rv->region_id || r->size != vm_mem_size(rv->d->v)) {
        rc = dest_fail(&c->local,
                       "channel %d: region %u '%s' is not the region the other "
                       "parts declare",
                       c->k, r->id, r->name);
    }
    c->local.v = rv->d->v;
    pthread_mutex_unlock(&rv->lock);
    return rc;
}

static int ch_extent(void *ctx, const ms_region *r, const ms_extent *e, const uint8_t *data)
{
    rchannel *c = ctx;
    return on_extent(&c->local, r, e, data);
}

static int ch_device(void *ctx, const ms_device *dev)
{
    rchannel *c = ctx;
    pthread_mutex_lock(&c->rv->lock);
    int rc = on_device(c->rv->d, dev);
    pthread_mutex_unlock(&c->rv->lock);
    return rc;
}

static int ch_part(void *ctx, const ms_part *p)
{
    rchannel *c = ctx;
    c->part = *p;
    c->have_part = true;
    return 0;
}

/* Every channel has read its ROUND of the same number: then each goes on. */
static int ch_round(void *ctx, const ms_round *r)
{
    rchannel *c = ctx;
    receiver *rv = c->rv;
    const int parity = (int)(c->rounds % 2);
    rv->number[parity][c->k] = r->number;
    pthread_barrier_wait(&rv->round);
    for (int k = 0; k < rv->n; k++) {
        if (rv->number[parity][k] == ENDED)
            return dest_fail(&c->local,
                             "channel %d starts round %" PRIu64 " where channel %d "
                             "ends: the parts disagree",
                             c->k, r->number, k);
        if (rv->number[parity][k] != r->number)
            return dest_fail(&c->local,
                             "channel %d starts round %" PRIu64 " where channel %d "
                             "starts round %" PRIu64 ": the parts disagree",
                             c->k, r->number, k, rv->number[parity][k]);
    }
    if (c->rounds == 0 && c->k == 0) {
        /* All parts have read their PART: one migration, each part once. */
        bool seen[MAX_CHANNELS] = {false};
        for (int k = 0; k < rv->n; k++) {
            const rchannel *x = &rv->ch[k];
            if (!x->have_part || x->part.count != (uint32_t)rv->n ||
                memcmp(x->part.migration_id, c->part.migration_id, MS_MIGRATION_ID_SIZE) ||
                seen[x->part.index])
                return dest_fail(&c->local,
                                 "channel %d does not carry the part of this "
                                 "migration it should (a part of %u, index %u)",
                                 k, x->part.count, x->part.index);
            seen[x->part.index] = true;
        }
    }
    c->rounds++;
    return 0;
}

static int ch_end(void *ctx, const ms_totals *t, uint64_t digest)
{
    (void)t;
    (void)digest;
    rchannel *c = ctx;
    receiver *rv = c->rv;
    const int parity = (int)(c->rounds % 2);
    rv->number[parity][c->k] = ENDED;
    pthread_barrier_wait(&rv->round); /* every part complete */
    for (int k = 0; k < rv->n; k++)
        if (rv->number[parity][k] != ENDED)
            return dest_fail(&c->local,
                             "channel %d ends where channel %d starts round %" PRIu64
                             ": the parts disagree",
                             c->k, k, rv->number[parity][k]);
    return 0;
}

static void *rchannel_thread(void *arg)
{
    rchannel *c = arg;
    ms_reader *r = ms_reader_new_fd(NULL, c->fd);
    if (!r)
        die("out of memory");
    ms_replay_callbacks cb = {.struct_size = sizeof cb,
                              .region = ch_region,
                              .extent = ch_extent,
                              .device = ch_device,
                              .round = ch_round,
                              .part = ch_part,
                              .end = ch_end};
    int rc = ms_replay(r, &cb, c);
    if (rc) {
        if (c->local.err[0])
            die("destination, channel %d: %s (stream offset %" PRIu64 ")", c->k, c->local.err,
                ms_reader_offset(r));
        if (c->rv->d->err[0])
            die("destination, channel %d: %s", c->k, c->rv->d->err);
        die("destination, channel %d: %s", c->k, ms_reader_errmsg(r));
    }
    ms_reader_free(r);
    return NULL;
}

/* Applies the migration arriving over @p n connections. */
static void receive_parts(dest *d, const int *fds, int n)
{
    static receiver rv;
    rv.d = d;
    rv.n = n;
    if (pthread_mutex_init(&rv.lock, NULL) || pthread_barrier_init(&rv.round, NULL, (unsigned)n))
        die("cannot set up the channels");
    for (int k = 0; k < n; k++) {
        rv.ch[k] = (rchannel){.rv = &rv, .k = k, .fd = fds[k], .local = {.o = d->o}};
        if (pthread_create(&rv.ch[k].thread, NULL, rchannel_thread, &rv.ch[k]))
            die("cannot start the receiver thread of channel %d", k);
    }
    for (int k = 0; k < n; k++)
        pthread_join(rv.ch[k].thread, NULL);
    d->rounds = rv.ch[0].rounds;
    pthread_barrier_destroy(&rv.round);
    pthread_mutex_destroy(&rv.lock);
}

static report run_dest(const options *o, const int *fds)
{
    report rep = {0};
    dest d = {.o = o};
    if (o->channels > 1) {
        receive_parts(&d, fds, o->channels);
    } else {
        ms_reader *r = ms_reader_new_fd(NULL, fds[0]);
        if (!r)
            die("out of memory");
        ms_replay_callbacks cb = {.struct_size = sizeof cb,
                                  .region = on_region,
                                  .extent = on_extent,
                                  .device = on_device,
                                  .round = on_round};
        int rc = ms_replay(r, &cb, &d);
        if (rc) {
            if (d.err[0])
                die("destination: %s (stream offset %" PRIu64 ")", d.err, ms_reader_offset(r));
            die("destination: %s", ms_reader_errmsg(r));
        }
        ms_reader_free(r);
    }
    if (!d.v)
        die("destination: the stream holds no guest memory");
    for (int p = 0; p < VCPU_PARTS; p++)
        if (!d.have[p])
            die("destination: the stream holds no '%s' device state", vcpu_part_path(p));
    if (!d.have_rate)
        die("destination: the stream holds no '%s' device state", PACER_PATH);

    if (vm_set_state(d.v, &d.cs))
        die("destination: %s", vm_error(d.v));
    rep.ready_ns = now_ns();
    /* What KVM now holds, read back, not what the stream said. */
    vcpu_state back;
    if (vm_get_state(d.v, &back))
        die("destination: %s", vm_error(d.v));
    uint8_t *mem = vm_mem(d.v);
    rep.mem_digest = memory_digest(mem, vm_mem_size(d.v));
    rep.vcpu_digest = vcpu_digest(&back);
    rep.rounds = d.rounds;
    rep.counter_resume = load32(mem, GUEST_COUNTER);

    pacer pc = {0};
    pacer_start(&pc, mem, d.rate);
    rep.resume_ns = now_ns();
    if (vm_run(d.v))
        die("destination: %s", vm_error(d.v));
    fprintf(msg, "destination: resumed at counter %u; memory digest %016" PRIx64
           ", vCPU digest %016" PRIx64 "\n",
           rep.counter_resume, rep.mem_digest, rep.vcpu_digest);
    fflush(msg);
    sleep_ms(o->run_ms);
    pacer_stop(&pc);
    if (vm_pause(d.v))
        die("destination: %s", vm_error(d.v));
    rep.counter_after = load32(mem, GUEST_COUNTER);
    fprintf(msg, "destination: after %u ms the counter is %u (%+" PRId64 ")\n", o->run_ms,
           rep.counter_after, (int64_t)rep.counter_after - rep.counter_resume);
    rep.ok = rep.counter_after != rep.counter_resume;
    vm_free(d.v);
    return rep;
}

/* ---------------------------------------------------------------- modes */

static int mode_migrate(const options *o)
{
    int data[MAX_CHANNELS][2], back[2], rd[MAX_CHANNELS], wr[MAX_CHANNELS];
    for (int k = 0; k < o->channels; k++) { /* a pipe per channel */
        if (pipe2(data[k], O_CLOEXEC) < 0)
            die("pipe: %s", strerror(errno));
        rd[k] = data[k][0];
        wr[k] = data[k][1];
    }
    if (pipe2(back, O_CLOEXEC) < 0)
        die("pipe: %s", strerror(errno));
    fflush(msg);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        prog = "kvm-migrate (destination)";
        for (int k = 0; k < o->channels; k++)
            close(wr[k]);
        close(back[0]);
        report rep = run_dest(o, rd);
        if (write(back[1], &rep, sizeof rep) != (ssize_t)sizeof rep)
            die("cannot report to the source process");
        fflush(msg);
        _exit(0);
    }
    for (int k = 0; k < o->channels; k++)
        close(rd[k]);
    close(back[1]);
    uint64_t md, cd, rounds;
    uint64_t paused_at = run_source(o, wr, &md, &cd, &rounds);
    for (int k = 0; k < o->channels; k++)
        close(wr[k]);
    fflush(msg);

    report rep;
    ssize_t k = read(back[0], &rep, sizeof rep);
    int status;
    waitpid(pid, &status, 0);
    if (k != (ssize_t)sizeof rep || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the destination process failed");
    /* Downtime is pause to "could run"; the digests taken before resuming
     * are this program's checks, not part of a migration. */
    fprintf(msg, "migration: downtime %.1f ms (vCPU paused on the source until its state was "
            "in place on the destination; checks took %.1f ms more before it resumed)\n",
            (double)(rep.ready_ns - paused_at) / 1e6,
            (double)(rep.resume_ns - rep.ready_ns) / 1e6);
    int bad = 0;
    if (rep.mem_digest != md) {
        fprintf(msg, "MISMATCH: guest memory at resume differs from the source's at pause\n");
        bad = 1;
    }
    if (rep.vcpu_digest != cd) {
        fprintf(msg, "MISMATCH: vCPU state at resume differs from the source's at pause\n");
        bad = 1;
    }
    if (!rep.ok) {
        fprintf(msg, "FAILED: the guest did not run on the destination (counter stayed at %u)\n",
               rep.counter_resume);
        bad = 1;
    }
    if (!bad)
        fprintf(msg, "migration: OK: memory and vCPU state equal, the guest runs on "
               "(%u -> %u)\n",
               rep.counter_resume, rep.counter_after);
    return bad;
}

/* TARGET or SOURCE of channel @k: the path itself for one channel, with
 * ".K" appended for more. */
static char *channel_path(const options *o, const char *path, int k)
{
    char *p = malloc(strlen(path) + 16);
    if (!p)
        die("out of memory");
    if (o->channels > 1)
        sprintf(p, "%s.%d", path, k);
    else
        strcpy(p, path);
    return p;
}

static int mode_send(const options *o, const char *target)
{
    signal(SIGPIPE, SIG_IGN);
    int fd[MAX_CHANNELS];
    char *tmp[MAX_CHANNELS] = {NULL}, *path[MAX_CHANNELS] = {NULL};
    if (strcmp(target, "-") == 0 && o->channels > 1)
        die("standard output carries one channel, not %d", o->channels);
    for (int k = 0; k < o->channels; k++) {
        if (strcmp(target, "-") == 0)
            fd[k] = STDOUT_FILENO;
        else if (strncmp(target, "unix:", 5) == 0)
            fd[k] = connect_unix(target + 5); /* one connection per channel */
        else
            fd[k] = create_beside(path[k] = channel_path(o, target, k), o->force, &tmp[k]);
    }
    if (fd[0] == STDOUT_FILENO)
        msg = stderr;
    uint64_t md, cd, rounds;
    run_source(o, fd, &md, &cd, &rounds);
    for (int k = 0; k < o->channels; k++) {
        if (tmp[k])
            commit_beside(fd[k], tmp[k], path[k]);
        else
            close(fd[k]);
        free(path[k]);
    }
    return 0;
}

static int mode_receive(const options *o, const char *source)
{
    int fd[MAX_CHANNELS];
    if (strcmp(source, "-") == 0 && o->channels > 1)
        die("standard input carries one channel, not %d", o->channels);
    if (strncmp(source, "unix:", 5) == 0) {
        accept_unix(source + 5, fd, o->channels);
    } else {
        for (int k = 0; k < o->channels; k++) {
            if (strcmp(source, "-") == 0) {
                fd[k] = STDIN_FILENO;
                continue;
            }
            char *path = channel_path(o, source, k);
            if ((fd[k] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                die("cannot open %s: %s", path, strerror(errno));
            free(path);
        }
    }
    report rep = run_dest(o, fd);
    return rep.ok ? 0 : 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kvm-migrate migrate [options]\n"
               "       kvm-migrate send [options] TARGET     (a file, - or unix:PATH)\n"
               "       kvm-migrate receive [options] SOURCE  (a file, - or unix:PATH)\n"
               "Live pre-copy migration of a small KVM guest through libmigstream. \"migrate\"\n"
               "runs the source and the destination as two processes joined by a pipe and\n"
               "checks that memory and vCPU state at resume equal the source's at pause.\n"
               "\n"
               "Source options (migrate, send):\n"
               "  --mem MIB          guest memory (default 256)\n"
               "  --rate PAGES       pages the guest writes per second (default 4000)\n"
               "  --working-set N    pages it writes into, from 1 MiB up (default 2048)\n"
               "  --max-rounds N     rounds before stop-and-copy, round 0 included (default 16)\n"
               "  --threshold N      stop and copy once a round found at most N dirty pages\n"
               "                     (default 64)\n"
               "  --warmup MS        run the guest this long before round 0 (default 200)\n"
               "  --compress LEVEL   zstd level of page data (default 0: none)\n"
               "  --out FILE         also write the stream to FILE (migrate); with channels,\n"
               "                     part K to FILE.K\n"
               "  --force            replace FILE or TARGET if it exists\n"
               "Both sides (they must agree):\n"
               "  --channels N       migrate over N connections at once, a thread each side per\n"
               "                     connection, each carrying one part of the migration\n"
               "                     (default 1: one stream); TARGET and SOURCE files are then\n"
               "                     FILE.0 .. FILE.N-1, unix:PATH takes N connections\n"
               "Destination options (migrate, receive):\n"
               "  --run MS           run the resumed guest this long (default 300)\n"
               "  --max-mem MIB      largest guest memory accepted (default 4096)\n"
               "\n"
               "Exit status: 0 success; 1 failure (also: KVM unusable, exit 1 with the reason;\n"
               "2 for usage errors).\n");
}

static uint64_t num(const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants a number from %" PRIu64 " to %" PRIu64 ", not '%s'\n",
                prog, opt, lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *mode = argv[1];
    options o = {.mem_mib = 256,
                 .rate = 4000,
                 .working_set = 2048,
                 .max_rounds = 16,
                 .threshold = 64,
                 .warmup_ms = 200,
                 .run_ms = 300,
                 .max_mem_mib = 4096,
                 .channels = 1};
    const char *arg = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--force") == 0) {
            o.force = true;
            takes = false;
        } else if (a[0] == '-' && a[1] == '-' && !val) {
            fprintf(stderr, "%s: %s wants a value\n", prog, a);
            return 2;
        } else if (strcmp(a, "--mem") == 0) {
            o.mem_mib = num(a, val, 2, 1u << 20);
        } else if (strcmp(a, "--rate") == 0) {
            o.rate = (uint32_t)num(a, val, 1, 1u << 30);
        } else if (strcmp(a, "--working-set") == 0) {
            o.working_set = (uint32_t)num(a, val, 1, UINT32_MAX);
        } else if (strcmp(a, "--max-rounds") == 0) {
            o.max_rounds = (uint32_t)num(a, val, 2, 1000000);
        } else if (strcmp(a, "--threshold") == 0) {
            o.threshold = (uint32_t)num(a, val, 0, UINT32_MAX);
        } else if (strcmp(a, "--warmup") == 0) {
            o.warmup_ms = (uint32_t)num(a, val, 0, 3600000);
        } else if (strcmp(a, "--run") == 0) {
            o.run_ms = (uint32_t)num(a, val, 1, 3600000);
        } else if (strcmp(a, "--max-mem") == 0) {
            o.max_mem_mib = num(a, val, 2, 1u << 20);
        } else if (strcmp(a, "--compress") == 0) {
            o.compress = (int)num(a, val, 0, 19);
        } else if (strcmp(a, "--channels") == 0) {
            o.channels = (int)num(a, val, 1, MAX_CHANNELS);
        } else if (strcmp(a, "--out") == 0) {
            o.out = val;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "%s: unknown option %s (see --help)\n", prog, a);
            return 2;
        } else if (!arg) {
            arg = a;
            takes = false;
        } else {
            fprintf(stderr, "%s: unexpected argument %s\n", prog, a);
            return 2;
        }
        if (takes)
            i++;
    }
    /* The working set starts at 1 MiB and must fit in guest memory. */
    if ((uint64_t)GUEST_WORK + (uint64_t)o.working_set * PAGE > o.mem_mib << 20) {
        fprintf(stderr, "%s: a working set of %u pages does not fit in %" PRIu64 " MiB\n", prog,
                o.working_set, o.mem_mib);
        return 2;
    }
    bool is_migrate = strcmp(mode, "migrate") == 0;
    if (!is_migrate && strcmp(mode, "send") != 0 && strcmp(mode, "receive") != 0) {
        fprintf(stderr, "%s: unknown mode '%s' (migrate, send or receive)\n", prog, mode);
        return 2;
    }
    if (is_migrate == (arg != NULL)) {
        fprintf(stderr, "%s: %s\n", prog,
                is_migrate ? "migrate takes no TARGET or SOURCE" : "TARGET or SOURCE missing");
        return 2;
    }
    char why[200];
    if (!vm_kvm_usable(why, sizeof why)) {
        fprintf(stderr, "%s: KVM is not usable here: %s\n", prog, why);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    msg = stdout;
    if (is_migrate)
        return mode_migrate(&o);
    if (strcmp(mode, "send") == 0)
        return mode_send(&o, arg);
    return mode_receive(&o, arg);
}
