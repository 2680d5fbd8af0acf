/*
 * CBOR encoding and bounded decoding (FORMAT.md section 10).
 *
 * libcbor's cbor_load() allocates what the input's counts declare before the
 * items arrive, so it is never used on stream bytes. Decoding goes through
 * cbor_stream_decode(), which decodes exactly one item head per call and
 * allocates nothing; nesting, counts and the profile are tracked here.
 */
#include <cbor.h>

#include "common/cbor_codec.h"

/* ---------------------------------------------------------------- encoding */

static int put_head(msi_buf *b, size_t (*enc)(size_t, unsigned char *, size_t), size_t n)
{
    int rc = msi_buf_reserve(b, 9);
    if (rc)
        return rc;
    b->len += enc(n, b->data + b->len, 9);
    return MS_OK;
}

int msi_cbor_put_uint(msi_buf *b, uint64_t v)
{
    int rc = msi_buf_reserve(b, 9);
    if (rc)
        return rc;
    b->len += cbor_encode_uint(v, b->data + b->len, 9);
    return MS_OK;
}

int msi_cbor_put_text(msi_buf *b, const char *s, size_t len)
{
    int rc = put_head(b, cbor_encode_string_start, len);
    return rc ? rc : msi_buf_append(b, s, len);
}

int msi_cbor_put_int(msi_buf *b, int64_t v)
{
    if (v >= 0)
        return msi_cbor_put_uint(b, (uint64_t)v);
    int rc = msi_buf_reserve(b, 9);
    if (rc)
        return rc;
    /* -1 - v without overflow at INT64_MIN */
    b->len += cbor_encode_negint((uint64_t)(-(v + 1)), b->data + b->len, 9);
    return MS_OK;
}

int msi_cbor_put_bytes(msi_buf *b, const void *p, size_t len)
{
    int rc = put_head(b, cbor_encode_bytestring_start, len);
    return rc ? rc : msi_buf_append(b, p, len);
}

int msi_cbor_put_bool(msi_buf *b, bool v)
{
    int rc = msi_buf_reserve(b, 1);
    if (rc)
        return rc;
    b->data[b->len++] = v ? 0xF5 : 0xF4;
    return MS_OK;
}

int msi_cbor_put_map(msi_buf *b, size_t pairs)
{
    return put_head(b, cbor_encode_map_start, pairs);
}

int msi_cbor_put_array(msi_buf *b, size_t items)
{
    return put_head(b, cbor_encode_array_start, items);
}

/* ---------------------------------------------------------------- decoding */

/* What the callbacks saw for one head. */
typedef struct tok_ctx {
    msi_cbor_tok *t;
    const char *bad; /* set when the head is outside the profile */
} tok_ctx;

#define CTX ((tok_ctx *)c)
static void cb_u8(void *c, uint8_t v) { CTX->t->kind = MSI_CBOR_UINT; CTX->t->u = v; }
static void cb_u16(void *c, uint16_t v) { CTX->t->kind = MSI_CBOR_UINT; CTX->t->u = v; }
static void cb_u32(void *c, uint32_t v) { CTX->t->kind = MSI_CBOR_UINT; CTX->t->u = v; }
static void cb_u64(void *c, uint64_t v) { CTX->t->kind = MSI_CBOR_UINT; CTX->t->u = v; }
static void cb_n8(void *c, uint8_t v) { CTX->t->kind = MSI_CBOR_NINT; CTX->t->u = v; }
static void cb_n16(void *c, uint16_t v) { CTX->t->kind = MSI_CBOR_NINT; CTX->t->u = v; }
static void cb_n32(void *c, uint32_t v) { CTX->t->kind = MSI_CBOR_NINT; CTX->t->u = v; }
static void cb_n64(void *c, uint64_t v) { CTX->t->kind = MSI_CBOR_NINT; CTX->t->u = v; }
static void cb_bytes(void *c, cbor_data d, size_t n)
{
    CTX->t->kind = MSI_CBOR_BYTES;
    CTX->t->str = d;
    CTX->t->len = n;
}
static void cb_text(void *c, cbor_data d, size_t n)
{
    CTX->t->kind = MSI_CBOR_TEXT;
    CTX->t->str = d;
    CTX->t->len = n;
}
static void cb_array(void *c, size_t n) { CTX->t->kind = MSI_CBOR_ARRAY; CTX->t->u = n; }
static void cb_map(void *c, size_t n) { CTX->t->kind = MSI_CBOR_MAP; CTX->t->u = n; }
static void cb_float(void *c, float v) { CTX->t->kind = MSI_CBOR_FLOAT; CTX->t->f = v; }
static void cb_double(void *c, double v) { CTX->t->kind = MSI_CBOR_FLOAT; CTX->t->f = v; }
static void cb_null(void *c) { CTX->t->kind = MSI_CBOR_SIMPLE; CTX->t->u = 2; }
static void cb_bool(void *c, bool v) { CTX->t->kind = MSI_CBOR_SIMPLE; CTX->t->u = v; }
static void cb_indef(void *c) { CTX->bad = "indefinite-length item (the profile allows definite lengths only)"; }
static void cb_tag(void *c, uint64_t v) { (void)v; CTX->bad = "tag (the profile allows no tags)"; }
static void cb_undef(void *c) { CTX->bad = "simple value 'undefined' (not in the profile)"; }
#undef CTX

