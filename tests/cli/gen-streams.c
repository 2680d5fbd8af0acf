/*
 * Writes the sample streams the tool tests run on, deterministically (fixed
 * PRNG seed, fixed inputs), through the public API only:
 *
 *   gen-streams DIR           writes every sample below into DIR
 *   gen-streams --big GIB     writes a GIB GiB guest (mostly zero, one data
 *                             page per MiB) to standard output, for the
 *                             bounded-memory tests over a pipe
 *
 * Samples (all describe the same small guest unless said otherwise):
 *   basic.mig             2 regions, DATA/ZERO mix, 2 devices, INFO
 *   rebatched.mig         same final state: tiny batches, pages in reverse
 *                         chunks, devices in the other order
 *   compressed.mig        same final state, zstd level 3
 *   rewritten.mig         same final state, but some pages sent twice (first
 *                         with stale contents)
 *   changed.mig           pages 5 and 6 of pc.ram changed, page 100 now zero,
 *                         page 900 now data, vCPU rip changed
 *   unknown-optional.mig  basic plus a private record 0x8001 (no must-understand)
 *   must-understand.mig   basic plus a private record 0x8002 marked
 *                         must-understand
 *   corrupt.mig           basic with one byte of page data flipped
 *   truncated.mig         basic without its END record
 *   empty-guest.mig       no regions, no devices
 *   partial.mig           basic without pc.ram pages 1000..1023 (never sent:
 *                         missing)
 *   small.mig             a different, tiny guest (fuzzing seed): 16 pages
 *                         of 4 KiB plus a 2 MiB-page region, zstd level 1,
 *                         a private optional record, 2 devices
 *
 * Format 1.2, migrations in parts (see live_parts() and clash()):
 *   parts.0.mig .. parts.2.mig  live.mig's migration in 3 parts: the same
 *                         final state, pages moving between parts from
 *                         round to round
 *   clash.0.mig, clash.1.mig    2 parts that both send pages 8 and 9 in
 *                         round 0 and device cpu/0 in round 1
 *   other.1.mig           part 1 of another migration (another id)
 *   halves.0.mig, halves.1.mig  a migration of pages only (DATA, ZERO, FILL:
 *                         what every export carries) in 2 parts, the low
 *                         half of ram in part 0 in round 0, in part 1 in
 *                         round 1
 *   halves.mig            the same migration in one stream, its records in
 *                         the order the merging reader reads the parts'
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <migstream/migstream.h>

#define RAM_PAGES 1024u
#define VRAM_PAGES 64u
#define PS 4096u

static uint64_t rng_state;
static uint64_t rng(void)
{
    /* splitmix64: tiny, fixed, the same everywhere */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct guest {
    uint8_t ram[RAM_PAGES * PS];
    uint8_t vram[VRAM_PAGES * PS];
    uint64_t rip;
} guest;

static void make_guest(guest *g, int changed)
{
    rng_state = 42;
    memset(g, 0, sizeof *g);
    for (unsigned p = 0; p < RAM_PAGES; p++) {
        uint64_t r = rng();
        uint8_t *pg = g->ram + (size_t)p * PS;
        if (r % 10 < 7)
            continue; /* zero */
        if (r % 10 == 7) {
            pg[(r >> 8) % PS] = (uint8_t)(r >> 20 | 1); /* one non-zero byte */
            continue;
        }
        for (unsigned k = 0; k < PS; k += 8) {
            uint64_t v = rng();
            memcpy(pg + k, &v, 8);
        }
    }
    g->vram[3 * PS + 17] = 0x55;
    g->rip = 0xfff0;
    if (changed) {
        g->ram[5 * PS] ^= 0xff;
        g->ram[6 * PS + 4095] ^= 0x01;
        memset(g->ram + 100 * PS, 0, PS);
        memset(g->ram + 900 * PS, 0xcc, PS);
        g->rip = 0x7c00;
    }
}

