/*
 * Hostile streams against the reader's region rules and against the replay
 * into a directory (migstream/replay_dir.h):
 *   - regions whose guest-physical range wraps around 2^64, and regions that
 *     overlap, are refused with MS_ECORRUPT and a message naming the region
 *     (FORMAT.md section 5.2), and replay writes nothing for them;
 *   - whatever the stream names (device paths such as ../../etc/x, absolute
 *     paths, a NUL inside a CBOR text, region names with '/') and whatever
 *     symbolic links the output path or the output directory hold, replay
 *     never writes outside its output directory, and files that links point
 *     at keep their contents and modification times;
 *   - page states scattered to make replay's page maps large stop at the
 *     maps' budget.
 * Each test works in its own fresh directory under $TMPDIR (or /tmp).
 */
#define _GNU_SOURCE /* mkdtemp, utimensat */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define PS 4096u

/* ----------------------------------------------------------------- helpers */

typedef struct rdesc {
    uint32_t id;
    const char *name;
    bool has_gpa;
    uint64_t gpa, size;
    uint32_t ps;
} rdesc;

static void regions_payload(th_buf *b, const rdesc *d, size_t n)
{
    b->len = 0;
    th_cbor_head(b, 4, n);
    for (size_t i = 0; i < n; i++)
        th_cbor_region(b, d[i].id, d[i].name, d[i].has_gpa, d[i].gpa, d[i].size, d[i].ps);
}

/* A stream of one or two REGIONS records (@b may hold none) and END. */
static void regions_stream(const rdesc *a, size_t na, const rdesc *b, size_t nb, th_buf *out)
{
    th_buf empty = {0}, pa = {0}, pb = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &empty);
    assert_non_null(w);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    th_stream ts;
    th_stream_parse(&ts, empty.data, empty.len);
    regions_payload(&pa, a, na);
    th_stream_insert(&ts, 0, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND, pa.data, pa.len);
    if (nb) {
        regions_payload(&pb, b, nb);
        th_stream_insert(&ts, 1, MS_REC_REGIONS, MS_RECORD_MUST_UNDERSTAND, pb.data, pb.len);
    }
    th_stream_fix_end(&ts);
    out->len = 0;
    th_stream_build(&ts, out);
    th_stream_free(&ts);
    th_buf_free(&empty);
    th_buf_free(&pa);
    th_buf_free(&pb);
}

/* Reads @s to its end; returns the status and copies the message. */
static int read_status(const th_buf *s, char *msg, size_t n, int64_t *record)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    assert_non_null(r);
    int rc = th_read_all(r, NULL);
    if (rc == 0)
        rc = ms_reader_expect_eof(r);
    snprintf(msg, n, "%s", ms_reader_errmsg(r));
    *record = ms_reader_error_record(r);
    ms_reader_free(r);
    return rc;
}

/* A fresh directory for one test. */
static char *scratch(void)
{
    const char *t = getenv("TMPDIR");
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/ms-hostile-XXXXXX", t && *t ? t : "/tmp");
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

/* A file a link points at: its contents and times must survive. */
typedef struct victim {
    char *path;
    char text[64];
    struct timespec mtime;
} victim;

static void victim_make(victim *v, const char *dir, const char *name)
{
    v->path = path_in(dir, name);
    snprintf(v->text, sizeof v->text, "%s must stay as it is\n", name);
    int fd = open(v->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, v->text, strlen(v->text)), (ssize_t)strlen(v->text));
    close(fd);
    /* A time in the past, so that any write would show. */
    struct timespec t[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, v->path, t, 0), 0);
    v->mtime = t[1];
}

static void victim_check(victim *v)
{
    struct stat st;
    char buf[128] = {0};
    assert_int_equal(lstat(v->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mtim.tv_sec, v->mtime.tv_sec);
    assert_int_equal(st.st_size, (off_t)strlen(v->text));
    int fd = open(v->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof buf - 1), (ssize_t)strlen(v->text));
    close(fd);
    assert_string_equal(buf, v->text);
    free(v->path);
}