static const struct cbor_callbacks tok_callbacks = {
    .uint8 = cb_u8, .uint16 = cb_u16, .uint32 = cb_u32, .uint64 = cb_u64,
    .negint8 = cb_n8, .negint16 = cb_n16, .negint32 = cb_n32, .negint64 = cb_n64,
    .byte_string = cb_bytes, .byte_string_start = cb_indef,
    .string = cb_text, .string_start = cb_indef,
    .array_start = cb_array, .indef_array_start = cb_indef,
    .map_start = cb_map, .indef_map_start = cb_indef,
    .tag = cb_tag,
    .float2 = cb_float, .float4 = cb_float, .float8 = cb_double,
    .undefined = cb_undef, .null = cb_null, .boolean = cb_bool,
    .indef_break = cb_indef,
};

void msi_cbor_in_init(msi_cbor_in *in, const uint8_t *p, size_t len)
{
    in->p = p;
    in->len = len;
    in->pos = 0;
    in->err_pos = 0;
    in->err = NULL;
}

static int fail(msi_cbor_in *in, size_t at, const char *why)
{
    in->err_pos = at;
    in->err = why;
    return MS_ECBOR;
}

int msi_cbor_next(msi_cbor_in *in, msi_cbor_tok *t)
{
    size_t at = in->pos;
    /* cbor_stream_decode leaves `read` unset for empty input. */
    if (at >= in->len)
        return fail(in, at, "CBOR item truncated (payload ends)");
    tok_ctx ctx = {.t = t, .bad = NULL};
    t->kind = MSI_CBOR_NONE;
    t->u = 0;
    t->str = NULL;
    t->len = 0;
    struct cbor_decoder_result res =
        cbor_stream_decode(in->p + at, in->len - at, &tok_callbacks, &ctx);
    if (res.status == CBOR_DECODER_NEDATA)
        return fail(in, at, "CBOR item truncated (payload ends inside it)");
    if (res.status != CBOR_DECODER_FINISHED)
        return fail(in, at, "malformed CBOR item head (reserved additional information "
                            "or unsupported simple value)");
    if (ctx.bad)
        return fail(in, at, ctx.bad);
    if (t->kind == MSI_CBOR_NONE || res.read == 0 || res.read > in->len - at)
        return fail(in, at, "malformed CBOR item");
    in->pos = at + res.read;
    /* Every item takes at least one byte, so a count larger than what is
     * left cannot be honest; refusing it here keeps every later loop bounded
     * by the payload's size. */
    size_t left = in->len - in->pos;
    if (t->kind == MSI_CBOR_ARRAY && t->u > left)
        return fail(in, at, "CBOR array count exceeds the bytes left in the payload");
    if (t->kind == MSI_CBOR_MAP && t->u > left / 2)
        return fail(in, at, "CBOR map count exceeds the bytes left in the payload");
    return MS_OK;
}

int msi_cbor_skip(msi_cbor_in *in, unsigned max_depth, bool allow_float)
{
    uint64_t stack[MSI_CBOR_MAX_DEPTH + 1];
    unsigned depth = 0;
    if (max_depth > MSI_CBOR_MAX_DEPTH)
        max_depth = MSI_CBOR_MAX_DEPTH;
    stack[0] = 1;
    for (;;) {
        while (stack[depth] == 0) {
            if (depth == 0)
                return MS_OK;
            depth--;
        }
        stack[depth]--;
        msi_cbor_tok t;
        size_t at = in->pos;
        int rc = msi_cbor_next(in, &t);
        if (rc)
            return rc;
        if (t.kind == MSI_CBOR_FLOAT && !allow_float)
            return fail(in, at, "floating-point value where the profile allows none");
        if (t.kind == MSI_CBOR_TEXT && !msi_utf8_ok(t.str, t.len, true))
            return fail(in, at, "text string is not valid UTF-8");
        if (t.kind == MSI_CBOR_ARRAY || t.kind == MSI_CBOR_MAP) {
            uint64_t n = t.kind == MSI_CBOR_MAP ? t.u * 2 : t.u;
            if (depth + 1 > max_depth)
                return fail(in, at, "CBOR nesting deeper than the limit");
            stack[++depth] = n;
        }
    }
}