/* Minimal CBOR for the two device states (shortest forms). */
static size_t cbor_head(uint8_t *p, unsigned major, uint64_t v)
{
    if (v < 24) {
        p[0] = (uint8_t)(major << 5 | v);
        return 1;
    }
    int n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
    p[0] = (uint8_t)(major << 5 | (n == 1 ? 24 : n == 2 ? 25 : n == 4 ? 26 : 27));
    for (int i = 0; i < n; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return 1 + (size_t)n;
}

static size_t cbor_text(uint8_t *p, const char *s)
{
    size_t n = cbor_head(p, 3, strlen(s));
    memcpy(p + n, s, strlen(s));
    return n + strlen(s);
}

/* {"rip": rip, "rax": 1, "flags": [true, false]} */
static size_t cpu_state(uint8_t *p, uint64_t rip)
{
    size_t n = cbor_head(p, 5, 3);
    n += cbor_text(p + n, "rip");
    n += cbor_head(p + n, 0, rip);
    n += cbor_text(p + n, "rax");
    n += cbor_head(p + n, 0, 1);
    n += cbor_text(p + n, "flags");
    n += cbor_head(p + n, 4, 2);
    p[n++] = 0xf5;
    p[n++] = 0xf4;
    return n;
}

/* {"mac": h'525400123456', "queues": 2} */
static size_t net_state(uint8_t *p)
{
    static const uint8_t mac[] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    size_t n = cbor_head(p, 5, 2);
    n += cbor_text(p + n, "mac");
    n += cbor_head(p + n, 2, sizeof mac);
    memcpy(p + n, mac, sizeof mac);
    n += sizeof mac;
    n += cbor_text(p + n, "queues");
    n += cbor_head(p + n, 0, 2);
    return n;
}

enum variant { BASIC, REBATCHED, COMPRESSED, REWRITTEN, CHANGED, UNKNOWN_OPT, MUST, EMPTY, PARTIAL };

static void die(ms_writer *w, const char *what)
{
    fprintf(stderr, "gen-streams: %s: %s\n", what, w ? ms_writer_errmsg(w) : "failed");
    exit(2);
}

static void write_stream(const char *path, enum variant v)
{
    static guest g;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "gen-streams";
    o.writer_version = "1";
    o.machine = "pc-q35-7.2";
    if (v == REBATCHED)
        o.batch_bytes = 16384;
    if (v == COMPRESSED)
        o.compress_level = 3;
    ms_writer *w = ms_writer_new_fd(&o, fd);
    if (!w)
        die(NULL, "writer");
    if (v != EMPTY) {
        make_guest(&g, v == CHANGED);
        ms_region ram = {.id = 0, .name = "pc.ram", .has_gpa = true, .gpa = 0,
                         .size = RAM_PAGES * PS, .page_size = PS};
        ms_region vram = {.id = 1, .name = "vga.vram", .has_gpa = false,
                          .size = VRAM_PAGES * PS, .page_size = PS};
        if (ms_writer_add_region(w, &ram) || ms_writer_add_region(w, &vram))
            die(w, "regions");
        if (v == UNKNOWN_OPT && ms_writer_record(w, 0x8001, 0, "hello", 5))
            die(w, "record");
        if (v == MUST && ms_writer_record(w, 0x8002, MS_RECORD_MUST_UNDERSTAND, "stop", 4))
            die(w, "record");
        if (v == REBATCHED) {
            for (int c = 3; c >= 0; c--)
                if (ms_writer_pages(w, 0, c * 256u, 256, g.ram + (size_t)c * 256 * PS))
                    die(w, "pages");
        } else {
            if (v == REWRITTEN) {
                static uint8_t stale[16 * PS];
                memset(stale, 0x77, sizeof stale);
                if (ms_writer_pages(w, 0, 200, 16, stale))
                    die(w, "pages");
            }
            if (ms_writer_pages(w, 0, 0, v == PARTIAL ? 1000 : RAM_PAGES, g.ram))
                die(w, "pages");
        }
        if (ms_writer_pages(w, 1, 0, VRAM_PAGES, g.vram))
            die(w, "pages");
        uint8_t cpu[64], net[64];
        size_t nc = cpu_state(cpu, g.rip), nn = net_state(net);
        if (v == REBATCHED) {
            if (ms_writer_device(w, "pci0/0000:00:02.0/virtio-net", 0, "virtio-net", 2, net, nn) ||
                ms_writer_device(w, "cpu", 0, "x86-cpu", 1, cpu, nc))
                die(w, "device");
        } else {
            if (ms_writer_device(w, "cpu", 0, "x86-cpu", 1, cpu, nc) ||
                ms_writer_device(w, "pci0/0000:00:02.0/virtio-net", 0, "virtio-net", 2, net, nn))
                die(w, "device");
        }
    }
    if (ms_writer_finish(w, NULL))
        die(w, "finish");
    ms_writer_free(w);
    close(fd);
}

/* Copies SRC to DST, then applies a damage: flip the byte at FLIP (if >= 0)
 * and cut the file to CUT bytes (if >= 0). */
static void damaged_copy(const char *src, const char *dst, long flip, long cut)
{
    FILE *f = fopen(src, "rb");
    if (!f) {
        perror(src);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        exit(2);
    fclose(f);
    if (flip >= 0)
        b[flip] ^= 0x01;
    if (cut >= 0)
        n = cut;
    f = fopen(dst, "wb");
    if (!f || fwrite(b, 1, (size_t)n, f) != (size_t)n)
        exit(2);
    fclose(f);
    free(b);
}

/* Byte offsets of the first DATA page and of END in a stream, found with
 * the reader. */
static void locate(const char *path, long *first_data, long *end)
{
    int fd = open(path, O_RDONLY);
    ms_reader *r = ms_reader_new_fd(NULL, fd);
    const ms_record *rec;
    *first_data = -1;
    while (ms_reader_next(r, &rec) > 0) {
        if (rec->type == MS_REC_PAGES && *first_data < 0 && rec->pages.data_size)
            *first_data = (long)(rec->offset + 16 + (rec->length - rec->pages.data_size));
        if (rec->type == MS_REC_END)
            *end = (long)rec->offset;
    }
    ms_reader_free(r);
    close(fd);
}

static void small(const char *path)
{
    static uint8_t ram[16 * PS], huge[2 << 20];
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "gen-streams";
    o.writer_version = "1";
    o.description = "small seed";
    o.compress_level = 1;
    ms_writer *w = ms_writer_new_fd(&o, fd);
    ms_region r0 = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = sizeof ram,
                    .page_size = PS};
    ms_region r1 = {.id = 7, .name = "huge", .has_gpa = true, .gpa = 1ull << 32,
                    .size = 4u << 20, .page_size = 2u << 20};
    for (unsigned p = 0; p < 16; p += 3)
        memset(ram + p * PS, 'a' + (int)p, PS);
    huge[12345] = 1;
    uint8_t cpu[64];
    size_t nc = cpu_state(cpu, 0x1000);
    if (!w || ms_writer_add_region(w, &r0) || ms_writer_add_region(w, &r1) ||
        ms_writer_record(w, 0x8001, 0, "seed", 4) || ms_writer_pages(w, 0, 0, 16, ram) ||
        ms_writer_pages(w, 7, 1, 1, huge) || ms_writer_zero_pages(w, 7, 0, 1) ||
        ms_writer_device(w, "cpu", 0, "x86-cpu", 1, cpu, nc) ||
        ms_writer_device(w, "cpu", 1, "x86-cpu", 1, cpu, nc) || ms_writer_finish(w, NULL))
        die(w, "small");
    ms_writer_free(w);
    close(fd);
}

/* Format 1.1 samples: a live migration in rounds (live.mig), the same
 * final guest sent in one pass without rounds (live-flat.mig), the guest
 * with a few differences (live-changed.mig), and a stream whose IN_PLACE
 * references overlap (in-place-overlap.mig). */
enum live_variant { LIVE, LIVE_FLAT, LIVE_CHANGED, IN_PLACE_OVERLAP };

static void fill_page(uint8_t *p, uint64_t word)
{
    for (unsigned k = 0; k < PS; k += 8)
        for (unsigned b = 0; b < 8; b++)
            p[k + b] = (uint8_t)(word >> (8 * b));
}

static void live(const char *path, enum live_variant v)
{
    enum { PAGES = 64 };
    static uint8_t ram[PAGES * PS];
    static uint8_t slot[256];
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "gen-streams";
    o.writer_version = "1";
    o.machine = "pc-q35-7.2";
    o.features = MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE |
                 MS_FEATURE_OVERLAYS;
    ms_writer *w = ms_writer_new_fd(&o, fd);
    ms_region r0 = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = sizeof ram,
                    .page_size = PS};
    ms_region r1 = {.id = 1, .name = "vram", .size = 4 * PS, .page_size = PS};
    if (!w || ms_writer_add_region(w, &r0) || ms_writer_add_region(w, &r1))
        die(w, "live regions");
    /* Round 0's guest: text in pages 0..15 (every third one), 0xcc fill in
     * 16..19 (freed init memory), zero elsewhere. */
    memset(ram, 0, sizeof ram);
    for (unsigned p = 0; p < 16; p += 3)
        for (unsigned k = 0; k < PS; k++)
            ram[p * PS + k] = (uint8_t)("guest memory "[k % 13] + p);
    for (unsigned p = 16; p < 20; p++)
        fill_page(ram + p * PS, 0xccccccccccccccccull);
    uint64_t ref = 1ull << 32;
    if (v == IN_PLACE_OVERLAP) {
        /* Two regions point at overlapping bytes of the in-place space. */
        if (ms_writer_in_place(w, 0, 0, 8, ref) || ms_writer_in_place(w, 1, 0, 4, ref + 4 * PS) ||
            ms_writer_finish(w, NULL))
            die(w, "in-place-overlap");
        ms_writer_free(w);
        close(fd);
        return;
    }
    uint8_t cpu[64];
    size_t nc = cpu_state(cpu, 0x2000);
    bool rounds = v != LIVE_FLAT;
    if (rounds && ms_writer_round(w, &(ms_round){.number = 0}))
        die(w, "round 0");
    /* Round 0 sends everything but the hinted-free pages 40..47 and the
     * pages 56..59 that stay in place. */
    if (ms_writer_pages(w, 0, 0, 40, ram) || ms_writer_discard(w, 0, 40, 8) ||
        ms_writer_pages(w, 0, 48, 8, ram + 48 * PS) || ms_writer_in_place(w, 0, 56, 4, ref) ||
        ms_writer_pages(w, 0, 60, 4, ram + 60 * PS) || ms_writer_zero_pages(w, 1, 0, 4))
        die(w, "round 0 pages");
    /* Between rounds the guest writes pages 1 and 2, reuses hinted page 41,
     * zeroes page 6 and fills page 3 with a 64-bit pattern. */
    memset(ram + 1 * PS, 0x11, 100);
    memset(ram + 2 * PS + 7, 0x22, 50);
    if (v != LIVE_CHANGED)
        memset(ram + 41 * PS, 0x41, PS / 2);
    memset(ram + 6 * PS, 0, PS);
    fill_page(ram + 3 * PS, v == LIVE_CHANGED ? 0xfeedfacecafef00dull : 0xdeadbeefull);
    uint64_t dirty = (1ull << 1) | (1ull << 2) | (1ull << 3) | (1ull << 6) |
                     (v != LIVE_CHANGED ? 1ull << 41 : 0);
    ms_round round1 = {.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = PS,
                       .has_dirty = true, .dirty = (uint64_t)__builtin_popcountll(dirty)};
    if (rounds) {
        if (ms_writer_round(w, &round1) || ms_writer_dirty(w, 0, &dirty, PS, ram))
            die(w, "round 1");
    } else {
        /* One pass over the final guest: the same final state. */
        for (unsigned p = 0; p < 64; p++)
            if (dirty >> p & 1 && ms_writer_pages(w, 0, p, 1, ram + p * PS))
                die(w, "flat pages");
    }
    /* The last round, guest stopped: page 9 written, page 50 hinted free. */
    memset(ram + 9 * PS + 4000, 0x99, 96);
    ms_round round2 = {.number = 2, .tracker = MS_TRACKER_BITMAP, .granularity = PS,
                       .has_dirty = true, .dirty = 1, .final = true};
    uint64_t last = 1ull << 9;
    if (rounds ? ms_writer_round(w, &round2) || ms_writer_dirty(w, 0, &last, PS, ram)
               : ms_writer_pages(w, 0, 9, 1, ram + 9 * PS))
        die(w, "round 2");
    if (ms_writer_discard(w, 0, 50, 1))
        die(w, "discard");
    ms_overlay tsc = {.gfn = 10, .kind = MS_OVERLAY_REFERENCE_TSC};
    tsc.tsc.has_frequency = true;
    tsc.tsc.frequency = v == LIVE_CHANGED ? 3000000000u : 2500000000u;
    ms_overlay hc = {.gfn = 10, .kind = MS_OVERLAY_HYPERCALL};
    hc.hypercall.vendor = 1;
    ms_overlay msg = {.gfn = 20, .kind = MS_OVERLAY_SYNIC_MESSAGE};
    slot[0] = 1;  /* message type */
    slot[4] = 16; /* payload size */
    memset(slot + 16, 0x5a, 16);
    msg.synic.vp = 0;
    msg.synic.slot_mask = 1u << 2;
    msg.synic.slot[2] = slot;
    if (ms_writer_overlay(w, &tsc) || ms_writer_overlay(w, &hc) || ms_writer_overlay(w, &msg) ||
        ms_writer_device(w, "cpu", 0, "x86-cpu", 1, cpu, nc) || ms_writer_finish(w, NULL))
        die(w, "live end");
    ms_writer_free(w);
    close(fd);
}

