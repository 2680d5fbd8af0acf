/*
 * gen-golden: the golden streams of the compatibility corpus
 * (tests/compat/README.md), written through the public writer from fixed
 * inputs: no clock, no randomness but a seeded PRNG, nothing from the
 * machine.
 *
 *   gen-golden write SET DIR   writes every stream of SET ("v1.0", "v1.1",
 *                              "v1.2") into DIR; never replaces a file
 *   gen-golden list SET        prints SET's streams, one a line: the name,
 *                              then "zstd" (compressed pages) or "raw"
 *   gen-golden migrations SET  prints SET's migrations in parts, one a line:
 *                              the migration's name, then its part files in
 *                              part order
 *   gen-golden zstd-version    prints the libzstd version in use
 *   gen-golden same-content A B
 *                              reads two streams and compares what they
 *                              decode to, record by record: what a zstd
 *                              other than the corpus's must still produce
 *
 * A set is frozen once its files are committed: the inputs below must then
 * never change, since the compat test checks that the writer still turns
 * them into the committed bytes. A new format version adds a new set (and
 * new functions), and leaves these alone.
 *
 * Exit status: 0 done (same content); 1 different content; 2 usage, I/O or
 * library error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include <migstream/migstream.h>

#define PS 4096u

/* ------------------------------------------------------------------ chores */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen-golden: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void buf_add(buf *b, const void *p, size_t n)
{
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            die("out of memory");
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static int sink(void *ctx, const struct iovec *iov, int iovcnt)
{
    for (int i = 0; i < iovcnt; i++)
        buf_add(ctx, iov[i].iov_base, iov[i].iov_len);
    return 0;
}

/* Every writer call goes through this: a golden input the writer refuses
 * is a bug in this file or a break in the writer. */
static ms_writer *cur;
#define W(call)                                                                                    \
    do {                                                                                           \
        if ((call) != 0)                                                                           \
            die("%s:%d: %s: %s", __FILE__, __LINE__, #call, ms_writer_errmsg(cur));                \
    } while (0)

static ms_writer *start(ms_writer_options *o, buf *out)
{
    o->writer_name = "gen-golden";
    o->writer_version = "1";
    cur = ms_writer_new(o, sink, out);
    if (!cur)
        die("out of memory");
    if (ms_writer_status(cur))
        die("writer options: %s", ms_writer_errmsg(cur));
    return cur;
}

static void finish(ms_writer *w)
{
    W(ms_writer_finish(w, NULL));
    ms_writer_free(w);
    cur = NULL;
}

/* ------------------------------------------------------------ page makers */

static uint64_t rng_state;
static uint64_t rng(void)
{
    /* splitmix64: tiny, fixed, the same everywhere */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Incompressible bytes. */
static void page_random(uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k += 8) {
        uint64_t v = rng();
        memcpy(p + k, &v, 8);
    }
}

/* Repetitive text: compresses well, and is easy to spot in an image. */
static void page_text(uint8_t *p, size_t n, unsigned tag)
{
    size_t at = 0;
    for (unsigned line = 0; at < n; line++) {
        char s[64];
        int k = snprintf(s, sizeof s, "golden page %04u line %03u\n", tag, line);
        size_t take = (size_t)k < n - at ? (size_t)k : n - at;
        memcpy(p + at, s, take);
        at += take;
    }
}

/* Zero but one byte: DATA, not ZERO. */
static void page_byte(uint8_t *p, size_t n, size_t off, uint8_t v)
{
    memset(p, 0, n);
    p[off] = v;
}

/* One 8-byte word repeated, stored little-endian (FORMAT.md section 6.2). */
static void page_word(uint8_t *p, size_t n, uint64_t word)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (uint8_t)(word >> (8 * (k % 8)));
}

/* -------------------------------------------------------- CBOR for states */

/* Device state is the VMM's CBOR (FORMAT.md section 10, device-state
 * profile); these build it in preferred serialization. */
static void cb_head(buf *b, unsigned major, uint64_t v)
{
    uint8_t h[9];
    size_t n;
    if (v < 24) {
        h[0] = (uint8_t)(major << 5 | v);
        n = 1;
    } else {
        unsigned len = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
        h[0] = (uint8_t)(major << 5 | (len == 1 ? 24 : len == 2 ? 25 : len == 4 ? 26 : 27));
        for (unsigned i = 0; i < len; i++)
            h[1 + i] = (uint8_t)(v >> (8 * (len - 1 - i)));
        n = 1 + len;
    }
    buf_add(b, h, n);
}

static void cb_int(buf *b, int64_t v)
{
    if (v >= 0)
        cb_head(b, 0, (uint64_t)v);
    else
        cb_head(b, 1, (uint64_t)(-1 - v));
}

static void cb_text(buf *b, const char *s)
{
    cb_head(b, 3, strlen(s));
    buf_add(b, s, strlen(s));
}

static void cb_bytes(buf *b, const void *p, size_t n)
{
    cb_head(b, 2, n);
    buf_add(b, p, n);
}

static void cb_simple(buf *b, uint8_t v) /* F4 false, F5 true, F6 null */
{
    buf_add(b, &v, 1);
}

static void cb_f64(buf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    uint8_t h[9] = {0xfb};
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    buf_add(b, h, 9);
}

static void device(ms_writer *w, const char *path, uint32_t instance, const char *schema,
                   uint32_t version, buf *state)
{
    W(ms_writer_device(w, path, instance, schema, version, state->p, state->n));
    state->n = 0;
}

/* An x86 vCPU: registers by name, MSRs as [index, value] pairs, an FPU
 * stack of floats, flags, nested four deep. */
static void cpu_state(buf *b, unsigned vcpu, uint64_t rip)
{
    cb_head(b, 5, 6);
    cb_text(b, "regs");
    cb_head(b, 5, 3);
    cb_text(b, "rip");
    cb_head(b, 0, rip);
    cb_text(b, "rsp");
    cb_int(b, 0x7ffff000 - 0x1000 * (int64_t)vcpu);
    cb_text(b, "rflags");
    cb_int(b, 0x202);
    cb_text(b, "msrs");
    cb_head(b, 4, 3);
    static const uint64_t msr[3][2] = {
        {0xc0000080, 0xd01}, {0x1b, 0xfee00900}, {0xc0000100, 0xffffffff81000000}};
    for (int i = 0; i < 3; i++) {
        cb_head(b, 4, 2);
        cb_int(b, (int64_t)msr[i][0]);
        cb_head(b, 0, msr[i][1]);
    }
    cb_text(b, "fpu");
    cb_head(b, 5, 2);
    cb_text(b, "st");
    cb_head(b, 4, 3);
    cb_f64(b, 1.5);
    cb_f64(b, -0.0);
    buf_add(b, "\xf9\x7c\x00", 3); /* half-precision infinity */
    cb_text(b, "fcw");
    cb_int(b, 0x37f);
    cb_text(b, "halted");
    cb_simple(b, vcpu == 3 ? 0xf5 : 0xf4);
    cb_text(b, "apic");
    cb_head(b, 5, 2);
    cb_text(b, "id");
    cb_int(b, vcpu);
    cb_text(b, "lvt");
    cb_head(b, 4, 2);
    cb_head(b, 5, 1);
    cb_text(b, "timer");
    cb_head(b, 4, 2);
    cb_int(b, -1);
    cb_simple(b, 0xf6);
    cb_bytes(b, "\x00\x01\x00\x00", 4);
    cb_text(b, "name");
    char name[16];
    snprintf(name, sizeof name, "vCPU %u \xc2\xb7 x86", vcpu); /* a middle dot: UTF-8 */
    cb_text(b, name);
}

/* ----------------------------------------------------------- set v1.0 */

/* Format 1.0's own records and page states (no feature bit, no ROUND):
 * streams a reader of format 1.0 loads. The library's writer stamps minor
 * 1 on them (FORMAT.md section 11.2): that is the only 1.1 trace. */

static void v10_empty(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    finish(start(&o, out));
}

static void v10_info(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.machine = "pc-q35-7.2";
    o.description = "golden stream: INFO alone; UTF-8 \xc3\xbc \xe2\x82\xac";
    finish(start(&o, out));
}

/* Three regions (page sizes 4096 and 8192, with and without a gpa, one
 * declared late in a second REGIONS record), DATA and ZERO pages in small
 * batches, pages sent twice (the later copy wins), pages never sent. */
static void v10_pages(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.machine = "pc-i440fx-7.2";
    o.batch_bytes = 4 * PS;
    ms_writer *w = start(&o, out);
    const ms_region ram = {
        .id = 0, .name = "pc.ram", .has_gpa = true, .gpa = 0, .size = 32 * PS, .page_size = PS};
    const ms_region vram = {.id = 7,
                            .name = "0000:00:02.0/vga.vram",
                            .has_gpa = false,
                            .size = 4 * 8192,
                            .page_size = 8192};
    W(ms_writer_add_region(w, &ram));
    W(ms_writer_add_region(w, &vram));

    static uint8_t mem[32 * PS];
    memset(mem, 0, sizeof mem);
    rng_state = 10;
    page_random(mem + 1 * PS, PS);
    page_text(mem + 2 * PS, PS, 2);
    page_byte(mem + 5 * PS, PS, 0, 0x01);
    page_byte(mem + 9 * PS, PS, PS / 2, 0x80);
    page_byte(mem + 13 * PS, PS, PS - 1, 0xff);
    page_text(mem + 20 * PS, PS, 20);
    page_text(mem + 31 * PS, PS, 31);
    W(ms_writer_pages(w, 0, 0, 32, mem));

    /* Later copies: page 1 is now zero, page 3 now holds data. */
    memset(mem + 1 * PS, 0, PS);
    page_text(mem + 3 * PS, PS, 3);
    W(ms_writer_pages(w, 0, 1, 3, mem + 1 * PS));

    /* vga.vram through iovecs: pages 0 and 3 (one 8 KiB page each). */
    static uint8_t v0[8192], v3[8192];
    page_byte(v0, sizeof v0, 17, 0x55);
    page_text(v3, sizeof v3, 73);
    struct iovec iov0 = {v0, sizeof v0}, iov3 = {v3, sizeof v3};
    W(ms_writer_pagesv(w, 7, 0, &iov0, 1));
    W(ms_writer_zero_pages(w, 7, 1, 2));
    W(ms_writer_pagesv(w, 7, 3, &iov3, 1));

    /* A region declared after pages were sent: a second REGIONS record.
     * Pages 0 and 1 zero; 2 and 3 never sent (missing). */
    const ms_region rom = {.id = 2,
                           .name = "pc.bios",
                           .has_gpa = true,
                           .gpa = 0xfffc0000,
                           .size = 4 * PS,
                           .page_size = PS};
    W(ms_writer_add_region(w, &rom));
    W(ms_writer_zero_pages(w, 2, 0, 2));
    finish(w);
}

/* zstd-compressed PAGES: batches of text that shrink, and one random page
 * that does not (stored raw, as FORMAT.md section 6.3 asks). */
static void v10_pages_zstd(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.compress_level = 3;
    o.batch_bytes = 8 * PS;
    ms_writer *w = start(&o, out);
    const ms_region ram = {.id = 1,
                           .name = "ram",
                           .has_gpa = true,
                           .gpa = 0x100000000ull,
                           .size = 48 * PS,
                           .page_size = PS};
    W(ms_writer_add_region(w, &ram));
    static uint8_t mem[48 * PS];
    memset(mem, 0, sizeof mem);
    for (unsigned p = 0; p < 32; p++)
        if (p % 4 != 3)
            page_text(mem + (size_t)p * PS, PS, 100 + p);
    rng_state = 11;
    page_random(mem + 40 * PS, PS);
    W(ms_writer_pages(w, 1, 0, 40, mem));
    W(ms_writer_pages(w, 1, 40, 1, mem + 40 * PS)); /* alone in its batch: raw */
    W(ms_writer_pages(w, 1, 41, 7, mem + 41 * PS));
    finish(w);
}

/* Devices: several instances of one path, nested state of every CBOR kind
 * the device-state profile allows, a device sent twice (the later record
 * replaces the earlier), an empty map and a bare integer as states. */
static void v10_devices(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.machine = "pc-q35-7.2";
    ms_writer *w = start(&o, out);
    buf s = {0};
    for (unsigned i = 0; i < 4; i++) {
        cpu_state(&s, i, 0xfff0 + i);
        device(w, "cpu", i, "x86-cpu", 3, &s);
    }
    cb_head(&s, 5, 3);
    cb_int(&s, 0);
    cb_bytes(&s, "\x52\x54\x00\x12\x34\x56", 6);
    cb_int(&s, 1);
    cb_head(&s, 4, 2);
    cb_head(&s, 5, 2);
    cb_text(&s, "avail");
    cb_int(&s, 17);
    cb_text(&s, "used");
    cb_int(&s, 16);
    cb_head(&s, 5, 2);
    cb_text(&s, "avail");
    cb_int(&s, 0);
    cb_text(&s, "used");
    cb_int(&s, 0);
    cb_int(&s, 2);
    cb_simple(&s, 0xf5);
    device(w, "pci0/0000:00:02.0/virtio-net", 0, "virtio-net", 2, &s);
    cb_head(&s, 5, 0);
    device(w, "isa/serial@0x3f8", 0, "serial-16550", 1, &s);
    cb_int(&s, 0);
    device(w, "isa/pit", 0, "i8254", 1, &s);
    cpu_state(&s, 1, 0x401000); /* vCPU 1 again: this copy wins */
    device(w, "cpu", 1, "x86-cpu", 3, &s);
    free(s.p);
    finish(w);
}

/* Every 1.0 record type in one stream, with a private-use record (FORMAT.md
 * section 11.3) that readers skip. */
static void v10_full(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.machine = "microvm";
    o.description = "every format 1.0 record type";
    ms_writer *w = start(&o, out);
    const ms_region ram = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 16 * PS, .page_size = PS};
    W(ms_writer_add_region(w, &ram));
    static uint8_t mem[16 * PS];
    memset(mem, 0, sizeof mem);
    page_text(mem + 4 * PS, PS, 4);
    page_byte(mem + 8 * PS, PS, 100, 0x42);
    W(ms_writer_pages(w, 0, 0, 16, mem));
    W(ms_writer_record(w, 0x8001, 0, "vmm-private", 11));
    buf s = {0};
    cpu_state(&s, 0, 0x1000);
    device(w, "cpu", 0, "x86-cpu", 3, &s);
    free(s.p);
    finish(w);
}