typedef struct mem_in {
    const uint8_t *p;
    size_t size, pos;
    const char *plant_in; /* see planting_read */
    int planted;
} mem_in;

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    mem_in *m = ctx;
    size_t n = m->size - m->pos < len ? m->size - m->pos : len;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

/* How a replay ended: done, the stream refused (ms_replay_dir_result's
 * stream_status set), or a failure on the output side. */
typedef enum outcome { REPLAY_OK, REPLAY_REFUSED, REPLAY_ERROR } outcome;

/* Replays through @read into @out with @o; copies the message into @err. */
static outcome replay_with(ms_read_fn read, mem_in *in, const char *out,
                           const ms_replay_dir_options *o, char *err, size_t n, int *status)
{
    ms_replay_dir *rd = ms_replay_dir_new(o);
    assert_non_null(rd);
    ms_reader *r = ms_reader_new(NULL, read, in);
    assert_non_null(r);
    int rc = ms_replay_dir_write(rd, r, "test", out);
    int stream = ms_replay_dir_get_result(rd)->stream_status;
    snprintf(err, n, "%s", ms_replay_dir_errmsg(rd));
    ms_reader_free(r);
    ms_replay_dir_free(rd);
    if (status)
        *status = rc;
    assert_true(rc <= 0);
    if (rc == 0)
        assert_string_equal(err, "");
    else
        assert_true(err[0] != 0); /* every failure says why */
    return rc == 0 ? REPLAY_OK : stream ? REPLAY_REFUSED : REPLAY_ERROR;
}

static outcome replay(const th_buf *s, const char *out, bool force, char *err, size_t n)
{
    mem_in in = {s->data, s->len, 0, NULL, 0};
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.force = force;
    o.no_sync = true;
    return replay_with(mem_read, &in, out, &o, err, n, NULL);
}

/* Every file in @out is a regular file with a name replay makes up. */
static void check_output_names(const char *out)
{
    DIR *d = opendir(out);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        unsigned k;
        char ext[8], tail;
        bool ok = !strcmp(e->d_name, "manifest.json") ||
                  sscanf(e->d_name, "region-%u.im%1[g]%c", &k, ext, &tail) == 2 ||
                  (sscanf(e->d_name, "device-%u.%7[a-z]%c", &k, ext, &tail) == 2 &&
                   (!strcmp(ext, "cbor") || !strcmp(ext, "json")));
        if (!ok)
            fail_msg("unexpected output file %s", e->d_name);
        struct stat st;
        assert_int_equal(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
    }
    closedir(d);
}

/* ------------------------------------------------- wrapping and overlapping */

static void expect_region_refused(const th_buf *s, int64_t record, const char *names_region,
                                  const char *why)
{
    char msg[600];
    int64_t rec;
    int rc = read_status(s, msg, sizeof msg, &rec);
    if (rc != MS_ECORRUPT)
        fail_msg("status %d (%s), expected MS_ECORRUPT: %s", rc, ms_strerror(rc), msg);
    assert_contains(msg, names_region);
    assert_contains(msg, why);
    assert_int_equal(rec, record);

    /* Replay refuses it too and leaves nothing. */
    char *dir = scratch(), *out = path_in(dir, "out"), err[600], list[256];
    assert_int_equal(replay(s, out, false, err, sizeof err), REPLAY_REFUSED);
    assert_contains(err, names_region);
    listing(dir, list, sizeof list);
    assert_string_equal(list, "");
    free(out);
    scratch_free(dir);
}

static void expect_regions_ok(const th_buf *s)
{
    char msg[600];
    int64_t rec;
    int rc = read_status(s, msg, sizeof msg, &rec);
    if (rc != 0)
        fail_msg("refused a valid stream: %s", msg);
}

