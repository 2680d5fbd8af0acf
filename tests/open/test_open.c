/*
 * ms_open(), ms_open_files() (include/migstream/open.h): a stream of any
 * format read through one ms_reader. A QEMU capture read directly must
 * leave the same final state as its libmigstream import read back (ms_diff
 * finds no difference); a multifd capture opens with its channels in any
 * order; inputs that are no stream, two main inputs, or a channel without
 * its main stream are refused, naming the input.
 */
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include "helpers.h"
#if MS_HAVE_QEMU
#include "qemu_fixture.h"
#endif

/* A read callback over a buffer, sequential only (a pipe). */
typedef struct memin {
    const uint8_t *p;
    size_t n, pos;
} memin;

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    memin *m = ctx;
    size_t k = m->n - m->pos < len ? m->n - m->pos : len;
    if (k > 1000)
        k = 1000; /* short reads, as a pipe gives */
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

/* Writes @n bytes to a new temporary file; returns its path (malloc'd). */
static char *temp_file(const void *p, size_t n)
{
    char *path = strdup("/tmp/ms-test-open-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Reads @r to its end: 0 or the status; the records counted in *@records. */
static int drain(ms_reader *r, size_t *records)
{
    int rc = ms_reader_status(r);
    const ms_record *rec;
    size_t k = 0;
    if (rc)
        return rc;
    while ((rc = ms_reader_next(r, &rec)) > 0)
        k++;
    if (records)
        *records = k;
    return rc;
}

static void test_formats(void **state)
{
    (void)state;
    const char *const *f = ms_formats();
    assert_string_equal(f[0], "migstream");
    size_t i = 1;
#if MS_HAVE_QEMU
    assert_string_equal(f[i++], "qemu");
#endif
#if MS_HAVE_LIBVIRT
    assert_string_equal(f[i++], "libvirt");
#endif
#if MS_HAVE_XEN
    assert_string_equal(f[i++], "xen");
#endif
    assert_null(f[i]);
}

/* This library's own streams: from a file (read by position for the bid)
 * and from a pipe-like callback (read ahead and handed out again). */
static void test_native(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    size_t want;
    ms_reader *plain = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(drain(plain, &want), 0);
    ms_reader_free(plain);

    char *path = temp_file(s.data, s.len);
    const char *paths[] = {path};
    ms_reader *r = ms_open_files(NULL, paths, 1);
    size_t got;
    assert_status(drain(r, &got), 0);
    assert_int_equal(got, want);
    assert_string_equal(ms_reader_format(r), "migstream");
    assert_status(ms_reader_expect_eof(r), 0);
    ms_reader_free(r);

    memin m = {s.data, s.len, 0};
    ms_input in = {.read = mem_read, .read_ctx = &m, .name = "pipe"};
    r = ms_open(NULL, &in, 1);
    assert_status(drain(r, &got), 0);
    assert_int_equal(got, want);
    ms_reader_free(r);
    unlink(path);
    free(path);
    th_buf_free(&s);
}

/* What is refused, and how the refusal names the input. */
static void test_refusals(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    static const uint8_t junk[] = "this is no migration stream at all";
    char *a = temp_file(s.data, s.len), *b = temp_file(s.data, s.len),
         *j = temp_file(junk, sizeof junk - 1), *e = temp_file("", 0);

    /* A lone input no format recognizes: this library's reader says what
     * is wrong with it, as it would have read alone. */
    const char *one[] = {j};
    ms_reader *r = ms_open_files(NULL, one, 1);
    assert_status(ms_reader_status(r), 0);
    assert_status(drain(r, NULL), MS_EMAGIC);
    assert_contains(ms_reader_errmsg(r), "bad magic 74 68 69 73");
    assert_contains(ms_reader_errmsg(r), "not a libmigstream stream");
    assert_string_equal(ms_reader_format(r), "migstream");
    ms_reader_free(r);

    one[0] = e;
    r = ms_open_files(NULL, one, 1);
    assert_status(drain(r, NULL), MS_ETRUNCATED);
    assert_contains(ms_reader_errmsg(r), "empty");
    ms_reader_free(r);

    /* Among several inputs, one no format recognizes is refused by name. */
    const char *pair[] = {j, e};
    r = ms_open_files(NULL, pair, 2);
    assert_status(ms_reader_status(r), MS_EMAGIC);
    assert_contains(ms_reader_errmsg(r), j);
    assert_contains(ms_reader_errmsg(r), "first bytes 74 68 69 73");
    assert_contains(ms_reader_errmsg(r), "libmigstream stream");
    ms_reader_free(r);

    const char *two[] = {a, b};
    r = ms_open_files(NULL, two, 2);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "both main inputs");
    ms_reader_free(r);

    two[1] = j;
    r = ms_open_files(NULL, two, 2);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "not an extra input");
    assert_contains(ms_reader_errmsg(r), j);
    ms_reader_free(r);

    one[0] = "/nonexistent/stream.mig";
    r = ms_open_files(NULL, one, 1);
    assert_status(ms_reader_status(r), MS_EIO);
    assert_contains(ms_reader_errmsg(r), "No such file");
    ms_reader_free(r);

    ms_open_options o;
    ms_open_options_init(&o);
    o.format = "vmware";
    one[0] = a;
    r = ms_open_files(&o, one, 1);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "vmware");
    ms_reader_free(r);
    r = ms_open(NULL, NULL, 0);
    assert_status(ms_reader_status(r), MS_EINVAL);
    ms_reader_free(r);

    for (char **p = (char *[]){a, b, j, e, NULL}; *p; p++) {
        unlink(*p);
        free(*p);
    }
    th_buf_free(&s);
}