/* live.mig's migration (LIVE) in 3 parts, written into @dir as
 * parts.K.mig: every part starts the same rounds; a page goes to part
 * (page / 22 + round) % 3, so that pages 1..6 come in part 1 in round 1
 * after part 0 sent them in round 0; vram, declared by part 2 only, is
 * part 2's; the overlays are part 1's, the device part 0's. */
static void live_parts(const char *dir)
{
    enum { PAGES = 64, N = 3 };
    static uint8_t ram[PAGES * PS];
    static uint8_t slot[256];
    ms_writer *w[N];
    int fd[N];
    for (uint32_t k = 0; k < N; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/parts.%u.mig", dir, k);
        fd[k] = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.writer_name = "gen-streams";
        o.writer_version = "1";
        o.machine = k == 0 ? "pc-q35-7.2" : NULL;
        o.features =
            MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE | MS_FEATURE_OVERLAYS;
        ms_part part = {.migration_id = "gen-streams:live", .index = k, .count = N};
        o.part = &part;
        w[k] = ms_writer_new_fd(&o, fd[k]);
        ms_region r0 = {
            .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = sizeof ram, .page_size = PS};
        ms_region r1 = {.id = 1, .name = "vram", .size = 4 * PS, .page_size = PS};
        if (ms_writer_status(w[k]) || ms_writer_add_region(w[k], &r0) ||
            (k == 2 && ms_writer_add_region(w[k], &r1)))
            die(w[k], "parts regions");
    }
#define PART_OF(round, page) w[((page) / 22 + (round)) % N]
    memset(ram, 0, sizeof ram);
    for (unsigned p = 0; p < 16; p += 3)
        for (unsigned k = 0; k < PS; k++)
            ram[p * PS + k] = (uint8_t)("guest memory "[k % 13] + p);
    for (unsigned p = 16; p < 20; p++)
        fill_page(ram + p * PS, 0xccccccccccccccccull);
    uint8_t cpu[64];
    size_t nc = cpu_state(cpu, 0x2000);
    for (uint32_t k = 0; k < N; k++)
        if (ms_writer_round(w[k], &(ms_round){.number = 0}))
            die(w[k], "parts round 0");
    /* Round 0: as live.mig's, a page at a time, each to its part. */
    for (unsigned p = 0; p < PAGES; p++) {
        ms_writer *x = PART_OF(0, p);
        int rc = p >= 40 && p < 48   ? ms_writer_discard(x, 0, p, 1)
                 : p >= 56 && p < 60 ? ms_writer_in_place(x, 0, p, 1, (1ull << 32) + (p - 56) * PS)
                                     : ms_writer_pages(x, 0, p, 1, ram + p * PS);
        if (rc)
            die(x, "parts round 0 pages");
    }
    if (ms_writer_zero_pages(w[2], 1, 0, 4))
        die(w[2], "parts vram");
    memset(ram + 1 * PS, 0x11, 100);
    memset(ram + 2 * PS + 7, 0x22, 50);
    memset(ram + 41 * PS, 0x41, PS / 2);
    memset(ram + 6 * PS, 0, PS);
    fill_page(ram + 3 * PS, 0xdeadbeefull);
    static const unsigned dirty1[] = {1, 2, 3, 6, 41};
    ms_round round1 = {.number = 1,
                       .tracker = MS_TRACKER_BITMAP,
                       .granularity = PS,
                       .has_dirty = true,
                       .dirty = 5};
    for (uint32_t k = 0; k < N; k++)
        if (ms_writer_round(w[k], &round1))
            die(w[k], "parts round 1");
    for (size_t i = 0; i < sizeof dirty1 / sizeof dirty1[0]; i++)
        if (ms_writer_pages(PART_OF(1, dirty1[i]), 0, dirty1[i], 1, ram + dirty1[i] * PS))
            die(PART_OF(1, dirty1[i]), "parts round 1 pages");
    memset(ram + 9 * PS + 4000, 0x99, 96);
    ms_round round2 = {.number = 2,
                       .tracker = MS_TRACKER_BITMAP,
                       .granularity = PS,
                       .has_dirty = true,
                       .dirty = 1,
                       .final = true};
    for (uint32_t k = 0; k < N; k++)
        if (ms_writer_round(w[k], &round2))
            die(w[k], "parts round 2");
    if (ms_writer_pages(PART_OF(2, 9), 0, 9, 1, ram + 9 * PS) ||
        ms_writer_discard(PART_OF(2, 50), 0, 50, 1))
        die(w[0], "parts round 2 pages");
#undef PART_OF
    ms_overlay tsc = {.gfn = 10, .kind = MS_OVERLAY_REFERENCE_TSC};
    tsc.tsc.has_frequency = true;
    tsc.tsc.frequency = 2500000000u;
    ms_overlay hc = {.gfn = 10, .kind = MS_OVERLAY_HYPERCALL};
    hc.hypercall.vendor = 1;
    ms_overlay msg = {.gfn = 20, .kind = MS_OVERLAY_SYNIC_MESSAGE};
    slot[0] = 1;
    slot[4] = 16;
    memset(slot + 16, 0x5a, 16);
    msg.synic.slot_mask = 1u << 2;
    msg.synic.slot[2] = slot;
    if (ms_writer_overlay(w[1], &tsc) || ms_writer_overlay(w[1], &hc) ||
        ms_writer_overlay(w[1], &msg) || ms_writer_device(w[0], "cpu", 0, "x86-cpu", 1, cpu, nc))
        die(w[1], "parts end");
    for (uint32_t k = 0; k < N; k++) {
        if (ms_writer_finish(w[k], NULL))
            die(w[k], "parts finish");
        ms_writer_free(w[k]);
        close(fd[k]);
    }
}

