/*
 * Xen streams through ms_open() (open.h), as every tool reads them: each
 * fixture is recognized as "xen" by its bytes, from a file and from a
 * pipe, and leaves the same final state as its import read back (ms_diff
 * finds no difference in regions, pages, devices or overlays).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xen_fixture.h"

static int count(void *ctx, const ms_diff_item *item)
{
    (void)item;
    ++*(int *)ctx;
    return 0;
}

static void test_open_each_fixture(void **state)
{
    (void)state;
    size_t n;
    const tx_fixture *fx = tx_fixtures(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        char file[80];
        snprintf(file, sizeof file, "%s.xen", fx[i].name);
        size_t len;
        uint8_t *xen = tx_load(file, &len);
        tx_out imported = {0};
        char msg[512];
        assert_int_equal(tx_import(xen, len, NULL, &imported, msg, sizeof msg), 0);

        /* Read directly, from a pipe-like input that hands out few bytes
         * at a time. */
        tx_in in = {xen, len, 0, 7};
        ms_input input = {.read = tx_read, .read_ctx = &in, .name = file};
        ms_reader *direct = ms_open(NULL, &input, 1);
        assert_int_equal(ms_reader_status(direct), 0);
        ms_reader *via = ms_reader_new_memory(NULL, imported.p, imported.len);
        ms_diff *d = ms_diff_new(NULL);
        if (ms_diff_load(d, MS_DIFF_A, direct, file) || ms_diff_load(d, MS_DIFF_B, via, "import"))
            fail_msg("%s: %s", file, ms_diff_errmsg(d));
        assert_string_equal(ms_reader_format(direct), "xen");
        int items = 0;
        assert_true(ms_diff_compare(d, count, &items) >= 0);
        const ms_diff_totals *t = ms_diff_get_totals(d);
        if (t->regions || t->pages || t->devices || t->overlays)
            fail_msg("%s: read directly and imported differ: %llu regions, %llu pages, "
                     "%llu devices, %llu overlays",
                     file, (unsigned long long)t->regions, (unsigned long long)t->pages,
                     (unsigned long long)t->devices, (unsigned long long)t->overlays);
        ms_diff_free(d);
        ms_reader_free(direct);
        ms_reader_free(via);
        tx_out_free(&imported);
        free(xen);
    }
    const char *const *f = ms_formats();
    bool listed = false;
    for (; *f; f++)
        listed |= strcmp(*f, "xen") == 0;
    assert_true(listed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_each_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