#if MS_HAVE_QEMU
/* Counts the differences ms_diff reports. */
static int count_diff(void *ctx, const ms_diff_item *item)
{
    (void)item;
    ++*(int *)ctx;
    return 0;
}

/* A QEMU capture read directly against its import: the same final state. */
static void same_as_import(const char *name, const char *const *channels, size_t nchannels)
{
    size_t n;
    uint8_t *q = th_qemu_fixture(name, &n);
    char *paths[8];
    paths[0] = temp_file(q, n);
    free(q);
    for (size_t i = 0; i < nchannels; i++) {
        uint8_t *c = th_qemu_fixture(channels[i], &n);
        paths[1 + i] = temp_file(c, n);
        free(c);
    }

    /* The import, through the public importer. */
    th_buf imported = {0};
    ms_qemu_import *imp = ms_qemu_import_new(NULL);
    for (size_t i = 0; i < nchannels; i++) {
        int fd = open(paths[1 + i], O_RDONLY);
        assert_status(ms_qemu_import_add_channel_fd(imp, fd, NULL), 0);
    }
    int in = open(paths[0], O_RDONLY);
    char *out = temp_file("", 0);
    int fd = open(out, O_WRONLY | O_TRUNC);
    assert_status(ms_qemu_import_run_fd(imp, in, fd), 0);
    close(fd);
    close(in);
    ms_qemu_import_free(imp);

    /* The capture, opened directly, its channels listed first. */
    const char *order[8];
    for (size_t i = 0; i < nchannels; i++)
        order[i] = paths[1 + i];
    order[nchannels] = paths[0];
    ms_reader *direct = ms_open_files(NULL, order, nchannels + 1);
    assert_status(ms_reader_status(direct), 0);
    const char *imp_path[] = {out};
    ms_reader *via = ms_open_files(NULL, imp_path, 1);
    ms_diff *d = ms_diff_new(NULL);
    if (ms_diff_load(d, MS_DIFF_A, direct, name) || ms_diff_load(d, MS_DIFF_B, via, out))
        print_error("%s\n", ms_diff_errmsg(d));
    assert_status(ms_diff_status(d), 0);
    assert_string_equal(ms_reader_format(direct), "qemu");
    int items = 0;
    /* Metadata aside (writer name and version, description), nothing
     * differs: the same guest. */
    int rc = ms_diff_compare(d, count_diff, &items);
    const ms_diff_totals *t = ms_diff_get_totals(d);
    assert_true(rc >= 0);
    assert_int_equal(t->regions, 0);
    assert_int_equal(t->pages, 0);
    assert_int_equal(t->devices, 0);
    assert_int_equal(t->overlays, 0);
    ms_diff_free(d);
    ms_reader_free(direct);
    ms_reader_free(via);
    unlink(out);
    free(out);
    for (size_t i = 0; i <= nchannels; i++) {
        unlink(paths[i]);
        free(paths[i]);
    }
    th_buf_free(&imported);
}

static void test_qemu_direct(void **state)
{
    (void)state;
    same_as_import("q35-devices", NULL, 0);
    same_as_import("pc-xbzrle-live", NULL, 0);
    static const char *const ch[] = {"pc-multifd-live.chan2", "pc-multifd-live.chan0",
                                     "pc-multifd-live.chan1"};
    same_as_import("pc-multifd-live", ch, 3);
}

/* A channel alone, or with a stream of another format. */
static void test_qemu_channels_refused(void **state)
{
    (void)state;
    size_t n;
    uint8_t *c = th_qemu_fixture("q35-multifd.chan0", &n);
    char *chan = temp_file(c, n);
    free(c);
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    char *mig = temp_file(s.data, s.len);
    const char *one[] = {chan};
    ms_reader *r = ms_open_files(NULL, one, 1);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), chan);
    assert_contains(ms_reader_errmsg(r),
                    "a multifd channel of a QEMU migration stream, given without its main input");
    ms_reader_free(r);
    const char *both[] = {chan, chan};
    r = ms_open_files(NULL, both, 2);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "without its main input");
    ms_reader_free(r);
    size_t qn;
    uint8_t *q = th_qemu_fixture("q35-multifd", &qn);
    char *main_stream = temp_file(q, qn);
    free(q);
    const char *mixed[] = {mig, main_stream};
    r = ms_open_files(NULL, mixed, 2);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "(a libmigstream stream) and ");
    assert_contains(ms_reader_errmsg(r), "(a QEMU migration stream) are both main inputs");
    ms_reader_free(r);
    unlink(main_stream);
    free(main_stream);
    const char *two[] = {mig, chan};
    r = ms_open_files(NULL, two, 2);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "a multifd channel of a QEMU migration stream, not an "
                                         "extra input of the libmigstream stream");
    ms_reader_free(r);
    unlink(chan);
    unlink(mig);
    free(chan);
    free(mig);
    th_buf_free(&s);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_native),
        cmocka_unit_test(test_refusals),
#if MS_HAVE_QEMU
        cmocka_unit_test(test_qemu_direct),
        cmocka_unit_test(test_qemu_channels_refused),
#endif
    };
    return th_run_tests(tests);
}