int msi_cbor_map_open(msi_cbor_in *in, msi_cbor_map *m)
{
    msi_cbor_tok t;
    size_t at = in->pos;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    if (t.kind != MSI_CBOR_MAP)
        return fail(in, at, "expected a CBOR map");
    m->remaining = t.u;
    m->seen = 0;
    m->last = 0;
    m->any = false;
    return MS_OK;
}

int msi_cbor_map_key(msi_cbor_in *in, msi_cbor_map *m, uint64_t *key)
{
    if (m->remaining == 0)
        return 0;
    m->remaining--;
    msi_cbor_tok t;
    size_t at = in->pos;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    if (t.kind != MSI_CBOR_UINT)
        return fail(in, at, "map key is not an unsigned integer");
    if (m->any && t.u <= m->last)
        return fail(in, at, t.u == m->last ? "duplicate map key"
                                           : "map keys out of ascending order");
    m->any = true;
    m->last = t.u;
    if (t.u < 64)
        m->seen |= 1ull << t.u;
    *key = t.u;
    return 1;
}

int msi_cbor_get_uint(msi_cbor_in *in, uint64_t *v)
{
    msi_cbor_tok t;
    size_t at = in->pos;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    if (t.kind != MSI_CBOR_UINT)
        return fail(in, at, "expected an unsigned integer");
    *v = t.u;
    return MS_OK;
}

int msi_cbor_get_text(msi_cbor_in *in, const uint8_t **s, size_t *len)
{
    msi_cbor_tok t;
    size_t at = in->pos;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    if (t.kind != MSI_CBOR_TEXT)
        return fail(in, at, "expected a text string");
    *s = t.str;
    *len = t.len;
    return MS_OK;
}

int msi_cbor_get_int(msi_cbor_in *in, int64_t *v)
{
    msi_cbor_tok t;
    size_t at = in->pos;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    if (t.kind == MSI_CBOR_UINT && t.u <= (uint64_t)INT64_MAX)
        *v = (int64_t)t.u;
    else if (t.kind == MSI_CBOR_NINT && t.u <= (uint64_t)INT64_MAX)
        *v = -1 - (int64_t)t.u;
    else if (t.kind == MSI_CBOR_UINT || t.kind == MSI_CBOR_NINT)
        return fail(in, at, "integer outside the signed 64-bit range");
    else
        return fail(in, at, "expected an integer");
    return MS_OK;
}

int msi_cbor_get_bytes(msi_cbor_in *in, const uint8_t **s, size_t *len)
{
    msi_cbor_tok t;
    size_t at = in->pos;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    if (t.kind != MSI_CBOR_BYTES)
        return fail(in, at, "expected a byte string");
    *s = t.str;
    *len = t.len;
    return MS_OK;
}

int msi_cbor_get_bool(msi_cbor_in *in, bool *v)
{
    msi_cbor_tok t;
    size_t at = in->pos;
    int rc = msi_cbor_next(in, &t);
    if (rc)
        return rc;
    if (t.kind != MSI_CBOR_SIMPLE || t.u > 1)
        return fail(in, at, "expected true or false");
    *v = t.u == 1;
    return MS_OK;
}

int msi_cbor_find_text_key(const uint8_t *p, size_t n, const char *key, size_t *at,
                           const char **why)
{
    msi_cbor_in in;
    msi_cbor_tok t;
    const size_t klen = strlen(key);
    msi_cbor_in_init(&in, p, n);
    if (msi_cbor_next(&in, &t) || t.kind != MSI_CBOR_MAP) {
        *why = "the state is not a CBOR map";
        return -1;
    }
    int found = 0;
    for (uint64_t i = 0; i < t.u; i++) {
        size_t kat = in.pos;
        msi_cbor_tok k;
        if (msi_cbor_next(&in, &k)) {
            *why = in.err;
            return -1;
        }
        if (k.kind == MSI_CBOR_TEXT && k.len == klen && memcmp(k.str, key, klen) == 0) {
            if (found)
                return -2;
            found = 1;
            *at = in.pos;
        } else {
            in.pos = kat;
            if (msi_cbor_skip(&in, MSI_CBOR_MAX_DEPTH, true)) {
                *why = in.err;
                return -1;
            }
        }
        if (msi_cbor_skip(&in, MSI_CBOR_MAX_DEPTH, true)) {
            *why = in.err;
            return -1;
        }
    }
    return found;
}