/* A base page size of 8192 and a region of 16 KiB pages. */
static void v10_page8k(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.page_size = 8192;
    ms_writer *w = start(&o, out);
    const ms_region a = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 4 * 8192, .page_size = 8192};
    const ms_region b = {.id = 1,
                         .name = "huge",
                         .has_gpa = true,
                         .gpa = 0x40000000,
                         .size = 4 * 16384,
                         .page_size = 16384};
    W(ms_writer_add_region(w, &a));
    W(ms_writer_add_region(w, &b));
    static uint8_t mem[4 * 16384];
    memset(mem, 0, sizeof mem);
    page_text(mem + 8192, 8192, 801);
    W(ms_writer_pages(w, 0, 0, 4, mem));
    memset(mem, 0, sizeof mem);
    page_byte(mem + 2 * 16384, 16384, 16383, 0x16);
    W(ms_writer_pages(w, 1, 0, 4, mem));
    finish(w);
}

/* ----------------------------------------------------------- set v1.1 */

/* What format 1.1 added: ROUND records with every tracker, the page states
 * DISCARDED, FILL and IN_PLACE, OVERLAY records of every kind. */

/* Rounds alone need no feature bit: a 1.1 stream a 1.0 reader loads
 * (skipping the ROUND records and END's rounds key). */
