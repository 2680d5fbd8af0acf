/*
 * README.md's library example, compiled from the README itself
 * (readme_example.py extracts it at build time) and run: send_vm() and
 * receive_vm() must move a guest's memory exactly, apply every page state
 * they claim to (FILL and DISCARDED included), and refuse what they cannot
 * apply (through ms_reader_options.accept_features, with a message naming
 * the feature) or what would not fit, without touching memory then.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

/* The README's functions (readme_example.c). */
int send_vm(int fd, const void *ram, uint64_t ram_size, const void *cpu, size_t cpu_size);
int receive_vm(int fd, uint8_t *ram, uint64_t ram_size);

#define PS 4096u
#define PAGES 64u
#define RAM (PAGES * PS)

static const uint8_t cpu_state[] = {0xa1, 0x00, 0x01}; /* {0: 1} */

/* A guest: zero pages, text-like pages, one page of a repeated word. */
static void make_guest(uint8_t *ram)
{
    memset(ram, 0, RAM);
    for (size_t p = 8; p < 24; p++)
        for (size_t i = 0; i < PS; i++)
            ram[p * PS + i] = (uint8_t)("guest memory "[i % 13] + p);
    for (size_t i = 0; i < PS; i += 8)
        memcpy(ram + 40 * PS + i, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
}

/* A file holding @b, positioned at its start. */
static int file_with(const th_buf *b)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = dup(fileno(f));
    fclose(f);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void test_send_receive(void **state)
{
    (void)state;
    uint8_t *src = malloc(RAM), *dst = malloc(RAM);
    assert_non_null(src);
    assert_non_null(dst);
    make_guest(src);
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = fileno(f);
    assert_int_equal(send_vm(fd, src, RAM, cpu_state, sizeof cpu_state), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    memset(dst, 0xee, RAM); /* zero pages must be written as zero */
    assert_int_equal(receive_vm(fd, dst, RAM), 0);
    assert_memory_equal(src, dst, RAM);
    fclose(f);

    /* A bad descriptor: each reports its handle's message and fails. */
    assert_int_equal(send_vm(-1, src, RAM, cpu_state, sizeof cpu_state), -1);
    assert_int_equal(receive_vm(-1, dst, RAM), -1);
    free(src);
    free(dst);
}

/* FILL and DISCARDED pages (format 1.1): a receiver that zeroed every
 * non-DATA page would get the FILL pages wrong. */
static void test_fill_and_discarded(void **state)
{
    (void)state;
    uint8_t *src = malloc(RAM), *dst = malloc(RAM);
    assert_non_null(src);
    assert_non_null(dst);
    make_guest(src);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_FILL | MS_FEATURE_DISCARDED;
    th_buf s = {0};
    ms_writer *w = ms_writer_new(&o, th_sink_write, &s);
    ms_region r = {.id = 0, .name = "pc.ram", .has_gpa = true, .size = RAM, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_pages(w, 0, 0, 60, src), 0);
    assert_status(ms_writer_fill_pages(w, 0, 50, 2, 0xcccccccccccccccc), 0);
    assert_status(ms_writer_discard(w, 0, 60, 4), 0);
    ms_totals t;
    assert_status(ms_writer_finish(w, &t), 0);
    ms_writer_free(w);
    assert_true(t.pages[MS_PAGE_FILL] == 3); /* page 40 detected, 50 and 51 given */
    memset(src + 50 * PS, 0xcc, 2 * PS);

    int fd = file_with(&s);
    memset(dst, 0xee, RAM);
    assert_int_equal(receive_vm(fd, dst, RAM), 0);
    close(fd);
    assert_memory_equal(src, dst, 60 * PS);
    for (size_t i = 60 * PS; i < RAM; i++) /* discarded: left as they were */
        assert_int_equal(dst[i], 0xee);
    th_buf_free(&s);
    free(src);
    free(dst);
}

/* Runs receive_vm() on @s with its standard error in @err (NUL-terminated). */
static int receive_capturing(const th_buf *s, uint8_t *dst, char *err, size_t err_size)
{
    int fd = file_with(s);
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    int rc = receive_vm(fd, dst, RAM);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fd);
    rewind(f);
    size_t n = fread(err, 1, err_size - 1, f);
    err[n] = 0;
    fclose(f);
    return rc;
}

/* Streams that need a feature the example leaves out of accept_features:
 * refused at the preamble, the feature named, memory untouched. Bit 9 is
 * one no library version defines yet. */
static void test_features_refused(void **state)
{
    (void)state;
    uint8_t *dst = malloc(RAM);
    assert_non_null(dst);
    static const struct {
        uint64_t features, planted;
        const char *named;
    } cases[] = {
        {MS_FEATURE_IN_PLACE, 0, "requires feature IN_PLACE (bit 2), which accept_features "
                                 "leaves out"},
        {MS_FEATURE_OVERLAYS | MS_FEATURE_FILL, 0, "feature OVERLAYS (bit 3)"},
        {MS_FEATURE_FILL, 1u << 9, "bit 9"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        o.features = cases[c].features;
        th_buf s = {0};
        ms_writer *w = ms_writer_new(&o, th_sink_write, &s);
        ms_region r = {.id = 0, .name = "pc.ram", .has_gpa = true, .size = RAM, .page_size = PS};
        assert_status(ms_writer_add_region(w, &r), 0);
        assert_status(ms_writer_fill_pages(w, 0, 0, PAGES, 0), 0);
        assert_status(ms_writer_finish(w, NULL), 0);
        ms_writer_free(w);
        if (cases[c].planted) { /* a required bit of a later version */
            th_stream ts;
            th_stream_parse(&ts, s.data, s.len);
            th_put64(ts.pre.data + 16, cases[c].features | cases[c].planted);
            th_stream_fix_preamble(&ts);
            s.len = 0;
            th_stream_build(&ts, &s);
            th_stream_free(&ts);
        }
        char err[1024];
        memset(dst, 0xee, RAM);
        assert_status(receive_capturing(&s, dst, err, sizeof err), MS_EFEATURE);
        assert_contains(err, "receive failed: preamble");
        assert_contains(err, cases[c].named);
        for (size_t i = 0; i < RAM; i++)
            assert_int_equal(dst[i], 0xee);
        th_buf_free(&s);
    }
    free(dst);
}

/* Streams that do not fit the guest: refused before anything is applied. */
static void test_refusals(void **state)
{
    (void)state;
    uint8_t *dst = malloc(RAM);
    assert_non_null(dst);
    for (int which = 1; which < 3; which++) {
        ms_writer_options o;
        ms_writer_options_init(&o);
        th_buf s = {0};
        ms_writer *w = ms_writer_new(&o, th_sink_write, &s);
        /* which 1: a region larger than the guest; 2: one it does not have */
        ms_region r = {.id = which == 2 ? 7 : 0,
                       .name = "pc.ram",
                       .has_gpa = true,
                       .size = which == 1 ? 2 * RAM : RAM,
                       .page_size = PS};
        assert_status(ms_writer_add_region(w, &r), 0);
        assert_status(ms_writer_fill_pages(w, r.id, 0, 1, 0), 0);
        assert_status(ms_writer_finish(w, NULL), 0);
        ms_writer_free(w);
        char err[1024];
        memset(dst, 0xee, RAM);
        assert_int_equal(receive_capturing(&s, dst, err, sizeof err), -1);
        assert_contains(err, "refused: a region this guest does not have");
        for (size_t i = 0; i < RAM; i++)
            assert_int_equal(dst[i], 0xee);
        th_buf_free(&s);
    }
    free(dst);
}

/* A damaged stream: the reader's status comes back. */
static void test_damaged(void **state)
{
    (void)state;
    uint8_t *src = malloc(RAM), *dst = malloc(RAM);
    assert_non_null(src);
    assert_non_null(dst);
    make_guest(src);
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = fileno(f);
    assert_int_equal(send_vm(fd, src, RAM, cpu_state, sizeof cpu_state), 0);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_int_equal(ftruncate(fd, size - 10), 0); /* END cut short */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(receive_vm(fd, dst, RAM), MS_ETRUNCATED);
    fclose(f);
    free(src);
    free(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_receive),
        cmocka_unit_test(test_fill_and_discarded),
        cmocka_unit_test(test_features_refused),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