static void test_region_wraps(void **state)
{
    (void)state;
    th_buf s = {0};
    const uint64_t top = UINT64_MAX - (PS - 1); /* the last page's address */
    static const struct {
        uint64_t gpa, size;
        uint32_t ps;
    } bad[] = {
        {UINT64_MAX - (PS - 1), 2 * PS, PS},            /* one page past the end */
        {UINT64_C(1) << 63, (UINT64_C(1) << 63) + PS, PS}, /* half plus a page */
        {2 * PS, UINT64_MAX - (PS - 1), PS},            /* all but one page, from page 2 */
        {UINT64_MAX - (16u << 20) + 1, 32u << 20, 16u << 20}, /* 16 MiB pages */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const rdesc r = {7, "wrap", true, bad[i].gpa, bad[i].size, bad[i].ps};
        regions_stream(&r, 1, NULL, 0, &s);
        expect_region_refused(&s, 0, "region 7 \"wrap\"", "wraps");
    }
    /* Ending exactly at 2^64 - 1 is allowed (gpa + size - 1 does not wrap). */
    const rdesc fits[] = {{1, "top", true, top, PS, PS},
                          {2, "upper-half", true, UINT64_C(1) << 62, UINT64_C(1) << 62, PS}};
    regions_stream(fits, 2, NULL, 0, &s);
    expect_regions_ok(&s);
    const rdesc rest[] = {{1, "rest", true, PS, UINT64_MAX - (PS - 1), PS}};
    regions_stream(rest, 1, NULL, 0, &s);
    expect_regions_ok(&s);
    th_buf_free(&s);
}

static void test_region_overlaps(void **state)
{
    (void)state;
    th_buf s = {0};
    const uint64_t M = 1u << 20, top = UINT64_MAX - (PS - 1);
    /* identical ranges */
    const rdesc same[] = {{1, "lo", true, 0, M, PS}, {2, "dup", true, 0, M, PS}};
    regions_stream(same, 2, NULL, 0, &s);
    expect_region_refused(&s, 0, "region 2 \"dup\" overlaps region 1 \"lo\"", "overlap");
    /* one inside the other, declared in either order */
    const rdesc inner[] = {{1, "outer", true, 0, 16 * M, PS}, {2, "inner", true, 4 * M, M, PS}};
    regions_stream(inner, 2, NULL, 0, &s);
    expect_region_refused(&s, 0, "region 2 \"inner\" overlaps region 1 \"outer\"", "overlap");
    const rdesc outer[] = {{2, "inner", true, 4 * M, M, PS}, {1, "outer", true, 0, 16 * M, PS}};
    regions_stream(outer, 2, NULL, 0, &s);
    expect_region_refused(&s, 0, "region 1 \"outer\" overlaps region 2 \"inner\"", "overlap");
    /* across two REGIONS records, by one page */
    const rdesc first[] = {{1, "lo", true, 0, M, PS}};
    const rdesc second[] = {{9, "late", true, M - PS, M, PS}};
    regions_stream(first, 1, second, 1, &s);
    expect_region_refused(&s, 1, "region 9 \"late\" overlaps region 1 \"lo\"", "overlap");
    /* at the very top of the address space, where gpa + size would be 0 */
    const rdesc high[] = {{1, "top2", true, top - PS, 2 * PS, PS}, {3, "last", true, top, PS, PS}};
    regions_stream(high, 2, NULL, 0, &s);
    expect_region_refused(&s, 0, "region 3 \"last\" overlaps region 1 \"top2\"", "overlap");
    /* one huge region, another anywhere */
    const rdesc huge[] = {{1, "all", true, 0, top, PS}, {2, "any", true, UINT64_C(1) << 40, PS, PS}};
    regions_stream(huge, 2, NULL, 0, &s);
    expect_region_refused(&s, 0, "region 2 \"any\" overlaps region 1 \"all\"", "overlap");
    /* touching ranges and regions without gpa are fine */
    const rdesc ok[] = {{1, "a", true, 0, M, PS},
                        {2, "b", true, M, M, PS},
                        {3, "c", false, 0, M, PS},
                        {4, "d", false, 0, M, PS}};
    regions_stream(ok, 4, NULL, 0, &s);
    expect_regions_ok(&s);
    th_buf_free(&s);
}