/* Two parts that break the rules a merging reader leaves to validators
 * (FORMAT.md section 2.1): clash.0.mig and clash.1.mig both send ram pages
 * 8 and 9 in round 0 and device cpu/0 in round 1; and other.1.mig, part 1
 * of another migration. */
static void clash(const char *dir)
{
    static uint8_t ram[16 * PS];
    uint8_t cpu[64];
    size_t nc = cpu_state(cpu, 0x3000);
    memset(ram, 0x77, sizeof ram);
    for (uint32_t k = 0; k < 3; k++) {
        char path[4096];
        snprintf(path, sizeof path, k < 2 ? "%s/clash.%u.mig" : "%s/other.1.mig", dir, k);
        int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.writer_name = "gen-streams";
        o.writer_version = "1";
        ms_part part = {.migration_id = "gen-streams:clsh", .index = k == 2 ? 1 : k, .count = 2};
        if (k == 2)
            part.migration_id[15] = '!';
        o.part = &part;
        ms_writer *w = ms_writer_new_fd(&o, fd);
        ms_region r = {
            .id = 0, .name = "ram", .has_gpa = true, .size = sizeof ram, .page_size = PS};
        uint64_t first = k % 2 ? 8 : 0, count = k % 2 ? 8 : 10;
        if (ms_writer_status(w) || ms_writer_add_region(w, &r) ||
            ms_writer_round(w, &(ms_round){.number = 0}) ||
            ms_writer_pages(w, 0, first, count, ram + first * PS) ||
            ms_writer_round(w, &(ms_round){.number = 1, .final = true}) ||
            ms_writer_device(w, "cpu", 0, "x86-cpu", 1, cpu, nc) || ms_writer_finish(w, NULL))
            die(w, "clash");
        ms_writer_free(w);
        close(fd);
    }
}

