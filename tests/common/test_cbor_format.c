/*
 * ms_cbor_format() and ms_cbor_diff() (cbor.h): exact text for each kind of
 * item in both forms, snprintf-like truncation, refusals, and field-by-field
 * differences with their paths.
 */
#include <stdlib.h>

#include "helpers.h"

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    while (*h) {
        if (*h == ' ') {
            h++;
            continue;
        }
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

static void check(const char *hex, const char *diag, const char *json)
{
    uint8_t b[256];
    char out[512];
    size_t n = unhex(hex, b);
    ssize_t len = ms_cbor_format(b, n, MS_CBOR_DIAG, 0, out, sizeof out);
    assert_int_equal(len, (ssize_t)strlen(diag));
    assert_string_equal(out, diag);
    len = ms_cbor_format(b, n, MS_CBOR_JSON, 0, out, sizeof out);
    assert_int_equal(len, (ssize_t)strlen(json));
    assert_string_equal(out, json);
}

static void test_format_items(void **state)
{
    (void)state;
    check("00", "0", "0");
    /* JSON: integers beyond +-(2^53 - 1) are strings (a double would round them). */
    check("1b ff ff ff ff ff ff ff ff", "18446744073709551615", "\"18446744073709551615\"");
    check("1b 00 1f ff ff ff ff ff ff", "9007199254740991", "9007199254740991");
    check("1b 00 20 00 00 00 00 00 00", "9007199254740992", "\"9007199254740992\"");
    check("20", "-1", "-1");
    check("3b 00 1f ff ff ff ff ff fe", "-9007199254740991", "-9007199254740991");
    check("3b 00 1f ff ff ff ff ff ff", "-9007199254740992", "\"-9007199254740992\"");
    check("3b ff ff ff ff ff ff ff ff", "-18446744073709551616", "\"-18446744073709551616\"");
    check("43 01 ab ff", "h'01abff'", "\"01abff\"");
    check("40", "h''", "\"\"");
    check("63 61 22 62", "\"a\\\"b\"", "\"a\\\"b\"");
    check("62 0a 01", "\"\\n\\u0001\"", "\"\\n\\u0001\"");
    check("f4", "false", "false");
    check("f5", "true", "true");
    check("f6", "null", "null");
    check("f9 3c 00", "1.0", "1.0");
    check("fb 40 04 00 00 00 00 00 00", "2.5", "2.5");
    check("f9 7e 00", "NaN", "null");
    check("f9 fc 00", "-Infinity", "null");
    check("80", "[]", "[]");
    check("a0", "{}", "{}");
    check("83 01 82 02 03 a1 61 6b f5", "[1, [2, 3], {\"k\": true}]",
          "[1, [2, 3], {\"k\": true}]");
    /* JSON keys are strings: a non-text key is written as its diagnostic text */
    check("a3 00 01 41 ff 02 82 01 02 03", "{0: 1, h'ff': 2, [1, 2]: 3}",
          "{\"0\": 1, \"h'ff'\": 2, \"[1, 2]\": 3}");
}

static void test_format_truncates_like_snprintf(void **state)
{
    (void)state;
    uint8_t b[16];
    size_t n = unhex("83 01 02 03", b); /* "[1, 2, 3]": 9 characters */
    char out[5];
    memset(out, 'x', sizeof out);
    assert_int_equal(ms_cbor_format(b, n, MS_CBOR_DIAG, 0, out, sizeof out), 9);
    assert_string_equal(out, "[1, ");
    assert_int_equal(ms_cbor_format(b, n, MS_CBOR_DIAG, 0, NULL, 0), 9);
}

static void test_format_refusals(void **state)
{
    (void)state;
    uint8_t b[4096];
    char out[64];
    static const char *bad[] = {
        "",            /* nothing */
        "01 02",       /* two items */
        "82 01",       /* truncated array */
        "9f 01 ff",    /* indefinite length */
        "c1 00",       /* tag */
        "f7",          /* undefined */
        "62 c0 af",    /* overlong UTF-8 */
        "9a 10 00 00 00", /* 2^28 elements declared, none present */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = unhex(bad[i], b);
        assert_int_equal(ms_cbor_format(b, n, MS_CBOR_DIAG, 0, out, sizeof out), MS_ECBOR);
    }
    /* 3000 nested arrays: refused by the depth limit, no deep recursion */
    memset(b, 0x81, 3000);
    b[3000] = 0x00;
    assert_int_equal(ms_cbor_format(b, 3001, MS_CBOR_JSON, 0, out, sizeof out), MS_ECBOR);
    /* depth 64 is accepted by default, 65 is not; 65 passes with a limit of 65 */
    memset(b, 0x81, 64);
    b[64] = 0x00;
    assert_true(ms_cbor_format(b, 65, MS_CBOR_DIAG, 0, out, sizeof out) > 0);
    memset(b, 0x81, 65);
    b[65] = 0x00;
    assert_int_equal(ms_cbor_format(b, 66, MS_CBOR_DIAG, 0, out, sizeof out), MS_ECBOR);
    assert_true(ms_cbor_format(b, 66, MS_CBOR_DIAG, 65, NULL, 0) > 0);
    assert_int_equal(ms_cbor_format(b, 66, (ms_cbor_form)7, 0, out, sizeof out), MS_EINVAL);
}

/* ---- diff ---- */

typedef struct seen {
    char lines[16][160];
    size_t n;
} seen;

static int record_diff(void *ctx, const char *path, const uint8_t *a, size_t an,
                       const uint8_t *b, size_t bn)
{
    seen *s = ctx;
    char x[64] = "-", y[64] = "-";
    if (a)
        ms_cbor_format(a, an, MS_CBOR_DIAG, 0, x, sizeof x);
    if (b)
        ms_cbor_format(b, bn, MS_CBOR_DIAG, 0, y, sizeof y);
    if (s->n < 16)
        snprintf(s->lines[s->n++], sizeof s->lines[0], "%s: %s -> %s", path, x, y);
    return 0;
}

static int diff_hex(const char *ha, const char *hb, seen *s)
{
    uint8_t a[256], b[256];
    size_t na = unhex(ha, a), nb = unhex(hb, b);
    memset(s, 0, sizeof *s);
    return ms_cbor_diff(a, na, b, nb, record_diff, s);
}

static void test_diff(void **state)
{
    (void)state;
    seen s;
    /* same map, keys in another order: equal */
    assert_int_equal(diff_hex("a2 61 61 01 61 62 02", "a2 61 62 02 61 61 01", &s), 0);
    /* {"rip": 4096, "regs": [1, 2], 0: h'52'} vs
     * {"rip": 4100, "regs": [1, 3, 4], 1: true} */
    int n = diff_hex("a3 63 72 69 70 19 10 00 64 72 65 67 73 82 01 02 00 41 52",
                     "a3 63 72 69 70 19 10 04 64 72 65 67 73 83 01 03 04 01 f5", &s);
    assert_int_equal(n, 5);
    assert_int_equal(s.n, 5);
    /* maps in encoded-key order, which is length first (0 < 1 < "rip" <
     * "regs", RFC 8949 section 4.2.1); arrays by index */
    assert_string_equal(s.lines[0], "/0: h'52' -> -");
    assert_string_equal(s.lines[1], "/1: - -> true");
    assert_string_equal(s.lines[2], "/rip: 4096 -> 4100");
    assert_string_equal(s.lines[3], "/regs/1: 2 -> 3");
    assert_string_equal(s.lines[4], "/regs/2: - -> 4");
    /* a kind change is one difference at that path */
    assert_int_equal(diff_hex("a1 61 61 82 01 02", "a1 61 61 a0", &s), 1);
    assert_string_equal(s.lines[0], "/a: [1, 2] -> {}");
    /* scalars at the top: path "" */
    assert_int_equal(diff_hex("01", "02", &s), 1);
    assert_string_equal(s.lines[0], ": 1 -> 2");
    /* malformed either side */
    assert_int_equal(diff_hex("82 01", "01", &s), MS_ECBOR);
    assert_int_equal(diff_hex("01", "01 02", &s), MS_ECBOR);
}

static int stop_now(void *ctx, const char *path, const uint8_t *a, size_t an, const uint8_t *b,
                    size_t bn)
{
    (void)ctx, (void)path, (void)a, (void)an, (void)b, (void)bn;
    return -7;
}

static void test_diff_callback_stops(void **state)
{
    (void)state;
    uint8_t a[] = {0x82, 0x01, 0x02}, b[] = {0x82, 0x03, 0x04};
    assert_int_equal(ms_cbor_diff(a, sizeof a, b, sizeof b, stop_now, NULL), -7);
    assert_int_equal(ms_cbor_diff(a, sizeof a, b, sizeof b, NULL, NULL), 2);
}

/* ms_cbor_next: item heads in order, strings as views; a count beyond the
 * bytes left (a map claiming 2^64-1 pairs) and other heads outside the
 * profile refused. */
static void test_next(void **state)
{
    (void)state;
    /* {"a": [1, -2, h'00ff'], "b": true} */
    static const uint8_t c[] = {0xa2, 0x61, 'a', 0x83, 0x01, 0x21, 0x42, 0x00, 0xff,
                                0x61, 'b', 0xf5};
    static const struct {
        ms_cbor_kind kind;
        uint64_t u;
        size_t len;
    } want[] = {{MS_CBOR_MAP, 2, 0},  {MS_CBOR_TEXT, 0, 1}, {MS_CBOR_ARRAY, 3, 0},
                {MS_CBOR_UINT, 1, 0}, {MS_CBOR_NINT, 1, 0}, {MS_CBOR_BYTES, 0, 2},
                {MS_CBOR_TEXT, 0, 1}, {MS_CBOR_SIMPLE, 1, 0}};
    size_t pos = 0;
    ms_cbor_item it;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(ms_cbor_next(c, sizeof c, &pos, &it), 0);
        assert_int_equal(it.kind, want[i].kind);
        assert_int_equal(it.u, want[i].u);
        assert_int_equal(it.len, want[i].len);
    }
    assert_int_equal(pos, sizeof c);
    assert_int_equal(ms_cbor_next(c, sizeof c, &pos, &it), MS_ECBOR); /* at the end */
    static const uint8_t huge[] = {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    pos = 0;
    assert_int_equal(ms_cbor_next(huge, sizeof huge, &pos, &it), MS_ECBOR);
    static const uint8_t cut[] = {0x45, 1, 2}, indef[] = {0xbf}, tag[] = {0xc1, 0x00};
    pos = 0;
    assert_int_equal(ms_cbor_next(cut, sizeof cut, &pos, &it), MS_ECBOR);
    assert_int_equal(pos, 0);
    assert_int_equal(ms_cbor_next(indef, sizeof indef, &pos, &it), MS_ECBOR);
    assert_int_equal(ms_cbor_next(tag, sizeof tag, &pos, &it), MS_ECBOR);
    assert_int_equal(ms_cbor_next(NULL, 0, &pos, &it), MS_EINVAL);
}

/* ms_escape_text: controls, DEL, C1 and stray bytes as \xNN; UTF-8 kept;
 * truncation like snprintf, never inside an escape. */
static void test_escape_text(void **state)
{
    (void)state;
    char out[64];
    const char *in = "a\x1b[2Jb\x07\x7f\xc2\x9b\xc3\xa9\xff\ne";
    const char *want = "a\\x1b[2Jb\\x07\\x7f\\xc2\\x9b\xc3\xa9\\xff\\x0ae";
    assert_int_equal(ms_escape_text(out, sizeof out, in), strlen(want));
    assert_string_equal(out, want);
    assert_int_equal(ms_escape_text(out, 4, "ab\x1b"), 6);
    assert_string_equal(out, "ab");
    /* Truncated, then more text: nothing past the buffer is touched. */
    char guard[16];
    memset(guard, '#', sizeof guard);
    assert_int_equal(ms_escape_text(guard, 4, "ab\x1b\x1b\x1b" "cdefgh"), 20);
    assert_string_equal(guard, "ab");
    for (size_t i = 3; i < sizeof guard; i++)
        assert_int_equal(guard[i], '#');
    assert_int_equal(ms_escape_text(NULL, 0, "\x01"), 4);
    assert_int_equal(ms_escape_text(out, sizeof out, "pc.ram"), 6);
    assert_string_equal(out, "pc.ram");
    /* ms_json_values: the root, then one per [ { , : outside strings. */
    static const char j[] = "[1,{\"a,[\\\"\":2}]";
    assert_int_equal(ms_json_values(j, sizeof j - 1), 5);
    assert_int_equal(ms_json_values("", 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_items),
        cmocka_unit_test(test_format_truncates_like_snprintf),
        cmocka_unit_test(test_format_refusals),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_diff_callback_stops),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_escape_text),
    };
    return th_run_tests(tests);
}