static void v11_rounds(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    ms_writer *w = start(&o, out);
    const ms_region ram = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 16 * PS, .page_size = PS};
    const ms_region big = {.id = 1,
                           .name = "ram-8k",
                           .has_gpa = true,
                           .gpa = 0x100000,
                           .size = 4 * 8192,
                           .page_size = 8192};
    W(ms_writer_add_region(w, &ram));
    W(ms_writer_add_region(w, &big));
    static uint8_t mem[16 * PS], mem8[4 * 8192];
    memset(mem, 0, sizeof mem);
    memset(mem8, 0, sizeof mem8);
    page_text(mem, PS, 0);
    page_text(mem8 + 8192, 8192, 1);

    W(ms_writer_round(w, &(ms_round){.number = 0})); /* a full pass */
    W(ms_writer_pages(w, 0, 0, 16, mem));
    W(ms_writer_pages(w, 1, 0, 4, mem8));

    /* Round 1, dirty bitmap: pages 2 and 5 of ram; 4 KiB unit 5 of ram-8k,
     * the second half of its page 2, which goes whole. */
    page_text(mem + 2 * PS, PS, 12);
    page_byte(mem + 5 * PS, PS, 5, 5);
    page_text(mem8 + 2 * 8192, 8192, 13);
    uint64_t bm = 1u << 2 | 1u << 5, bm8 = 1u << 5;
    W(ms_writer_round(w, &(ms_round){.number = 1,
                                     .tracker = MS_TRACKER_BITMAP,
                                     .granularity = PS,
                                     .has_dirty = true,
                                     .dirty = 3}));
    W(ms_writer_dirty(w, 0, &bm, PS, mem));
    W(ms_writer_dirty(w, 1, &bm8, PS, mem8));

    /* Round 2, dirty ring, dirty count unknown: page 2 zeroed again. */
    memset(mem + 2 * PS, 0, PS);
    W(ms_writer_round(w, &(ms_round){.number = 2, .tracker = MS_TRACKER_RING, .granularity = PS}));
    W(ms_writer_pages(w, 0, 2, 1, mem + 2 * PS));

    /* Round 3, PML, nothing dirty. */
    W(ms_writer_round(w, &(ms_round){.number = 3,
                                     .tracker = MS_TRACKER_PML,
                                     .granularity = PS,
                                     .has_dirty = true,
                                     .dirty = 0}));

    /* Round 5 (numbers may skip), a tracker the format does not name, 8 KiB
     * units, stop-and-copy. */
    page_text(mem + 9 * PS, PS, 19);
    bm = 1u << 4; /* 8 KiB unit 4: ram pages 8 and 9 */
    W(ms_writer_round(w, &(ms_round){.number = 5,
                                     .tracker = 9,
                                     .granularity = 8192,
                                     .has_dirty = true,
                                     .dirty = 1,
                                     .final = true}));
    W(ms_writer_dirty(w, 0, &bm, 8192, mem));
    finish(w);
}

