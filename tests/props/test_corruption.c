/*
 * Exhaustive corruption: every truncation and every single-bit flip of small
 * sample streams must be reported (never read as valid, never a crash or a
 * hang), in the strict reader and in the lenient (validator) mode.
 */
#include <stdlib.h>

#include "helpers.h"

/* INFO, two regions, DATA and ZERO pages, a device, a private optional
 * record, END; @level selects zstd for the page data. */
static void sample(th_buf *out, int level)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = "corruption";
    o.machine = "pc";
    o.compress_level = level;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    ms_region a = {.id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 8 * 4096,
                   .page_size = 4096};
    ms_region b = {.id = 5, .name = "rom", .has_gpa = false, .size = 8192, .page_size = 8192};
    static uint8_t mem[8 * 4096], rom[8192];
    memset(mem, 0, sizeof mem);
    memset(mem + 2 * 4096, 'x', 4096);
    if (level)
        memset(mem + 5 * 4096, 'y', 2 * 4096);
    mem[7 * 4096 + 100] = 1;
    memset(rom, 0, sizeof rom);
    rom[8191] = 0xee;
    static const uint8_t state[] = {0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x82, 0xf5, 0x20};
    assert_status(ms_writer_add_region(w, &a), 0);
    assert_status(ms_writer_add_region(w, &b), 0);
    assert_status(ms_writer_pages(w, 0, 0, 8, mem), 0);
    assert_status(ms_writer_record(w, 0x8001, 0, "opt", 3), 0);
    assert_status(ms_writer_pages(w, 5, 0, 1, rom), 0);
    assert_status(ms_writer_device(w, "cpu", 0, "x86-cpu", 1, state, sizeof state), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static void count_problem(void *ctx, int status, uint64_t offset, int64_t record,
                          const char *msg)
{
    (void)status, (void)offset, (void)record, (void)msg;
    (*(size_t *)ctx)++;
}

/* Strict status of reading @s, and whether the lenient reader found any
 * problem (*flagged). */
static int read_both(const uint8_t *s, size_t n, bool *flagged)
{
    ms_reader *r = ms_reader_new_memory(NULL, s, n);
    int rc = th_read_all(r, NULL);
    if (rc == 0)
        rc = ms_reader_expect_eof(r);
    ms_reader_free(r);

    ms_reader_options o;
    size_t problems = 0;
    ms_reader_options_init(&o);
    o.on_problem = count_problem;
    o.problem_ctx = &problems;
    r = ms_reader_new_memory(&o, s, n);
    int lrc = th_read_all(r, NULL);
    if (lrc == 0)
        lrc = ms_reader_expect_eof(r);
    ms_reader_free(r);
    *flagged = lrc != 0 || problems > 0;
    return rc;
}

static void truncate_everywhere(int level)
{
    th_buf s = {0};
    sample(&s, level);
    bool flagged;
    assert_status(read_both(s.data, s.len, &flagged), 0);
    assert_false(flagged);
    for (size_t cut = 0; cut < s.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
        memcpy(copy, s.data, cut);
        ms_reader *r = ms_reader_new_memory(NULL, copy, cut);
        int rc = th_read_all(r, NULL);
        if (rc != MS_ETRUNCATED)
            fail_msg("cut at %zu of %zu: status %d (%s), expected MS_ETRUNCATED: %s", cut,
                     s.len, rc, ms_strerror(rc), ms_reader_errmsg(r));
        if (ms_reader_error_offset(r) > cut)
            fail_msg("cut at %zu: error offset %llu lies beyond the data", cut,
                     (unsigned long long)ms_reader_error_offset(r));
        ms_reader_free(r);
        read_both(copy, cut, &flagged);
        assert_true(flagged);
        free(copy);
    }
    th_buf_free(&s);
}

static void test_truncation_raw(void **state)
{
    (void)state;
    truncate_everywhere(0);
}

static void test_truncation_zstd(void **state)
{
    (void)state;
    truncate_everywhere(3);
}

static void flip_everywhere(int level)
{
    th_buf s = {0};
    sample(&s, level);
    uint8_t *copy = malloc(s.len);
    size_t flips = 0;
    for (size_t i = 0; i < s.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, s.data, s.len);
            copy[i] ^= (uint8_t)(1u << bit);
            bool flagged;
            int rc = read_both(copy, s.len, &flagged);
            if (rc >= 0 || !flagged)
                fail_msg("bit %d of byte %zu flipped: read as valid (strict %d, lenient "
                         "flagged %d)", bit, i, rc, flagged);
            flips++;
        }
    }
    print_message("%zu single-bit flips of a %zu-byte stream, all detected\n", flips, s.len);
    free(copy);
    th_buf_free(&s);
}

static void test_bitflips_raw(void **state)
{
    (void)state;
    flip_everywhere(0);
}

static void test_bitflips_zstd(void **state)
{
    (void)state;
    flip_everywhere(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncation_raw),
        cmocka_unit_test(test_truncation_zstd),
        cmocka_unit_test(test_bitflips_raw),
        cmocka_unit_test(test_bitflips_zstd),
    };
    return th_run_tests(tests);
}