/* halves.0.mig and halves.1.mig, and halves.mig, the same calls on one
 * writer: part 0's pages of a round before part 1's, as the merging reader
 * hands them out (open.h). */
static void halves(const char *dir)
{
    enum { PAGES = 32, N = 3 };
    static uint8_t ram[PAGES * PS];
    ms_writer *w[N];
    int fd[N];
    for (uint32_t k = 0; k < N; k++) {
        char path[4096];
        snprintf(path, sizeof path, k < 2 ? "%s/halves.%u.mig" : "%s/halves.mig", dir, k);
        fd[k] = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.writer_name = "gen-streams";
        o.writer_version = "1";
        o.machine = k != 1 ? "pc-q35-7.2" : NULL;
        o.features = MS_FEATURE_FILL;
        ms_part part = {.migration_id = "gen-streams:half", .index = k, .count = 2};
        o.part = k < 2 ? &part : NULL;
        w[k] = ms_writer_new_fd(&o, fd[k]);
        ms_region r = {
            .id = 0, .name = "pc.ram", .has_gpa = true, .size = sizeof ram, .page_size = PS};
        if (ms_writer_status(w[k]) || ms_writer_add_region(w[k], &r))
            die(w[k], "halves regions");
    }
    for (unsigned p = 0; p < PAGES; p += 3)
        for (unsigned k = 0; k < PS; k++)
            ram[p * PS + k] = (uint8_t)("half of it "[k % 11] + p);
    fill_page(ram + 4 * PS, 0x5a5a5a5a5a5a5a5aull);
    /* Part K (and the single stream) sends pages FIRST..FIRST+16 of the
     * round in which (page / 16 + round) % 2 is K. */
    for (uint32_t round = 0; round < 2; round++) {
        ms_round rd = {.number = round, .final = round == 1};
        for (uint32_t k = 0; k < N; k++)
            if (ms_writer_round(w[k], &rd))
                die(w[k], "halves round");
        for (uint32_t k = 0; k < 2; k++) {
            unsigned first = (k + round) % 2 * 16;
            if (ms_writer_pages(w[k], 0, first, 16, ram + first * PS) ||
                ms_writer_pages(w[2], 0, first, 16, ram + first * PS))
                die(w[k], "halves pages");
        }
        memset(ram + 7 * PS, 0x77, 64);
        memset(ram + 20 * PS, 0, PS);
    }
    for (uint32_t k = 0; k < N; k++) {
        if (ms_writer_finish(w[k], NULL))
            die(w[k], "halves finish");
        ms_writer_free(w[k]);
        close(fd[k]);
    }
}