/* DISCARDED, FILL (found by the writer and given explicitly) and IN_PLACE
 * pages, and later copies that change a page's state. */
static void v11_states(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE;
    ms_writer *w = start(&o, out);
    const ms_region ram = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 32 * PS, .page_size = PS};
    const ms_region pmem = {.id = 3,
                            .name = "pmem0",
                            .has_gpa = true,
                            .gpa = 0x200000000ull,
                            .size = 4 * 8192,
                            .page_size = 8192};
    W(ms_writer_add_region(w, &ram));
    W(ms_writer_add_region(w, &pmem));
    static uint8_t mem[32 * PS];
    memset(mem, 0, sizeof mem);
    page_text(mem + 0 * PS, PS, 0);
    page_word(mem + 1 * PS, PS, 0xcccccccccccccccc); /* init memory poison */
    page_word(mem + 2 * PS, PS, 0xcccccccccccccccc);
    page_word(mem + 3 * PS, PS, 0x00000000deadbeefull); /* a 64-bit pattern */
    page_word(mem + 4 * PS, PS, 0xffffffffffffffffull);
    page_byte(mem + 5 * PS, PS, 7, 0xcc); /* almost FILL: DATA */
    W(ms_writer_pages(w, 0, 0, 8, mem));
    W(ms_writer_discard(w, 0, 8, 8));                            /* a free page hint */
    W(ms_writer_fill_pages(w, 0, 16, 4, 0x6b6b6b6b6b6b6b6bull)); /* slab poison */
    W(ms_writer_fill_pages(w, 0, 20, 1, 0));                     /* word 0: ZERO */
    W(ms_writer_in_place(w, 0, 24, 8, 0x80000000ull));
    W(ms_writer_in_place(w, 3, 0, 4, 0x1000000000ull)); /* 8 KiB pages in place */

    /* Later copies: a DISCARDED page reused (DATA), a DATA page discarded,
     * a FILL page zeroed, an IN_PLACE page sent again with the same address,
     * an IN_PLACE page replaced by DATA. */
    page_text(mem + 9 * PS, PS, 9);
    W(ms_writer_pages(w, 0, 9, 1, mem + 9 * PS));
    W(ms_writer_discard(w, 0, 0, 1));
    W(ms_writer_zero_pages(w, 0, 17, 1));
    W(ms_writer_in_place(w, 0, 25, 1, 0x80000000ull + PS));
    page_byte(mem + 31 * PS, PS, 31, 31);
    W(ms_writer_pages(w, 0, 31, 1, mem + 31 * PS));
    finish(w);
}

static void synic_slot(uint8_t *slot, uint8_t tag)
{
    memset(slot, 0, MS_SYNIC_SLOT_SIZE);
    slot[0] = tag; /* message type */
    slot[4] = 16;  /* payload size: at most 240 */
    for (int i = 0; i < 16; i++)
        slot[16 + i] = (uint8_t)(tag + i);
}

/* Every overlay kind, every parameter form, several kinds at one frame
 * (the highest priority shows), overlays in two regions. */
static void v11_overlays(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_OVERLAYS;
    ms_writer *w = start(&o, out);
    const ms_region low = {
        .id = 0, .name = "ram-low", .has_gpa = true, .gpa = 0, .size = 16 * PS, .page_size = PS};
    const ms_region high = {.id = 1,
                            .name = "ram-high",
                            .has_gpa = true,
                            .gpa = 0x100000000ull,
                            .size = 4 * PS,
                            .page_size = PS};
    W(ms_writer_add_region(w, &low));
    W(ms_writer_add_region(w, &high));
    static uint8_t mem[PS];
    page_text(mem, PS, 3); /* RAM under the overlays of frame 3 */
    W(ms_writer_zero_pages(w, 0, 0, 3));
    W(ms_writer_pages(w, 0, 3, 1, mem));
    W(ms_writer_zero_pages(w, 0, 4, 12));
    W(ms_writer_zero_pages(w, 1, 0, 4));

    ms_overlay v;
    for (uint32_t vendor = 0; vendor < 3; vendor++) { /* frames 1, 2, 3 */
        v = (ms_overlay){.gfn = 1 + vendor, .kind = MS_OVERLAY_HYPERCALL};
        v.hypercall.vendor = vendor;
        W(ms_writer_overlay(w, &v));
    }
    /* Frame 2: a TSC page under the hypercall page (priority 300 < 400). */
    v = (ms_overlay){.gfn = 2, .kind = MS_OVERLAY_REFERENCE_TSC};
    v.tsc.has_frequency = true;
    v.tsc.frequency = 2500000000u;
    v.tsc.offset = -1000;
    W(ms_writer_overlay(w, &v));
    v = (ms_overlay){.gfn = 4, .kind = MS_OVERLAY_REFERENCE_TSC};
    v.tsc.sequence = 7;
    v.tsc.scale = 0x0123456789abcdefull;
    v.tsc.offset = 12345;
    W(ms_writer_overlay(w, &v));
    v = (ms_overlay){.gfn = 5, .kind = MS_OVERLAY_REFERENCE_TSC}; /* sequence 0: unused */
    W(ms_writer_overlay(w, &v));

    static uint8_t s0[MS_SYNIC_SLOT_SIZE], s15[MS_SYNIC_SLOT_SIZE], s3[MS_SYNIC_SLOT_SIZE];
    synic_slot(s0, 0x10);
    synic_slot(s15, 0xf0);
    memset(s3, 0, sizeof s3);
    s3[0] = 0x81; /* event flags 0 and 7 */
    s3[255] = 0x80;
    v = (ms_overlay){.gfn = 6, .kind = MS_OVERLAY_SYNIC_MESSAGE};
    W(ms_writer_overlay(w, &v)); /* vp 0, no slot */
    v = (ms_overlay){.gfn = 7, .kind = MS_OVERLAY_SYNIC_MESSAGE};
    v.synic.vp = 1;
    v.synic.slot_mask = 1u << 0 | 1u << 15;
    v.synic.slot[0] = s0;
    v.synic.slot[15] = s15;
    W(ms_writer_overlay(w, &v));
    v = (ms_overlay){.gfn = 7, .kind = MS_OVERLAY_SYNIC_EVENT_FLAGS}; /* under the message page */
    v.synic.vp = 1;
    v.synic.slot_mask = 1u << 3;
    v.synic.slot[3] = s3;
    W(ms_writer_overlay(w, &v));
    v = (ms_overlay){.gfn = 0x100002, .kind = MS_OVERLAY_SYNIC_EVENT_FLAGS};
    v.synic.vp = 0xffffffffu;
    W(ms_writer_overlay(w, &v));
    finish(w);
}