/* ----------------------------------------------------- replay and the disk */

/* A device state: {0: 1} */
static const uint8_t tiny_state[] = {0xa1, 0x00, 0x01};

/* A stream whose names try to reach outside: region names with '/' and
 * '..', device paths that are relative escapes, absolute, or look like the
 * output's own files. */
static void escaping_stream(th_buf *out)
{
    out->len = 0;
    ms_writer *w = ms_writer_new(NULL, th_sink_write, out);
    assert_non_null(w);
    const ms_region r0 = {
        .id = 0, .name = "../../etc/passwd", .has_gpa = true, .size = 16 * PS, .page_size = PS};
    const ms_region r1 = {.id = 1, .name = "/tmp/region-0.img", .size = 4 * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r0), 0);
    assert_status(ms_writer_add_region(w, &r1), 0);
    uint8_t page[2 * PS];
    uint64_t rng = 42;
    th_rand_fill(&rng, page, sizeof page);
    assert_status(ms_writer_pages(w, 0, 0, 2, page), 0);
    assert_status(ms_writer_zero_pages(w, 0, 2, 14), 0);
    assert_status(ms_writer_pages(w, 1, 3, 1, page), 0);
    static const char *const paths[] = {"../../etc/x", "/etc/shadow", "..", "manifest.json",
                                        "region-0.img", "a/../../../b"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_status(ms_writer_device(w, paths[i], 0, "s", 1, tiny_state, sizeof tiny_state),
                      0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void test_replay_names_from_stream(void **state)
{
    (void)state;
    th_buf s = {0};
    escaping_stream(&s);
    char *dir = scratch(), *out = path_in(dir, "out"), err[600], list[512];
    if (replay(&s, out, false, err, sizeof err) != REPLAY_OK)
        fail_msg("%s", err);
    listing(dir, list, sizeof list);
    assert_string_equal(list, "out");
    listing(out, list, sizeof list);
    assert_string_equal(list, "device-0.cbor device-0.json device-1.cbor device-1.json "
                              "device-2.cbor device-2.json device-3.cbor device-3.json "
                              "device-4.cbor device-4.json device-5.cbor device-5.json "
                              "manifest.json region-0.img region-1.img");
    check_output_names(out);
    /* The names are in the manifest, as JSON strings, and nowhere else. */
    char *mpath = path_in(out, "manifest.json");
    FILE *f = fopen(mpath, "r");
    assert_non_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    assert_contains(text, "\"../../etc/x\"");
    assert_contains(text, "\"/etc/shadow\"");
    assert_contains(text, "\"../../etc/passwd\"");
    free(mpath);
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
}

static void test_replay_nul_in_device_path(void **state)
{
    (void)state;
    th_buf s = {0}, p = {0};
    escaping_stream(&s);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    size_t at = th_stream_find(&ts, MS_REC_DEVICE, 0);
    /* {0: "../\0/x", 1: 0, 2: "s", 3: 1, 4: {0: 1}}: a NUL inside the text */
    th_cbor_head(&p, 5, 5);
    th_cbor_uint(&p, 0);
    th_cbor_head(&p, 3, 6);
    th_buf_append(&p, "../\0/x", 6);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 2);
    th_cbor_text(&p, "s");
    th_cbor_uint(&p, 3);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, 4);
    th_buf_append(&p, tiny_state, sizeof tiny_state);
    th_stream_set(&ts, at, p.data, p.len);
    s.len = 0;
    th_stream_build(&ts, &s);
    th_stream_free(&ts);

    char *dir = scratch(), *out = path_in(dir, "out"), err[600], list[256];
    assert_int_equal(replay(&s, out, false, err, sizeof err), REPLAY_REFUSED);
    assert_contains(err, "NUL");
    listing(dir, list, sizeof list);
    assert_string_equal(list, "");
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
    th_buf_free(&p);
}

