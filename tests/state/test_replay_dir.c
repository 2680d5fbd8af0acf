/*
 * Replaying a stream into a directory (ms_replay_dir), over the public API
 * with streams the public writer makes: the images, the device files, the
 * manifest and the result; the guest's view with overlays; an existing
 * output with and without force; the stop flag; refusals, which leave
 * nothing behind; FILL pages written once and the output limit; and two replays at once in two threads, which share
 * nothing. Each test works in its own directory under $TMPDIR (or /tmp).
 * tests/props/test_hostile.c holds the hostile names and links.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define PS 4096u

/* ----------------------------------------------------------------- helpers */

static char *scratch(void)
{
    const char *t = getenv("TMPDIR");
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/ms-replay-dir-XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(p));
    return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void scratch_free(char *p)
{
    nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(p);
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

/* Names in @dir, sorted, joined by spaces. */
static void listing(const char *dir, char *out, size_t n)
{
    struct dirent **e;
    int k = scandir(dir, &e, NULL, alphasort);
    assert_true(k >= 0);
    out[0] = 0;
    for (int i = 0; i < k; i++) {
        if (strcmp(e[i]->d_name, ".") && strcmp(e[i]->d_name, "..")) {
            size_t len = strlen(out);
            snprintf(out + len, n - len, "%s%s", len ? " " : "", e[i]->d_name);
        }
        free(e[i]);
    }
    free(e);
}

/* The whole of file @name in @dir, NUL-terminated; its size in *@size. */
static uint8_t *slurp(const char *dir, const char *name, size_t *size)
{
    char *p = path_in(dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        fail_msg("cannot open %s", p);
    th_buf b = {0};
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        th_buf_append(&b, chunk, n);
    fclose(f);
    free(p);
    th_buf_u8(&b, 0);
    *size = b.len - 1;
    return b.data;
}

/* Replays @s into @path with @o; copies the message into @msg. */
static int replay(const th_buf *s, const char *path, const ms_replay_dir_options *o, char *msg,
                  size_t n, ms_replay_dir_result *res)
{
    ms_replay_dir *rd = ms_replay_dir_new(o);
    assert_non_null(rd);
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    int rc = ms_replay_dir_write(rd, r, "test.mig", path);
    snprintf(msg, n, "%s", ms_replay_dir_errmsg(rd));
    if (res)
        *res = *ms_replay_dir_get_result(rd);
    if (rc == 0)
        assert_string_equal(msg, "");
    else
        assert_true(msg[0] != 0);
    ms_reader_free(r);
    ms_replay_dir_free(rd);
    return rc;
}

static ms_replay_dir_options quick(void)
{
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.no_sync = true;
    return o;
}

/* ------------------------------------------------------------ the stream */

static uint8_t ram[8 * PS];
static const uint8_t cpu0_old[] = {0xa1, 0x00, 0x00};                        /* {0: 0} */
static const uint8_t cpu0[] = {0xa1, 0x63, 'r', 'i', 'p', 0x19, 0xff, 0xf0}; /* {"rip": 65520} */
static const uint8_t cpu1[] = {0x82, 0x01, 0xf5};                            /* [1, true] */
static const uint8_t net[] = {0xa1, 0x00, 0x43, 1, 2, 3};                    /* {0: h'010203'} */

/* Region 0 "ram" (32 pages at gpa 0): DATA 0..7, ZERO 8..15, FILL 16..19,
 * IN_PLACE 24..25, the rest never sent; region 3 "vram" (4 pages): DATA
 * page 1; devices net#0, cpu#1, cpu#0 (twice); a private record. */
static void sample(th_buf *out)
{
    uint64_t rng = 21;
    th_rand_fill(&rng, ram, sizeof ram);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "test";
    o.machine = "pc";
    o.features = MS_FEATURE_FILL | MS_FEATURE_IN_PLACE;
    out->len = 0;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    const ms_region r0 = {
        .id = 0, .name = "ram", .has_gpa = true, .size = 32 * PS, .page_size = PS};
    const ms_region r3 = {.id = 3, .name = "vram", .size = 4 * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r0), 0);
    assert_status(ms_writer_add_region(w, &r3), 0);
    assert_status(ms_writer_device(w, "cpu", 0, "x86", 1, cpu0_old, sizeof cpu0_old), 0);
    assert_status(ms_writer_pages(w, 0, 8, 8, ram), 0); /* DATA now, ZERO below */
    assert_status(ms_writer_pages(w, 0, 0, 8, ram), 0);
    assert_status(ms_writer_zero_pages(w, 0, 8, 8), 0);
    assert_status(ms_writer_fill_pages(w, 0, 16, 4, 0xccccccccccccccccu), 0);
    assert_status(ms_writer_in_place(w, 0, 24, 2, 0x200000), 0);
    assert_status(ms_writer_pages(w, 3, 1, 1, ram + PS), 0);
    assert_status(ms_writer_record(w, 0x8001, 0, "private", 7), 0);
    assert_status(ms_writer_device(w, "net", 0, "virtio-net", 2, net, sizeof net), 0);
    assert_status(ms_writer_device(w, "cpu", 1, "x86", 1, cpu1, sizeof cpu1), 0);
    assert_status(ms_writer_device(w, "cpu", 0, "x86", 3, cpu0, sizeof cpu0), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

/* The stream's digest: END's checksum. */
static uint64_t digest_of(const th_buf *s)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    const ms_record *rec;
    uint64_t d = 0;
    while (ms_reader_next(r, &rec) > 0)
        if (rec->type == MS_REC_END)
            d = rec->checksum;
    ms_reader_free(r);
    return d;
}

/* ------------------------------------------------------------------ tests */

static void test_images_devices_manifest(void **state)
{
    (void)state;
    th_buf s = {0};
    sample(&s);
    char *dir = scratch(), *out = path_in(dir, "out"), msg[1024], list[512];
    ms_replay_dir_options o = quick();
    ms_replay_dir_result res;
    assert_status(replay(&s, out, &o, msg, sizeof msg, &res), 0);
    assert_int_equal(res.stream_status, 0);
    assert_int_equal(res.regions, 2);
    assert_int_equal(res.devices, 3);
    assert_int_equal(res.overlays, 0);
    assert_int_equal(res.skipped_records, 1);
    assert_int_equal(res.pages, 8 + 8 + 8 + 4 + 2 + 1);
    assert_int_equal(res.digest, digest_of(&s));
    listing(dir, list, sizeof list);
    assert_string_equal(list, "out"); /* no temporary directory left */
    listing(out, list, sizeof list);
    assert_string_equal(list, "device-0.cbor device-0.json device-1.cbor device-1.json "
                              "device-2.cbor device-2.json manifest.json region-0.img "
                              "region-3.img");

    /* The images: the region's size, each page's final contents. */
    size_t n;
    uint8_t *img = slurp(out, "region-0.img", &n);
    assert_int_equal(n, 32 * PS);
    assert_memory_equal(img, ram, 8 * PS);
    assert_true(th_all_zero(img + 8 * PS, 8 * PS));
    for (size_t i = 16 * PS; i < 20 * PS; i++)
        assert_int_equal(img[i], 0xcc);
    assert_true(th_all_zero(img + 20 * PS, 12 * PS)); /* never sent, IN_PLACE: holes */
    free(img);
    img = slurp(out, "region-3.img", &n);
    assert_int_equal(n, 4 * PS);
    assert_true(th_all_zero(img, PS));
    assert_memory_equal(img + PS, ram + PS, PS);
    free(img);

    /* Devices by path then instance, each its last state. */
    uint8_t *f = slurp(out, "device-0.cbor", &n);
    assert_int_equal(n, sizeof cpu0);
    assert_memory_equal(f, cpu0, sizeof cpu0);
    free(f);
    f = slurp(out, "device-0.json", &n);
    assert_string_equal((char *)f, "{\"rip\": 65520}\n");
    free(f);
    f = slurp(out, "device-1.json", &n);
    assert_string_equal((char *)f, "[1, true]\n");
    free(f);
    f = slurp(out, "device-2.json", &n);
    assert_string_equal((char *)f, "{\"0\": \"010203\"}\n");
    free(f);

    char *m = (char *)slurp(out, "manifest.json", &n);
    char want[128];
    snprintf(want, sizeof want, "\"digest\": \"0x%016llx\"", (unsigned long long)res.digest);
    assert_contains(m, want);
    assert_contains(m, "\"writer_name\": \"test\"");
    assert_contains(m, "\"machine\": \"pc\"");
    assert_contains(m, "\"skipped_records\": 1,");
    assert_contains(m, "\"name\": \"ram\",\n      \"gpa\": \"0x0\",\n      \"size\": \"131072\",\n"
                       "      \"page_size\": 4096,\n      \"pages\": 32,\n      \"final\": "
                       "{\"DATA\": 8, \"ZERO\": 8, \"FILL\": 4, \"IN_PLACE\": 2, \"missing\": 10},\n"
                       "      \"in_place_refs\": [{\"first\": 24, "
                       "\"count\": 2, \"address\": \"0x200000\"}],\n      \"file\": "
                       "\"region-0.img\"");
    assert_contains(m, "\"name\": \"vram\",\n      \"gpa\": null");
    assert_contains(m, "\"path\": \"cpu\",\n      \"instance\": 0,\n      \"schema\": \"x86\",\n"
                       "      \"version\": 3,\n      \"state_size\": 8,\n      \"cbor\": "
                       "\"device-0.cbor\"");
    free(m);
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
}

static void test_view(void **state)
{
    (void)state;
    th_buf s = {0};
    uint8_t page[PS];
    uint64_t rng = 3;
    th_rand_fill(&rng, page, sizeof page);
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    wo.features = MS_FEATURE_OVERLAYS;
    ms_writer *w = ms_writer_new(&wo, th_sink_write, &s);
    const ms_region r = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 1 << 20, .size = 16 * PS, .page_size = PS};
    const ms_region r2 = {.id = 1, .name = "rom", .size = PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_add_region(w, &r2), 0);
    assert_status(ms_writer_pages(w, 0, 0, 1, page), 0);
    assert_status(ms_writer_pages(w, 0, 5, 1, page), 0);
    ms_overlay ov[2] = {{.gfn = 0x100, .kind = MS_OVERLAY_HYPERCALL},
                        {.gfn = 0x100, .kind = MS_OVERLAY_REFERENCE_TSC}};
    ov[0].hypercall.vendor = 1;
    ov[1].tsc.has_frequency = true;
    ov[1].tsc.frequency = 3000000000u;
    assert_status(ms_writer_overlay(w, &ov[0]), 0);
    assert_status(ms_writer_overlay(w, &ov[1]), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);

    char *dir = scratch(), *out = path_in(dir, "out"), msg[1024], list[512];
    ms_replay_dir_options o = quick();
    ms_replay_dir_result res;
    assert_status(replay(&s, out, &o, msg, sizeof msg, &res), 0);
    assert_int_equal(res.overlays, 2);
    listing(out, list, sizeof list);
    assert_string_equal(list, "manifest.json overlay-0.bin overlay-1.bin region-0.img "
                              "region-1.img");
    uint8_t want[2][MS_OVERLAY_PAGE_SIZE];
    size_t n;
    for (int i = 0; i < 2; i++) {
        assert_status(ms_overlay_render(&ov[i], want[i]), 0);
        char name[32];
        snprintf(name, sizeof name, "overlay-%d.bin", i);
        uint8_t *f = slurp(out, name, &n);
        assert_int_equal(n, MS_OVERLAY_PAGE_SIZE);
        assert_memory_equal(f, want[i], n);
        free(f);
    }
    char *m = (char *)slurp(out, "manifest.json", &n);
    size_t active = ms_overlay_active(ov, 2);
    char line[160];
    snprintf(line, sizeof line, "\"kind\": \"%s\", \"priority\": %u, \"active\": true",
             ms_overlay_kind_name(ov[active].kind), ms_overlay_priority(ov[active].kind));
    assert_contains(m, line);
    snprintf(line, sizeof line, "\"kind\": \"%s\", \"priority\": %u, \"active\": false",
             ms_overlay_kind_name(ov[1 - active].kind), ms_overlay_priority(ov[1 - active].kind));
    assert_contains(m, line);
    free(m);

    /* With view: the image with the active overlay over its frame, only for
     * the region that holds it. */
    o.view = true;
    o.force = true;
    assert_status(replay(&s, out, &o, msg, sizeof msg, &res), 0);
    listing(out, list, sizeof list);
    assert_string_equal(list, "manifest.json overlay-0.bin overlay-1.bin region-0.img "
                              "region-0.view.img region-1.img");
    uint8_t *img = slurp(out, "region-0.img", &n), *view = slurp(out, "region-0.view.img", &n);
    assert_int_equal(n, 16 * PS);
    assert_memory_equal(img, page, PS);
    assert_memory_equal(view, want[active], PS);
    assert_memory_equal(view + PS, img + PS, 15 * PS);
    free(img);
    free(view);
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
}

static void test_existing_output(void **state)
{
    (void)state;
    th_buf s = {0};
    sample(&s);
    char *dir = scratch(), *out = path_in(dir, "out"), *marker = path_in(out, "marker");
    char msg[1024], list[512];
    assert_int_equal(mkdir(out, 0755), 0);
    FILE *f = fopen(marker, "w");
    fputs("keep\n", f);
    fclose(f);
    ms_replay_dir_options o = quick();
    assert_status(replay(&s, out, &o, msg, sizeof msg, NULL), MS_EINVAL);
    assert_contains(msg, out);
    assert_contains(msg, "exists");
    listing(dir, list, sizeof list);
    assert_string_equal(list, "out");
    listing(out, list, sizeof list);
    assert_string_equal(list, "marker");

    o.force = true;
    assert_status(replay(&s, out, &o, msg, sizeof msg, NULL), 0);
    listing(dir, list, sizeof list);
    assert_string_equal(list, "out"); /* the old output is gone, nothing left aside */
    listing(out, list, sizeof list);
    assert_contains(list, "manifest.json");
    assert_true(strstr(list, "marker") == NULL);

    /* A plain file in the way: replaced only with force. */
    char *plain = path_in(dir, "plain");
    f = fopen(plain, "w");
    fclose(f);
    o.force = false;
    assert_status(replay(&s, plain, &o, msg, sizeof msg, NULL), MS_EINVAL);
    o.force = true;
    assert_status(replay(&s, plain, &o, msg, sizeof msg, NULL), 0);
    struct stat st;
    assert_int_equal(stat(plain, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* No parent directory: the output cannot be made. */
    char *deep = path_in(dir, "no/such/dir");
    assert_status(replay(&s, deep, &o, msg, sizeof msg, NULL), MS_EIO);
    assert_contains(msg, "cannot create a temporary directory beside");
    free(deep);
    free(plain);
    free(marker);
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
}

typedef struct stopper {
    volatile sig_atomic_t flag;
    uint64_t calls, last_bytes, last_pages;
    uint64_t stop_after; /* calls before the flag is set */
} stopper;

static void on_progress(void *ctx, uint64_t bytes, uint64_t pages)
{
    stopper *p = ctx;
    assert_true(bytes >= p->last_bytes);
    assert_true(pages > p->last_pages);
    p->last_bytes = bytes;
    p->last_pages = pages;
    if (++p->calls == p->stop_after)
        p->flag = 1;
}

static void test_stop_and_progress(void **state)
{
    (void)state;
    th_buf s = {0};
    sample(&s);
    char *dir = scratch(), *out = path_in(dir, "out"), msg[1024], list[512];
    stopper p = {.stop_after = UINT64_MAX};
    ms_replay_dir_options o = quick();
    o.stop = &p.flag;
    o.progress = on_progress;
    o.progress_ctx = &p;
    ms_replay_dir_result res;
    assert_status(replay(&s, out, &o, msg, sizeof msg, &res), 0);
    assert_true(p.calls >= 5);
    assert_int_equal(p.last_pages, res.pages);
    scratch_free(dir);

    /* Stopped before it starts, and halfway: nothing is left either way. */
    for (int k = 0; k < 2; k++) {
        dir = scratch();
        free(out);
        out = path_in(dir, "out");
        p = (stopper){.flag = k == 0, .stop_after = 2};
        assert_int_equal(replay(&s, out, &o, msg, sizeof msg, NULL), MS_REPLAY_DIR_STOPPED);
        assert_string_equal(msg, "test.mig: interrupted");
        listing(dir, list, sizeof list);
        assert_string_equal(list, "");
        scratch_free(dir);
    }
    free(out);
    th_buf_free(&s);
}

/* A stream refused halfway leaves nothing behind, says where, and the
 * handle serves the next stream. */
static void test_refusals(void **state)
{
    (void)state;
    th_buf s = {0}, bad = {0};
    sample(&s);
    char *dir = scratch(), *out = path_in(dir, "out"), msg[1024], list[512];
    ms_replay_dir_options o = quick();
    ms_replay_dir_result res;
    static const struct {
        int status;
        const char *says;
    } cases[] = {
        {MS_ETRUNCATED, "truncated"},
        {MS_ECHECKSUM, "checksum mismatch"},
        {MS_ECORRUPT, "bytes follow the END record"},
        {MS_EMAGIC, "preamble, byte 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad.len = 0;
        th_buf_append(&bad, s.data, s.len);
        if (i == 0)
            bad.len -= 30;
        else if (i == 1)
            bad.data[s.len / 2] ^= 0x10;
        else if (i == 2)
            th_buf_append(&bad, "\n", 1);
        else
            bad.data[0] = 'x';
        assert_status(replay(&bad, out, &o, msg, sizeof msg, &res), cases[i].status);
        assert_status(res.stream_status, cases[i].status);
        assert_contains(msg, "test.mig: ");
        assert_contains(msg, cases[i].says);
        listing(dir, list, sizeof list);
        assert_string_equal(list, "");
    }

    /* The same handle, a good stream after a bad one. */
    ms_replay_dir *rd = ms_replay_dir_new(&o);
    ms_reader *r = ms_reader_new_memory(NULL, bad.data, bad.len);
    assert_status(ms_replay_dir_write(rd, r, NULL, out), MS_EMAGIC);
    assert_contains(ms_replay_dir_errmsg(rd), "stream: preamble");
    ms_reader_free(r);
    r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_replay_dir_write(rd, r, "good", out), 0);
    assert_string_equal(ms_replay_dir_errmsg(rd), "");
    assert_int_equal(ms_replay_dir_get_result(rd)->devices, 3);
    assert_status(ms_replay_dir_write(rd, NULL, "x", out), MS_EINVAL);
    assert_status(ms_replay_dir_write(rd, r, "x", ""), MS_EINVAL);
    ms_reader_free(r);
    ms_replay_dir_free(rd);
    ms_replay_dir_free(NULL);

    ms_replay_dir_options zero = {0}; /* not filled by init: a failed handle */
    rd = ms_replay_dir_new(&zero);
    assert_status(ms_replay_dir_status(rd), MS_EINVAL);
    assert_contains(ms_replay_dir_errmsg(rd), "_init");
    ms_replay_dir_free(rd);
    ms_replay_dir_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.max_map_memory, MS_PAGEMAP_DEFAULT_MEMORY);
    assert_false(o.force || o.no_sync || o.view);
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
    th_buf_free(&bad);
}

/* IN_PLACE pages whose references overlap (FORMAT.md section 6.2), even
 * when a later copy replaced one of them, and more extents than the replay
 * keeps (section 9): refused, nothing written. The same mapping sent twice
 * is fine. */
static void test_in_place_rules(void **state)
{
    (void)state;
    char *dir = scratch(), *out = path_in(dir, "out"), msg[1024], list[512];
    ms_replay_dir_options o = quick();
    ms_replay_dir_result res;
    for (int which = 0; which < 4; which++) {
        ms_writer_options wo;
        ms_writer_options_init(&wo);
        wo.features = MS_FEATURE_IN_PLACE;
        th_buf s = {0};
        ms_writer *w = ms_writer_new(&wo, th_sink_write, &s);
        ms_region a = {.id = 0, .name = "ram", .size = 16384 * PS, .page_size = PS};
        ms_region b = {.id = 1, .name = "vram", .size = 8 * PS, .page_size = PS};
        assert_status(ms_writer_add_region(w, &a), 0);
        assert_status(ms_writer_add_region(w, &b), 0);
        assert_status(ms_writer_in_place(w, 0, 0, 8, 0x100000), 0);
        if (which == 0) { /* the same mapping again: allowed */
            assert_status(ms_writer_in_place(w, 0, 4, 4, 0x100000 + 4 * PS), 0);
        } else if (which == 1) { /* vram onto ram's bytes */
            assert_status(ms_writer_in_place(w, 1, 0, 2, 0x100000 + 6 * PS), 0);
        } else if (which == 2) { /* ram pages 0..7 replaced, then vram onto their old bytes */
            assert_status(ms_writer_zero_pages(w, 0, 0, 8), 0);
            assert_status(ms_writer_in_place(w, 1, 0, 2, 0x100000), 0);
        } else { /* one extent past the replay's 4096 (every other page) */
            for (uint64_t k = 1; k <= 4096; k++)
                assert_status(ms_writer_in_place(w, 0, 2 * k, 1, 0x10000000 + 2 * k * PS), 0);
        }
        assert_status(ms_writer_finish(w, NULL), 0);
        ms_writer_free(w);
        int want = which == 0 ? 0 : which == 3 ? MS_ELIMIT : MS_ECORRUPT;
        assert_status(replay(&s, out, &o, msg, sizeof msg, &res), want);
        assert_status(res.stream_status, want);
        listing(dir, list, sizeof list);
        if (which == 0) {
            assert_string_equal(list, "out");
            nftw(out, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        } else {
            assert_string_equal(list, "");
            assert_contains(msg, which == 3 ? "more IN_PLACE extents" : "overlaps the bytes");
        }
        th_buf_free(&s);
    }
    free(out);
    scratch_free(dir);
}

/* ----------------------------------------------------------- output */

#define BIG_PAGES 16384u /* 64 MiB of FILL pages */

/* FILL over pages 0..BIG_PAGES-1 again and again with other words, then
 * DATA over page 1 and ZERO over page 2. */
static void refill_stream(th_buf *out, int times)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_FILL;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    ms_region r = {.id = 0, .name = "ram", .size = (uint64_t)4 * BIG_PAGES * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    for (int k = 0; k < times; k++)
        assert_status(ms_writer_fill_pages(w, 0, 0, BIG_PAGES, 0x0101010101010101u * (1 + k)), 0);
    assert_status(ms_writer_pages(w, 0, 1, 1, ram), 0);
    assert_status(ms_writer_zero_pages(w, 0, 2, 1), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

/* FILL pages are written once, with their last word, and count against
 * max_output with the DATA pages; past it the replay is refused before it
 * writes them, leaving nothing. */
static void test_output_limit(void **state)
{
    (void)state;
    th_buf s = {0};
    uint64_t rng = 5;
    th_rand_fill(&rng, ram, sizeof ram);
    refill_stream(&s, 40);
    char *dir = scratch(), *out = path_in(dir, "out"), msg[1024], list[512];
    ms_replay_dir_options o = quick();
    o.max_output = (uint64_t)BIG_PAGES * PS + (1 << 20);
    assert_status(replay(&s, out, &o, msg, sizeof msg, NULL), 0);
    char *img = path_in(out, "region-0.img");
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 <= (uint64_t)BIG_PAGES * PS + (1 << 20));
    int fd = open(img, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t page[PS];
    for (unsigned p = 0; p < 4; p++) {
        assert_int_equal(pread(fd, page, PS, (off_t)p * PS), PS);
        if (p == 1)
            assert_memory_equal(page, ram, PS);
        for (unsigned i = 0; p != 1 && i < PS; i++)
            if (page[i] != (p == 2 ? 0 : 40))
                fail_msg("page %u byte %u: %02x", p, i, page[i]);
    }
    assert_int_equal(pread(fd, page, PS, (off_t)(BIG_PAGES - 1) * PS), PS);
    assert_int_equal(page[PS - 1], 40);
    close(fd);
    free(img);
    scratch_free(dir);

    /* Half of it: refused, saying how much it would take, nothing left. */
    dir = scratch();
    free(out);
    out = path_in(dir, "out");
    o.max_output = (uint64_t)BIG_PAGES * PS / 2;
    assert_int_equal(replay(&s, out, &o, msg, sizeof msg, NULL), MS_ELIMIT);
    assert_non_null(strstr(msg, "the output would take 67108864 bytes (64.0 MiB) with these "
                                "FILL pages, more than its limit of 33554432 bytes"));
    listing(dir, list, sizeof list);
    assert_string_equal(list, "");
    scratch_free(dir);
    free(out);
    th_buf_free(&s);
}

/* ------------------------------------------------------- two at once */

#define FILL_PAGES 512u

static uint64_t fill_word(int which, unsigned page)
{
    return 0x0101010101010101u * (uint64_t)(1 + which * 2 + page % 2);
}

/* A stream of one-page FILL extents, alternating two words. */
static void fill_stream(th_buf *out, int which)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_FILL;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    ms_region r = {.id = 0, .name = "ram", .size = FILL_PAGES * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    for (unsigned p = 0; p < FILL_PAGES; p++)
        assert_status(ms_writer_fill_pages(w, 0, p, 1, fill_word(which, p)), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

typedef struct job {
    const th_buf *s;
    const char *path;
    int rc;
} job;

/* No cmocka assertion here: it would jump across threads. */
static void *replay_job(void *arg)
{
    job *j = arg;
    ms_replay_dir_options o = quick();
    ms_replay_dir *rd = ms_replay_dir_new(&o);
    ms_reader *r = ms_reader_new_memory(NULL, j->s->data, j->s->len);
    j->rc = ms_replay_dir_write(rd, r, "fill.mig", j->path);
    ms_reader_free(r);
    ms_replay_dir_free(rd);
    return NULL;
}

static void test_two_at_once(void **state)
{
    (void)state;
    char *dir = scratch();
    th_buf s[2] = {{0}};
    job jobs[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        fill_stream(&s[k], k);
        jobs[k] = (job){.s = &s[k], .path = path_in(dir, k ? "b" : "a")};
    }
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < 2; k++)
            assert_int_equal(pthread_create(&t[k], NULL, replay_job, &jobs[k]), 0);
        for (int k = 0; k < 2; k++) {
            pthread_join(t[k], NULL);
            assert_status(jobs[k].rc, 0);
        }
        for (int k = 0; k < 2; k++) {
            size_t size;
            uint8_t *img = slurp(jobs[k].path, "region-0.img", &size);
            assert_int_equal(size, FILL_PAGES * PS);
            for (unsigned p = 0; p < FILL_PAGES; p++) {
                uint8_t b = (uint8_t)fill_word(k, p);
                for (unsigned i = 0; i < PS; i++)
                    if (img[p * PS + i] != b)
                        fail_msg("replay %d, page %u, byte %u: %02x, expected %02x", k, p, i,
                                 img[p * PS + i], b);
            }
            free(img);
            char *victim = path_in(dir, k ? "b" : "a");
            nftw(victim, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            free(victim);
        }
    }
    for (int k = 0; k < 2; k++) {
        free((char *)jobs[k].path);
        th_buf_free(&s[k]);
    }
    scratch_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_devices_manifest),
        cmocka_unit_test(test_view),
        cmocka_unit_test(test_existing_output),
        cmocka_unit_test(test_stop_and_progress),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_in_place_rules),
        cmocka_unit_test(test_two_at_once),
        cmocka_unit_test(test_output_limit),
    };
    return th_run_tests(tests);
}
