/*
 * Errors keep their cause (common.h, "Callbacks"): after MS_EIO, the value
 * the read or write callback returned and the errno seen right after it
 * returned are reachable through ms_reader_io_error() and
 * ms_writer_io_error(), and the message names the cause; the failure is
 * sticky and the cause stays. SIGPIPE: a socket whose peer has gone gives
 * MS_EIO with EPIPE and never the signal, blocking or not; a pipe whose
 * reader has gone raises it, as common.h says, unless it is ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* ----------------------------------------------------------------- writer */

/* An output that takes @ok bytes, then returns @ret with errno @err. */
typedef struct failing_out {
    th_buf buf;
    size_t ok;
    ssize_t ret;
    int err;
} failing_out;

static int failing_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    failing_out *o = ctx;
    if (o->buf.len >= o->ok) {
        errno = o->err;
        return (int)o->ret;
    }
    return th_sink_write(&o->buf, iov, iovcnt);
}

static ssize_t failing_write_some(void *ctx, const struct iovec *iov, int iovcnt)
{
    failing_out *o = ctx;
    if (o->buf.len >= o->ok) {
        errno = o->err;
        return o->ret;
    }
    size_t n = iov[0].iov_len < 1000 ? iov[0].iov_len : 1000;
    if (n > o->ok - o->buf.len)
        n = o->ok - o->buf.len;
    (void)iovcnt;
    th_buf_append(&o->buf, iov[0].iov_base, n);
    return (ssize_t)n;
}

static void test_writer_cause(void **state)
{
    (void)state;
    static const struct {
        ssize_t ret;
        int err;
        const char *says;
    } cases[] = {
        {-42, 0, "output callback failed at byte "},
        {-1, ECONNRESET, "returned -1, errno 104 (Connection reset by peer)"},
        {-EPIPE, EPIPE, "returned -32 (Broken pipe)"},
        {-EIO, EINTR, "returned -5 (Input/output error), errno 4 (Interrupted system call)"},
    };
    for (int some = 0; some < 2; some++) {
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            failing_out o = {.ok = some ? 3000 : 0, .ret = cases[c].ret, .err = cases[c].err};
            ms_writer *w = some ? ms_writer_new_some(NULL, failing_write_some, &o)
                                : ms_writer_new(NULL, failing_write, &o);
            int err = -1;
            assert_int_equal(ms_writer_io_error(w, &err), 0);
            assert_int_equal(err, 0);
            ms_region r = {.id = 0, .name = "ram", .size = 64 * 4096, .page_size = 4096};
            uint8_t *mem = malloc(64 * 4096);
            assert_non_null(mem);
            memset(mem, 0x42, 64 * 4096);
            assert_status(ms_writer_add_region(w, &r), 0);
            int rc = ms_writer_pages(w, 0, 0, 64, mem);
            if (!rc)
                rc = ms_writer_finish(w, NULL);
            assert_status(rc, MS_EIO);
            assert_contains(ms_writer_errmsg(w), cases[c].says);
            assert_int_equal(ms_writer_io_error(w, &err), cases[c].ret);
            assert_int_equal(err, cases[c].err);
            if (cases[c].ret == -42)
                assert_contains(ms_writer_errmsg(w), "returned -42");
            /* Sticky, with its cause. */
            assert_status(ms_writer_flush(w), MS_EIO);
            assert_int_equal(ms_writer_io_error(w, NULL), cases[c].ret);
            if (some)
                assert_int_equal(ms_writer_bytes_written(w), 3000);
            ms_writer_free(w);
            free(mem);
            th_buf_free(&o.buf);
        }
    }
    /* An output that claims more than it was given. */
    failing_out o = {.ok = 0, .ret = 1 << 30};
    ms_writer *w = ms_writer_new_some(NULL, failing_write_some, &o);
    assert_status(ms_writer_finish(w, NULL), MS_EIO);
    assert_contains(ms_writer_errmsg(w), "says it took 1073741824 bytes of the ");
    assert_int_equal(ms_writer_io_error(w, NULL), 1 << 30);
    ms_writer_free(w);
    assert_int_equal(ms_writer_io_error(NULL, NULL), 0);
    /* Other failures have no I/O cause. */
    w = ms_writer_new(NULL, th_sink_write, &o.buf);
    assert_status(ms_writer_pages(w, 9, 0, 1, "x"), MS_EINVAL);
    assert_int_equal(ms_writer_io_error(w, NULL), 0);
    ms_writer_free(w);
    th_buf_free(&o.buf);
}

/* Writes a stream to @fd; returns the writer's status, and its cause in
 * *ret and *err. */
static int write_to(int fd, int *ret, int *err)
{
    ms_writer *w = ms_writer_new_fd(NULL, fd);
    ms_region r = {.id = 0, .name = "ram", .size = 256 * 4096, .page_size = 4096};
    uint8_t *mem = malloc(256 * 4096);
    assert_non_null(mem);
    uint64_t rng = 1;
    th_rand_fill(&rng, mem, 256 * 4096);
    int rc = ms_writer_add_region(w, &r);
    if (!rc)
        rc = ms_writer_pages(w, 0, 0, 256, mem);
    if (!rc)
        rc = ms_writer_finish(w, NULL);
    *ret = ms_writer_io_error(w, err);
    ms_writer_free(w);
    free(mem);
    return rc;
}

/* A child writes to @fd, whose other end is closed, with SIGPIPE at its
 * default (which kills) or ignored; returns its wait status. Exit 0: the
 * writer failed with MS_EIO, cause -EPIPE and errno EPIPE. */
static int child_writes(int fd, bool ignore)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, ignore ? SIG_IGN : SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int ret, err;
        int rc = write_to(fd, &ret, &err);
        _exit(rc == MS_EIO && ret == -EPIPE && err == EPIPE ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void test_sigpipe(void **state)
{
    (void)state;
    for (int nonblock = 0; nonblock < 2; nonblock++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        close(sv[1]); /* the destination has gone */
        if (nonblock)
            assert_int_equal(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
        /* SIGPIPE at its default: the process lives, the writer says why. */
        int st = child_writes(sv[0], false);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("socket (non-blocking %d): child %s %d", nonblock,
                     WIFSIGNALED(st) ? "killed by signal" : "exited with",
                     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        /* And in this process too. */
        int ret, err;
        assert_status(write_to(sv[0], &ret, &err), MS_EIO);
        assert_int_equal(ret, -EPIPE);
        assert_int_equal(err, EPIPE);
        close(sv[0]);
    }

    /* A pipe raises SIGPIPE (documented); ignored, it is MS_EIO with EPIPE. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    int st = child_writes(p[1], false);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
    st = child_writes(p[1], true);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_cause),
        cmocka_unit_test(test_reader_fd_cause),
        cmocka_unit_test(test_writer_cause),
        cmocka_unit_test(test_sigpipe),
    };
    return th_run_tests(tests);
}