/* The output path is a symbolic link to a directory: refused without
 * force; with force the link itself is replaced, never followed. */
static void test_replay_output_is_symlink(void **state)
{
    (void)state;
    th_buf s = {0};
    escaping_stream(&s);
    char *dir = scratch(), *out = path_in(dir, "out"), *target = path_in(dir, "elsewhere");
    char err[600], list[512];
    assert_int_equal(mkdir(target, 0755), 0);
    victim v;
    victim_make(&v, target, "region-0.img");
    victim manifest;
    victim_make(&manifest, target, "manifest.json");
    assert_int_equal(symlink("elsewhere", out), 0);

    int status;
    mem_in in = {s.data, s.len, 0, NULL, 0};
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.no_sync = true;
    assert_int_equal(replay_with(mem_read, &in, out, &o, err, sizeof err, &status),
                     REPLAY_ERROR);
    assert_status(status, MS_EINVAL);
    assert_contains(err, "exists");
    listing(dir, list, sizeof list);
    assert_string_equal(list, "elsewhere out");

    if (replay(&s, out, true, err, sizeof err) != REPLAY_OK)
        fail_msg("%s", err);
    struct stat st;
    assert_int_equal(lstat(out, &st), 0);
    assert_true(S_ISDIR(st.st_mode)); /* a real directory now */
    check_output_names(out);
    listing(target, list, sizeof list);
    assert_string_equal(list, "manifest.json region-0.img");
    victim_check(&v);
    victim_check(&manifest);
    listing(dir, list, sizeof list);
    assert_string_equal(list, "elsewhere out");
    free(out);
    free(target);
    scratch_free(dir);
    th_buf_free(&s);
}

/* An existing output directory holding links named like output files,
 * replaced with force: the links go, what they point at stays. */
static void test_replay_old_output_holds_symlinks(void **state)
{
    (void)state;
    th_buf s = {0};
    escaping_stream(&s);
    char *dir = scratch(), *out = path_in(dir, "out"), err[600], list[512];
    victim v1, v2, v3;
    victim_make(&v1, dir, "victim");
    victim_make(&v2, dir, "victim2");
    victim_make(&v3, dir, "victim3");
    assert_int_equal(mkdir(out, 0755), 0);
    char *l1 = path_in(out, "region-0.img"), *l2 = path_in(out, "manifest.json"),
         *l3 = path_in(out, "device-0.cbor");
    assert_int_equal(symlink("../victim", l1), 0);
    assert_int_equal(symlink(v2.path, l2), 0); /* absolute */
    assert_int_equal(symlink("../victim3", l3), 0);

    if (replay(&s, out, true, err, sizeof err) != REPLAY_OK)
        fail_msg("%s", err);
    check_output_names(out);
    victim_check(&v1);
    victim_check(&v2);
    victim_check(&v3);
    listing(dir, list, sizeof list);
    assert_string_equal(list, "out victim victim2 victim3");
    free(l1);
    free(l2);
    free(l3);
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
}

/* Links planted inside the temporary output directory while the replay
 * runs (by anyone who can write there): every file is created without
 * following a link, so the replay fails instead of writing through one,
 * and removes what it made. */
