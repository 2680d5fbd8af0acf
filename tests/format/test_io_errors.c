/*
 * Errors keep their cause (common.h, "Callbacks"): after MS_EIO, the value
 * the read callback returned and the errno seen right after it returned
 * are reachable through ms_reader_io_error(), and the message names the
 * cause; the failure is sticky and the cause stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

/* Hands out @ok bytes of a stream, then returns @ret with errno set to
 * @err. */
typedef struct failing_in {
    const uint8_t *p;
    size_t ok, pos;
    ssize_t ret;
    int err;
} failing_in;

static ssize_t failing_read(void *ctx, void *buf, size_t len)
{
    failing_in *in = ctx;
    if (in->pos == in->ok) {
        errno = in->err;
        return in->ret;
    }
    size_t n = in->ok - in->pos < len ? in->ok - in->pos : len;
    memcpy(buf, in->p + in->pos, n);
    in->pos += n;
    return (ssize_t)n;
}

static void test_reader_cause(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    static const struct {
        ssize_t ret;
        int err;
        const char *says;
    } cases[] = {
        {-42, 0, "returned -42"}, /* the callback's own code */
        {-1, ECONNRESET, "returned -1, errno 104 (Connection reset by peer)"}, /* read(2) */
        {-EPIPE, EPIPE, "Broken pipe"},                                        /* -errno */
        {-EIO, 0, "Input/output error"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t ok = 0; ok < s.len; ok += s.len / 3) {
            failing_in in = {.p = s.data, .ok = ok, .ret = cases[c].ret, .err = cases[c].err};
            ms_reader *r = ms_reader_new(NULL, failing_read, &in);
            int err = -1;
            assert_int_equal(ms_reader_io_error(r, &err), 0); /* nothing failed yet */
            assert_int_equal(err, 0);
            assert_status(th_read_all(r, NULL), MS_EIO);
            assert_contains(ms_reader_errmsg(r), cases[c].says);
            assert_int_equal(ms_reader_io_error(r, &err), cases[c].ret);
            assert_int_equal(err, cases[c].err);
            assert_status(th_read_all(r, NULL), MS_EIO); /* sticky, cause kept */
            assert_int_equal(ms_reader_io_error(r, NULL), cases[c].ret);
            ms_reader_free(r);
        }
    }
    /* A count larger than asked for is a failure too, with errno 0. */
    failing_in in = {.p = s.data, .ok = 0, .ret = 1 << 30, .err = ENOSPC};
    ms_reader *r = ms_reader_new(NULL, failing_read, &in);
    assert_status(th_read_all(r, NULL), MS_EIO);
    assert_int_equal(ms_reader_io_error(r, NULL), 1 << 30);
    ms_reader_free(r);
    /* Other failures have no I/O cause. */
    r = ms_reader_new_memory(NULL, s.data, s.len / 2);
    assert_status(th_read_all(r, NULL), MS_ETRUNCATED);
    int err = -1;
    assert_int_equal(ms_reader_io_error(r, &err), 0);
    assert_int_equal(err, 0);
    ms_reader_free(r);
    assert_int_equal(ms_reader_io_error(NULL, NULL), 0);
    th_buf_free(&s);
}

/* The descriptor reader: its "callback" returns -errno. */
static void test_reader_fd_cause(void **state)
{
    (void)state;
    int fd = open(".", O_RDONLY); /* read() on a directory: EISDIR */
    assert_true(fd >= 0);
    ms_reader *r = ms_reader_new_fd(NULL, fd);
    assert_status(th_read_all(r, NULL), MS_EIO);
    int err;
    assert_int_equal(ms_reader_io_error(r, &err), -EISDIR);
    assert_int_equal(err, EISDIR);
    assert_contains(ms_reader_errmsg(r), strerror(EISDIR));
    ms_reader_free(r);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_cause),
        cmocka_unit_test(test_reader_fd_cause),
    };
    return th_run_tests(tests);
}