/* Everything of 1.1 with compression, on two worker threads (whose output
 * the writer promises is the one-thread stream's, byte for byte). */
static void v11_live_zstd(buf *out)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE | MS_FEATURE_OVERLAYS;
    o.compress_level = 1;
    o.threads = 2;
    o.batch_bytes = 8 * PS;
    o.machine = "pc-q35-8.0";
    ms_writer *w = start(&o, out);
    const ms_region ram = {
        .id = 0, .name = "pc.ram", .has_gpa = true, .gpa = 0, .size = 48 * PS, .page_size = PS};
    W(ms_writer_add_region(w, &ram));
    static uint8_t mem[48 * PS];
    memset(mem, 0, sizeof mem);
    for (unsigned p = 0; p < 24; p++)
        page_text(mem + (size_t)p * PS, PS, 200 + p);
    for (unsigned p = 24; p < 28; p++)
        page_word(mem + (size_t)p * PS, PS, 0xcccccccccccccccc);
    W(ms_writer_round(w, &(ms_round){.number = 0}));
    W(ms_writer_pages(w, 0, 0, 32, mem));
    W(ms_writer_discard(w, 0, 32, 8));
    W(ms_writer_in_place(w, 0, 40, 8, 0x40000000ull));

    for (unsigned p = 0; p < 24; p += 3)
        page_text(mem + (size_t)p * PS, PS, 300 + p);
    uint64_t bm = 0;
    for (unsigned p = 0; p < 24; p += 3)
        bm |= 1ull << p;
    W(ms_writer_round(w, &(ms_round){.number = 1,
                                     .tracker = MS_TRACKER_BITMAP,
                                     .granularity = PS,
                                     .has_dirty = true,
                                     .dirty = 8,
                                     .final = true}));
    W(ms_writer_dirty(w, 0, &bm, PS, mem));
    ms_overlay v = {.gfn = 0x2f, .kind = MS_OVERLAY_HYPERCALL};
    v.hypercall.vendor = 2;
    W(ms_writer_overlay(w, &v));
    buf s = {0};
    cpu_state(&s, 0, 0xffffffff81000000ull);
    device(w, "cpu", 0, "x86-cpu", 3, &s);
    free(s.p);
    finish(w);
}

/* -------------------------------------------------------- format 1.2 */

/* A migration in parts (FORMAT.md section 2.1): the parts are written
 * together, one writer each, and make() keeps one of them. */
#define MAX_PARTS 3u

typedef struct parts_out {
    ms_writer *w[MAX_PARTS];
    buf b[MAX_PARTS];
    uint32_t n;
} parts_out;