static ssize_t planting_read(void *ctx, void *buf, size_t len)
{
    mem_in *m = ctx;
    if (!m->planted) {
        DIR *d = opendir(m->plant_in);
        struct dirent *e;
        assert_non_null(d);
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "out.tmp-", 8))
                continue;
            static const char *const names[] = {"region-0.img", "region-1.img", "stage-0.cbor",
                                                "stage-0.json", "manifest.json"};
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                char link[4200];
                snprintf(link, sizeof link, "%s/%s/%s", m->plant_in, e->d_name, names[i]);
                assert_int_equal(symlink("../victim", link), 0);
            }
            m->planted = 1;
        }
        closedir(d);
        assert_true(m->planted);
    }
    return mem_read(ctx, buf, len);
}

static void plant_case(const th_buf *s, const char *why)
{
    char *dir = scratch(), *out = path_in(dir, "out"), err[600], list[256];
    victim v;
    victim_make(&v, dir, "victim");
    mem_in in = {s->data, s->len, 0, dir, 0};
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.no_sync = true;
    int status;
    assert_int_equal(replay_with(planting_read, &in, out, &o, err, sizeof err, &status),
                     REPLAY_ERROR);
    assert_status(status, MS_EIO);
    assert_contains(err, why);
    victim_check(&v);
    listing(dir, list, sizeof list);
    assert_string_equal(list, "victim");
    free(out);
    scratch_free(dir);
}

static void test_replay_links_planted_in_output(void **state)
{
    (void)state;
    th_buf s = {0};
    escaping_stream(&s); /* fails at the first image: it exists */
    plant_case(&s, "region-0.img");
    /* No regions: the device files are the first to be made. */
    s.len = 0;
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &s);
    assert_status(ms_writer_device(w, "../../etc/x", 0, "s", 1, tiny_state, sizeof tiny_state),
                  0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    plant_case(&s, "stage-0.cbor");
    /* Nothing but END: the manifest is the only file. */
    s.len = 0;
    w = ms_writer_new(NULL, th_sink_write, &s);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    plant_case(&s, "manifest.json");
    th_buf_free(&s);
}

/* Page states scattered one page per map chunk: each chunk needs its own
 * map (migstream/pagemap.h), so a stream of small extents could make replay
 * allocate far more than it sent. The maps' budget stops it with a message
 * instead, and nothing is written. */
static void test_replay_map_budget(void **state)
{
    (void)state;
    th_buf s = {0};
    ms_writer *w = ms_writer_new(NULL, th_sink_write, &s);
    assert_non_null(w);
    const ms_region r = {
        .id = 0, .name = "ram", .has_gpa = true, .size = (uint64_t)64 * 4096 * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    for (uint64_t k = 0; k < 64; k++)
        assert_status(ms_writer_zero_pages(w, 0, k * 4096 + 7, 1), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);

    char *dir = scratch(), *out = path_in(dir, "out"), err[600], list[256];
    mem_in in = {s.data, s.len, 0, NULL, 0};
    ms_replay_dir_options o;
    ms_replay_dir_options_init(&o);
    o.no_sync = true;
    o.max_map_memory = 64 << 10;
    int status;
    assert_int_equal(replay_with(mem_read, &in, out, &o, err, sizeof err, &status),
                     REPLAY_ERROR);
    assert_status(status, MS_ELIMIT);
    assert_contains(err, "region 0 \"ram\"");
    assert_contains(err, "exceed");
    listing(dir, list, sizeof list);
    assert_string_equal(list, "");
    /* With the default budget the same stream is replayed. */
    if (replay(&s, out, false, err, sizeof err) != REPLAY_OK)
        fail_msg("%s", err);
    check_output_names(out);
    free(out);
    scratch_free(dir);
    th_buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_wraps),
        cmocka_unit_test(test_region_overlaps),
        cmocka_unit_test(test_replay_names_from_stream),
        cmocka_unit_test(test_replay_nul_in_device_path),
        cmocka_unit_test(test_replay_output_is_symlink),
        cmocka_unit_test(test_replay_old_output_holds_symlinks),
        cmocka_unit_test(test_replay_links_planted_in_output),
        cmocka_unit_test(test_replay_map_budget),
    };
    return th_run_tests(tests);
}
