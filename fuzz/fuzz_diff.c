/*
 * Fuzz target: ms_diff (migstream/diff.h), the engine of migstream-diff, on
 * two untrusted streams. The input is "u32 LE, A, B": the u32's low 31
 * bits, taken modulo what follows, are A's length; its top bit asks for
 * CBOR values in JSON form instead of diagnostic notation, as
 * migstream-diff --json prints them, and bit 30 (also a bit of the length)
 * keeps a damaged side up to its damage (keep_damaged), as migstream-diff
 * does. Each side is a stream, or records
 * framed with valid checksums (fuzz_frame.h). Every reported difference is
 * checked and its values formatted; the target aborts when a run leaves a
 * temporary file or a descriptor behind, when a difference is malformed,
 * when the count differs from the totals, or when a stream differs from
 * itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"
#include "fuzz_frame.h"

static void bad(const char *what)
{
    fprintf(stderr, "fuzz_diff: %s\n", what);
    abort();
}

/* Checks an item and formats its values, as migstream-diff would. */
static int check_item(void *ctx, const ms_diff_item *it)
{
    const ms_cbor_form form = *(const ms_cbor_form *)ctx;
    char text[256];
    const ms_diff_value *v[2] = {&it->a, &it->b};
    for (int i = 0; i < 2; i++) {
        if (v[i]->type == MS_DIFF_CBOR &&
            ms_cbor_format(v[i]->cbor, v[i]->cbor_size, form, 0, text, sizeof text) < 0)
            return MS_ECBOR; /* what migstream-diff reports as an error */
        if ((v[i]->type == MS_DIFF_TEXT || v[i]->type == MS_DIFF_VERSION) && !v[i]->text)
            bad("a text value without text");
    }
    switch (it->kind) {
    case MS_DIFF_META:
    case MS_DIFF_REGION:
    case MS_DIFF_DEVICE:
        if (!it->field || (it->a.type == MS_DIFF_NONE && it->b.type == MS_DIFF_NONE))
            bad("a field difference without a field or values");
        if (it->kind == MS_DIFF_REGION && (!it->region || !it->region_b))
            bad("a region difference without its regions");
        if (it->kind == MS_DIFF_DEVICE && (!it->device || !it->device_b))
            bad("a device difference without its devices");
        break;
    case MS_DIFF_REGION_ONLY:
        if (!it->region || !it->states || !it->region->name)
            bad("a region on one side without its region or counts");
        break;
    case MS_DIFF_PAGES:
        if (!it->region || !it->region_b || !it->count || !it->unit ||
            (it->state_a == it->state_b && it->state_a != MS_PAGE_DATA &&
             it->state_a != MS_PAGE_IN_PLACE))
            bad("a malformed page range");
        break;
    case MS_DIFF_PAGES_TOTAL:
        if (!it->region || !it->pages || !it->ranges || it->ranges > it->pages)
            bad("a malformed page total");
        break;
    case MS_DIFF_OVERLAY:
    case MS_DIFF_OVERLAY_ONLY:
        if (!it->overlay || (it->kind == MS_DIFF_OVERLAY && !it->overlay_b))
            bad("an overlay difference without its overlays");
        break;
    case MS_DIFF_DEVICE_ONLY:
    case MS_DIFF_DEVICE_STATE:
        if (!it->device || !it->device->path ||
            (it->kind == MS_DIFF_DEVICE_STATE && (!it->field || !it->device_b)))
            bad("a device difference without its device");
        break;
    default:
        bad("an unknown kind of difference");
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fz_scratch_dir();
    if (size < 4)
        return 0;
    int fds = fz_open_fds();
    uint32_t prefix = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                      (uint32_t)data[3] << 24;
    size_t rest = size - 4, an = (prefix & 0x7fffffffu) % (rest + 1);
    size_t sa, sb;
    uint8_t *a = fz_stream(data + 4, an, &sa);
    uint8_t *b = fz_stream(data + 4 + an, rest - an, &sb);
    ms_reader_options ro;
    ms_reader_options_init(&ro);
    ro.max_record_size = 1 << 20;
    ro.max_regions = 64;
    ro.max_cbor_depth = 32;
    ms_diff_options o;
    ms_diff_options_init(&o);
    o.max_map_memory = 16u << 20;
    o.max_output = 64u << 20;        /* temporary files */
    o.max_device_memory = 16u << 20; /* device states kept */
    o.tmpdir = dir;
    o.keep_damaged = (prefix >> 30) & 1;
    ms_cbor_form form = (prefix >> 31) & 1 ? MS_CBOR_JSON : MS_CBOR_DIAG;
    ms_diff *d = a && b ? ms_diff_new(&o) : NULL;
    fz_mem ma = {a, sa, 0}, mb = {b, sb, 0};
    ms_reader *ra = d ? ms_reader_new(&ro, fz_mem_read, &ma) : NULL;
    ms_reader *rb = d ? ms_reader_new(&ro, fz_mem_read, &mb) : NULL;
    if (ra && rb) {
        int la = ms_diff_load(d, MS_DIFF_A, ra, "a");
        int lb = la >= 0 ? ms_diff_load(d, MS_DIFF_B, rb, "b") : la;
        for (int k = 0; k < 2 && la >= 0 && lb >= 0; k++) {
            const ms_diff_damage *dm = ms_diff_get_damage(d, k ? MS_DIFF_B : MS_DIFF_A);
            if ((dm != NULL) != ((k ? lb : la) == MS_DIFF_DAMAGED) ||
                (dm && (!o.keep_damaged || dm->status >= 0 || !dm->message[0])))
                bad("a side kept up to its damage without saying where, or the other way");
        }
        if (la >= 0 && lb >= 0) {
            int rc = ms_diff_compare(d, check_item, &form);
            const ms_diff_totals *t = ms_diff_get_totals(d);
            if (rc >= 0 &&
                (uint64_t)rc != t->metadata + t->regions + t->ranges + t->devices + t->overlays)
                bad("the count differs from the totals");
            /* A stream compared with itself is the same. */
            if (rc > 0 && sa == sb && memcmp(a, b, sa) == 0)
                bad("a stream differs from itself");
        } else if (!ms_diff_errmsg(d)[0]) {
            bad("a side failed to load without a message");
        }
    }
    ms_reader_free(ra);
    ms_reader_free(rb);
    ms_diff_free(d);
    free(a);
    free(b);
    fz_check_clean(dir, fds);
    return 0;
}