#define WP(w, call)                                                                                \
    do {                                                                                           \
        if ((call) != 0)                                                                           \
            die("%s:%d: %s: %s", __FILE__, __LINE__, #call, ms_writer_errmsg(w));                  \
    } while (0)

/* @n writers of parts of the migration @id, with the options @o (each
 * part's INFO only where @info_part says, -1: every part). */
static void parts_start(parts_out *po, uint32_t n, const char *id, ms_writer_options *o,
                        int info_part)
{
    const char *machine = o->machine;
    memset(po, 0, sizeof *po);
    po->n = n;
    for (uint32_t k = 0; k < n; k++) {
        ms_part part = {.index = k, .count = n};
        memcpy(part.migration_id, id, MS_MIGRATION_ID_SIZE);
        o->writer_name = "gen-golden";
        o->writer_version = "1";
        o->part = &part;
        o->machine = info_part < 0 || (uint32_t)info_part == k ? machine : NULL;
        po->w[k] = ms_writer_new(o, sink, &po->b[k]);
        if (!po->w[k] || ms_writer_status(po->w[k]))
            die("part %u: %s", k, ms_writer_errmsg(po->w[k]));
    }
    o->part = NULL;
}

/* Finishes every part; @out takes part @keep's bytes. */
static void parts_finish(parts_out *po, uint32_t keep, buf *out)
{
    for (uint32_t k = 0; k < po->n; k++) {
        WP(po->w[k], ms_writer_finish(po->w[k], NULL));
        ms_writer_free(po->w[k]);
        if (k == keep)
            *out = po->b[k];
        else
            free(po->b[k].p);
    }
}

static void parts_round(parts_out *po, const ms_round *r)
{
    for (uint32_t k = 0; k < po->n; k++)
        WP(po->w[k], ms_writer_round(po->w[k], r));
}

/* split: three parts of a live migration over two regions. ram is in every
 * part, vram only in part 2, which alone sends it. Pages move between parts
 * from round to round (page p goes to part (p / 16 + round) % 3), so that
 * a later round's copy often comes in another part; FILL, DISCARDED and
 * IN_PLACE pages; a device per part in round 0, sent again by another part
 * in the last round; overlays in part 1; INFO in part 0; a private record
 * in part 2. */
static void v12_split(buf *out, uint32_t keep)
{
    parts_out po;
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE | MS_FEATURE_OVERLAYS;
    o.machine = "pc-q35-9.2";
    parts_start(&po, 3, "golden-split-012", &o, 0);
    const ms_region ram = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 48 * PS, .page_size = PS};
    const ms_region vram = {.id = 7, .name = "vram", .size = 8 * PS, .page_size = PS};
    for (uint32_t k = 0; k < 3; k++)
        WP(po.w[k], ms_writer_add_region(po.w[k], &ram));
    WP(po.w[2], ms_writer_add_region(po.w[2], &vram));
    static uint8_t mem[48 * PS], vmem[8 * PS];
    memset(mem, 0, sizeof mem);
    memset(vmem, 0, sizeof vmem);
    for (unsigned p = 0; p < 48; p += 2)
        page_text(mem + (size_t)p * PS, PS, 500 + p);
    for (unsigned p = 20; p < 24; p++)
        page_word(mem + (size_t)p * PS, PS, 0xcccccccccccccccc);
    page_byte(vmem + 3 * PS, PS, 100, 0x7f);
#define PART(round, p) po.w[((p) / 16 + (round)) % 3]
    parts_round(&po, &(ms_round){.number = 0});
    for (unsigned p = 0; p < 48; p++) {
        ms_writer *w = PART(0, p);
        if (p >= 32 && p < 36)
            WP(w, ms_writer_discard(w, 0, p, 1));
        else if (p >= 40 && p < 44)
            WP(w, ms_writer_in_place(w, 0, p, 1, 0x80000000ull + (uint64_t)(p - 40) * PS));
        else
            WP(w, ms_writer_pages(w, 0, p, 1, mem + (size_t)p * PS));
    }
    WP(po.w[2], ms_writer_pages(po.w[2], 7, 0, 8, vmem));
    buf s = {0};
    for (uint32_t k = 0; k < 3; k++) {
        cpu_state(&s, k, 0xffffffff81000000ull + k);
        WP(po.w[k], ms_writer_device(po.w[k], "cpu", k, "x86-cpu", 3, s.p, s.n));
        s.n = 0;
    }
    WP(po.w[2], ms_writer_record(po.w[2], 0x8001, 0, "vmm-private", 11));

    /* Round 1: pages 1, 2, 17, 33 (hinted free before) and 47 dirtied. */
    static const unsigned dirty[] = {1, 2, 17, 33, 47};
    for (size_t i = 0; i < sizeof dirty / sizeof dirty[0]; i++)
        page_text(mem + (size_t)dirty[i] * PS, PS, 600 + dirty[i]);
    parts_round(&po, &(ms_round){.number = 1,
                                 .tracker = MS_TRACKER_BITMAP,
                                 .granularity = PS,
                                 .has_dirty = true,
                                 .dirty = 5});
    for (size_t i = 0; i < sizeof dirty / sizeof dirty[0]; i++)
        WP(PART(1, dirty[i]),
           ms_writer_pages(PART(1, dirty[i]), 0, dirty[i], 1, mem + (size_t)dirty[i] * PS));

    /* Round 2, final: page 2 zeroed and page 3 filled, both in part 2 (page
     * 2 came in part 1 in round 1); nothing in part 0 but vCPU 0 again,
     * from part 1 this time; the overlays, part 1's. */
    memset(mem + 2 * PS, 0, PS);
    page_word(mem + 3 * PS, PS, 0xdeadbeefull);
    parts_round(&po, &(ms_round){.number = 2,
                                 .tracker = MS_TRACKER_BITMAP,
                                 .granularity = PS,
                                 .has_dirty = true,
                                 .dirty = 2,
                                 .final = true});
    WP(PART(2, 2), ms_writer_pages(PART(2, 2), 0, 2, 2, mem + 2 * PS));
#undef PART
    cpu_state(&s, 0, 0xffffffff81000040ull);
    WP(po.w[1], ms_writer_device(po.w[1], "cpu", 0, "x86-cpu", 3, s.p, s.n));
    ms_overlay tsc = {.gfn = 5, .kind = MS_OVERLAY_REFERENCE_TSC};
    tsc.tsc.has_frequency = true;
    tsc.tsc.frequency = 3000000000u;
    ms_overlay hc = {.gfn = 5, .kind = MS_OVERLAY_HYPERCALL};
    hc.hypercall.vendor = 1;
    WP(po.w[1], ms_writer_overlay(po.w[1], &tsc));
    WP(po.w[1], ms_writer_overlay(po.w[1], &hc));
    free(s.p);
    parts_finish(&po, keep, out);
}

/* pair-zstd: two parts with zstd pages (level 1, two workers), INFO in
 * both, one round each of data pages and a final round that moves a page
 * to the other part. */
static void v12_pair_zstd(buf *out, uint32_t keep)
{
    parts_out po;
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.compress_level = 1;
    o.threads = 2;
    o.batch_bytes = 8 * PS;
    o.machine = "microvm";
    parts_start(&po, 2, "golden-pair-zstd", &o, -1);
    const ms_region ram = {
        .id = 0, .name = "mem", .has_gpa = true, .gpa = 0x100000, .size = 32 * PS, .page_size = PS};
    static uint8_t mem[32 * PS];
    for (unsigned p = 0; p < 32; p++)
        page_text(mem + (size_t)p * PS, PS, 700 + p);
    for (uint32_t k = 0; k < 2; k++)
        WP(po.w[k], ms_writer_add_region(po.w[k], &ram));
    parts_round(&po, &(ms_round){.number = 0});
    WP(po.w[0], ms_writer_pages(po.w[0], 0, 0, 16, mem));
    WP(po.w[1], ms_writer_pages(po.w[1], 0, 16, 16, mem + 16 * PS));
    page_text(mem + 20 * PS, PS, 800);
    parts_round(&po, &(ms_round){.number = 1, .final = true});
    WP(po.w[0], ms_writer_pages(po.w[0], 0, 20, 1, mem + 20 * PS));
    parts_finish(&po, keep, out);
}