static void big(unsigned gib)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "gen-streams";
    o.writer_version = "1";
    ms_writer *w = ms_writer_new_fd(&o, STDOUT_FILENO);
    uint64_t pages = (uint64_t)gib << 18;
    ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = pages * PS,
                   .page_size = PS};
    static uint8_t chunk[256 * PS]; /* 1 MiB: first page data, rest zero */
    memset(chunk, 0x5a, PS);
    if (ms_writer_add_region(w, &r))
        die(w, "region");
    for (uint64_t p = 0; p < pages; p += 256)
        if (ms_writer_pages(w, 0, p, 256, chunk))
            die(w, "pages");
    if (ms_writer_finish(w, NULL))
        die(w, "finish");
    ms_writer_free(w);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--big") == 0) {
        big((unsigned)atoi(argv[2]));
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: gen-streams DIR | gen-streams --big GIB\n");
        return 2;
    }
    static const struct {
        const char *name;
        enum variant v;
    } samples[] = {
        {"basic.mig", BASIC},           {"rebatched.mig", REBATCHED},
        {"compressed.mig", COMPRESSED}, {"rewritten.mig", REWRITTEN},
        {"changed.mig", CHANGED},       {"unknown-optional.mig", UNKNOWN_OPT},
        {"must-understand.mig", MUST},  {"empty-guest.mig", EMPTY},
        {"partial.mig", PARTIAL},
    };
    char path[4096], path2[4096];
    mkdir(argv[1], 0755);
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], samples[i].name);
        write_stream(path, samples[i].v);
    }
    snprintf(path, sizeof path, "%s/small.mig", argv[1]);
    small(path);
    static const struct {
        const char *name;
        enum live_variant v;
    } lives[] = {
        {"live.mig", LIVE},
        {"live-flat.mig", LIVE_FLAT},
        {"live-changed.mig", LIVE_CHANGED},
        {"in-place-overlap.mig", IN_PLACE_OVERLAP},
    };
    for (size_t i = 0; i < sizeof lives / sizeof lives[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], lives[i].name);
        live(path, lives[i].v);
    }
    live_parts(argv[1]);
    clash(argv[1]);
    halves(argv[1]);
    long first_data = -1, end = -1;
    snprintf(path, sizeof path, "%s/basic.mig", argv[1]);
    locate(path, &first_data, &end);
    snprintf(path2, sizeof path2, "%s/corrupt.mig", argv[1]);
    damaged_copy(path, path2, first_data + 100, -1);
    snprintf(path2, sizeof path2, "%s/truncated.mig", argv[1]);
    damaged_copy(path, path2, -1, end);
    return 0;
}