/* one: a migration in a single part (count 1), which reads as the stream
 * it is. */
static void v12_one(buf *out, uint32_t keep)
{
    parts_out po;
    ms_writer_options o;
    ms_writer_options_init(&o);
    parts_start(&po, 1, "golden-one-part!", &o, -1);
    const ms_region ram = {.id = 3, .name = "ram", .size = 8 * PS, .page_size = PS};
    static uint8_t mem[8 * PS];
    memset(mem, 0, sizeof mem);
    page_text(mem + 4 * PS, PS, 900);
    WP(po.w[0], ms_writer_add_region(po.w[0], &ram));
    parts_round(&po, &(ms_round){.number = 0, .final = true});
    WP(po.w[0], ms_writer_pages(po.w[0], 3, 0, 8, mem));
    parts_finish(&po, keep, out);
}

static void v12_split_0(buf *out)
{
    v12_split(out, 0);
}
static void v12_split_1(buf *out)
{
    v12_split(out, 1);
}
static void v12_split_2(buf *out)
{
    v12_split(out, 2);
}
static void v12_pair_zstd_0(buf *out)
{
    v12_pair_zstd(out, 0);
}
static void v12_pair_zstd_1(buf *out)
{
    v12_pair_zstd(out, 1);
}
static void v12_one_0(buf *out)
{
    v12_one(out, 0);
}

typedef struct golden {
    const char *set, *name;
    bool zstd; /* compressed PAGES: the bytes depend on libzstd's version */
    void (*make)(buf *out);
} golden;

static const golden goldens[] = {
    {"v1.0", "empty.mig", false, v10_empty},
    {"v1.0", "info.mig", false, v10_info},
    {"v1.0", "pages.mig", false, v10_pages},
    {"v1.0", "pages-zstd.mig", true, v10_pages_zstd},
    {"v1.0", "devices.mig", false, v10_devices},
    {"v1.0", "full.mig", false, v10_full},
    {"v1.0", "page8k.mig", false, v10_page8k},
    {"v1.1", "rounds.mig", false, v11_rounds},
    {"v1.1", "states.mig", false, v11_states},
    {"v1.1", "overlays.mig", false, v11_overlays},
    {"v1.1", "live-zstd.mig", true, v11_live_zstd},
    {"v1.2", "split.0.mig", false, v12_split_0},
    {"v1.2", "split.1.mig", false, v12_split_1},
    {"v1.2", "split.2.mig", false, v12_split_2},
    {"v1.2", "pair-zstd.0.mig", true, v12_pair_zstd_0},
    {"v1.2", "pair-zstd.1.mig", true, v12_pair_zstd_1},
    {"v1.2", "one.0.mig", false, v12_one_0},
};

/* The migrations in parts of a set: name, then the part files in order. */
static const struct migration {
    const char *set, *name;
    const char *parts[MAX_PARTS + 1];
} migrations[] = {
    {"v1.2", "split", {"split.0.mig", "split.1.mig", "split.2.mig", NULL}},
    {"v1.2", "pair-zstd", {"pair-zstd.0.mig", "pair-zstd.1.mig", NULL}},
    {"v1.2", "one", {"one.0.mig", NULL}},
};
#define NGOLDEN (sizeof goldens / sizeof goldens[0])

static bool set_exists(const char *set)
{
    for (size_t i = 0; i < NGOLDEN; i++)
        if (strcmp(goldens[i].set, set) == 0)
            return true;
    return false;
}

/* Writes @b to DIR/NAME through a temporary file, linked into place so
 * that an existing file is never replaced, not even by a race. */
static void write_new(const char *dir, const char *name, const buf *b)
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%ld", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        die("%s: %s", tmp, strerror(errno));
    size_t at = 0;
    while (at < b->n) {
        ssize_t k = write(fd, b->p + at, b->n - at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            unlink(tmp);
            die("%s: %s", tmp, strerror(errno));
        }
        at += (size_t)k;
    }
    if (fsync(fd) || close(fd)) {
        unlink(tmp);
        die("%s: %s", tmp, strerror(errno));
    }
    if (link(tmp, path)) {
        int e = errno;
        unlink(tmp);
        if (e == EEXIST)
            die("%s exists: a golden stream is never rewritten (see tests/compat/README.md)", path);
        die("%s: %s", path, strerror(e));
    }
    unlink(tmp);
}

static int cmd_write(const char *set, const char *dir)
{
    if (mkdir(dir, 0755) && errno != EEXIST)
        die("%s: %s", dir, strerror(errno));
    for (size_t i = 0; i < NGOLDEN; i++) {
        if (strcmp(goldens[i].set, set) != 0)
            continue;
        buf b = {0};
        goldens[i].make(&b);
        write_new(dir, goldens[i].name, &b);
        free(b.p);
    }
    return 0;
}

/* ------------------------------------------------------------ same-content */

typedef struct side {
    const char *path;
    uint8_t *data;
    size_t size;
    ms_reader *r;
} side;

static void side_open(side *s, const char *path)
{
    s->path = path;
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    buf b = {0};
    uint8_t chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&b, chunk, k);
    if (ferror(f))
        die("%s: read error", path);
    fclose(f);
    s->data = b.p;
    s->size = b.n;
    s->r = ms_reader_new_memory(NULL, s->data, s->size);
    if (!s->r)
        die("out of memory");
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool mem_eq(const void *a, size_t an, const void *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static bool regions_eq(const ms_region *a, const ms_region *b)
{
    return a->id == b->id && str_eq(a->name, b->name) && a->has_gpa == b->has_gpa &&
           a->gpa == b->gpa && a->size == b->size && a->page_size == b->page_size;
}

static bool overlays_eq(const ms_overlay *a, const ms_overlay *b)
{
    if (a->gfn != b->gfn || a->kind != b->kind)
        return false;
    switch (a->kind) {
    case MS_OVERLAY_HYPERCALL:
        return a->hypercall.vendor == b->hypercall.vendor;
    case MS_OVERLAY_REFERENCE_TSC:
        return a->tsc.has_frequency == b->tsc.has_frequency &&
               a->tsc.frequency == b->tsc.frequency && a->tsc.sequence == b->tsc.sequence &&
               a->tsc.scale == b->tsc.scale && a->tsc.offset == b->tsc.offset;
    default:
        if (a->synic.vp != b->synic.vp || a->synic.slot_mask != b->synic.slot_mask)
            return false;
        for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++)
            if (a->synic.slot_mask >> s & 1 &&
                memcmp(a->synic.slot[s], b->synic.slot[s], MS_SYNIC_SLOT_SIZE) != 0)
                return false;
        return true;
    }
}

/* What a record decodes to, without what the data encoding changes: its
 * length, offset, checksum, the PAGES encoding and END's byte total. */
static bool records_eq(const ms_record *a, const ms_record *b)
{
    if (a->type != b->type || a->flags != b->flags || a->known != b->known)
        return false;
    if (!a->known)
        return mem_eq(a->payload, a->length, b->payload, b->length);
    switch (a->type) {
    case MS_REC_INFO:
        return str_eq(a->info.machine, b->info.machine) &&
               str_eq(a->info.description, b->info.description);
    case MS_REC_REGIONS:
        if (a->region_count != b->region_count)
            return false;
        for (size_t i = 0; i < a->region_count; i++)
            if (!regions_eq(&a->regions[i], &b->regions[i]))
                return false;
        return true;
    case MS_REC_PAGES: {
        const ms_pages *p = &a->pages, *q = &b->pages;
        if (p->region->id != q->region->id || p->extent_count != q->extent_count ||
            !mem_eq(p->data, p->data_size, q->data, q->data_size))
            return false;
        for (size_t i = 0; i < p->extent_count; i++) {
            const ms_extent *x = &p->extents[i], *y = &q->extents[i];
            if (x->first != y->first || x->count != y->count || x->state != y->state ||
                x->arg != y->arg)
                return false;
        }
        return true;
    }
    case MS_REC_DEVICE:
        return str_eq(a->device.path, b->device.path) && a->device.instance == b->device.instance &&
               str_eq(a->device.schema, b->device.schema) &&
               a->device.version == b->device.version &&
               mem_eq(a->device.state, a->device.state_size, b->device.state, b->device.state_size);
    case MS_REC_ROUND:
        return a->round.number == b->round.number && a->round.tracker == b->round.tracker &&
               a->round.granularity == b->round.granularity &&
               a->round.has_dirty == b->round.has_dirty && a->round.dirty == b->round.dirty &&
               a->round.final == b->round.final;
    case MS_REC_OVERLAY:
        if (a->overlay_count != b->overlay_count)
            return false;
        for (size_t i = 0; i < a->overlay_count; i++)
            if (!overlays_eq(&a->overlays[i], &b->overlays[i]))
                return false;
        return true;
    case MS_REC_END: {
        ms_totals x = a->totals, y = b->totals;
        x.bytes = y.bytes = 0;
        return memcmp(&x, &y, sizeof x) == 0;
    }
    default:
        return false;
    }
}

static int cmd_same_content(const char *pa, const char *pb)
{
    side a, b;
    side_open(&a, pa);
    side_open(&b, pb);
    const ms_header *ha, *hb;
    if (ms_reader_header(a.r, &ha))
        die("%s: %s", pa, ms_reader_errmsg(a.r));
    if (ms_reader_header(b.r, &hb))
        die("%s: %s", pb, ms_reader_errmsg(b.r));
    int status = 0;
    if (ha->major != hb->major || ha->minor != hb->minor || ha->page_size != hb->page_size ||
        ha->required_features != hb->required_features ||
        ha->optional_features != hb->optional_features ||
        strcmp(ha->writer_name, hb->writer_name) != 0 ||
        strcmp(ha->writer_version, hb->writer_version) != 0) {
        printf("preambles differ\n");
        status = 1;
    }
    for (uint64_t i = 0; status == 0; i++) {
        const ms_record *ra, *rb;
        int ka = ms_reader_next(a.r, &ra);
        if (ka < 0)
            die("%s: %s", pa, ms_reader_errmsg(a.r));
        /* Each view lives until the next call on its own reader. */
        int kb = ms_reader_next(b.r, &rb);
        if (kb < 0)
            die("%s: %s", pb, ms_reader_errmsg(b.r));
        if (ka != kb) {
            printf("record %" PRIu64 ": one stream ends before the other\n", i);
            status = 1;
        } else if (ka == 0) {
            break;
        } else if (!records_eq(ra, rb)) {
            printf("record %" PRIu64 " (type %u): decoded contents differ\n", i, ra->type);
            status = 1;
        }
    }
    ms_reader_free(a.r);
    ms_reader_free(b.r);
    free(a.data);
    free(b.data);
    return status;
}

/* ------------------------------------------------------------------- main */

static int usage(void)
{
    fputs("usage: gen-golden write SET DIR | list SET | migrations SET | zstd-version | "
          "same-content A B\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "write") == 0 && set_exists(argv[2]))
        return cmd_write(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "list") == 0 && set_exists(argv[2])) {
        for (size_t i = 0; i < NGOLDEN; i++)
            if (strcmp(goldens[i].set, argv[2]) == 0)
                printf("%s %s\n", goldens[i].name, goldens[i].zstd ? "zstd" : "raw");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "migrations") == 0 && set_exists(argv[2])) {
        for (size_t i = 0; i < sizeof migrations / sizeof migrations[0]; i++) {
            if (strcmp(migrations[i].set, argv[2]) != 0)
                continue;
            printf("%s", migrations[i].name);
            for (const char *const *p = migrations[i].parts; *p; p++)
                printf(" %s", *p);
            putchar('\n');
        }
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "zstd-version") == 0) {
        puts(ZSTD_versionString());
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "same-content") == 0)
        return cmd_same_content(argv[2], argv[3]);
    return usage();
}
