/*
 * PAGES payloads (FORMAT.md section 6): a 16-byte batch header, fixed 24-byte
 * extents, then the DATA pages' contents (raw or one zstd frame). Fixed-width
 * extents keep the hot path branch-free to parse and every offset in an
 * error message exact.
 */
#include "format/payload.h"

void msi_pages_header(uint8_t *p, uint32_t region_id, uint32_t extents, uint8_t encoding)
{
    memset(p, 0, MSI_PAGES_HEADER);
    msi_put32(p, region_id);
    msi_put32(p + 4, extents);
    p[8] = encoding;
}

void msi_extent_encode(uint8_t *p, const ms_extent *x)
{
    msi_put64(p, x->first);
    msi_put32(p + 8, x->count);
    p[12] = x->state;
    p[13] = p[14] = p[15] = 0;
    msi_put64(p + 16, x->arg);
}

int msi_pages_head(const uint8_t *p, size_t n, uint32_t *region_id, uint32_t *extents,
                   uint8_t *encoding, msi_perr *e)
{
    if (n < MSI_PAGES_HEADER)
        return msi_perr_set(e, MS_ECORRUPT, 0, "PAGES payload of %zu bytes is shorter than "
                            "its 16-byte header", n);
    *region_id = msi_get32(p);
    *extents = msi_get32(p + 4);
    *encoding = p[8];
    for (int i = 9; i < 16; i++)
        if (p[i])
            return msi_perr_set(e, MS_ECORRUPT, (size_t)i, "PAGES header reserved byte %d is "
                                "0x%02x, must be zero", i, p[i]);
    if (*encoding > MS_ENCODING_ZSTD_WINDOW)
        return msi_perr_set(e, MS_ECORRUPT, 8, "PAGES data encoding %u is unknown", *encoding);
    if (*extents == 0)
        return msi_perr_set(e, MS_ECORRUPT, 4, "PAGES record has no extents");
    if ((uint64_t)*extents * MSI_EXTENT_SIZE > n - MSI_PAGES_HEADER)
        return msi_perr_set(e, MS_ECORRUPT, 4, "PAGES declares %u extents (%llu bytes) but "
                            "only %zu payload bytes follow its header", *extents,
                            (unsigned long long)*extents * MSI_EXTENT_SIZE,
                            n - MSI_PAGES_HEADER);
    return MS_OK;
}

uint64_t msi_state_feature(uint8_t state)
{
    switch (state) {
    case MS_PAGE_DISCARDED: return MS_FEATURE_DISCARDED;
    case MS_PAGE_FILL: return MS_FEATURE_FILL;
    case MS_PAGE_IN_PLACE: return MS_FEATURE_IN_PLACE;
    case MS_PAGE_DUPLICATE: return MS_FEATURE_DUPLICATES;
    default: return 0;
    }
}

const char *msi_extent_check(const ms_extent *x, const ms_region *r, uint64_t features)
{
    uint64_t last;
    if (x->state == 0 || x->state > MSI_LAST_PAGE_STATE)
        return "unknown page state";
    if ((msi_state_feature(x->state) & ~features) != 0)
        return "page state needs a required feature bit the preamble does not set";
    switch (x->state) {
    case MS_PAGE_FILL:
        /* One representation per content: an all-zero fill is ZERO. */
        return x->arg == 0 ? "FILL with word 0 (zero pages are ZERO)" : NULL;
    case MS_PAGE_IN_PLACE:
        if (x->arg % r->page_size)
            return "IN_PLACE reference is not aligned to the region's page size";
        /* The referenced bytes [arg, arg + count * page_size) must not wrap. */
        if (msi_add_overflow(x->arg, (uint64_t)x->count * r->page_size - 1, &last))
            return "IN_PLACE reference range wraps around 2^64";
        return NULL;
    case MS_PAGE_DUPLICATE: {
        /* The source pages [arg, arg + count) lie in the region and apart
         * from the extent's own pages (section 6.2); that each holds
         * contents sent earlier needs page states (a consumer's check). */
        const uint64_t pages = r->size / r->page_size;
        if (x->arg >= pages || x->count > pages - x->arg)
            return "DUPLICATE source pages lie outside the region";
        if (x->arg < x->first + x->count && x->first < x->arg + x->count)
            return "DUPLICATE source pages overlap the extent's own pages";
        return NULL;
    }
    default:
        return x->arg == 0 ? NULL : "argument must be zero for this page state";
    }
}

int msi_pages_extents(const uint8_t *p, size_t n, const ms_region *r, uint64_t features,
                      uint32_t extents, ms_extent *out, uint64_t *data_pages, msi_perr *e)
{
    (void)n; /* msi_pages_head() has checked that the extents fit */
    const uint64_t region_pages = r->size / r->page_size;
    uint64_t next_free = 0, data = 0;
    for (uint32_t i = 0; i < extents; i++) {
        size_t at = MSI_PAGES_HEADER + (size_t)i * MSI_EXTENT_SIZE;
        const uint8_t *q = p + at;
        ms_extent *x = &out[i];
        x->first = msi_get64(q);
        x->count = msi_get32(q + 8);
        x->state = q[12];
        x->arg = msi_get64(q + 16);
        if (q[13] | q[14] | q[15])
            return msi_perr_set(e, MS_ECORRUPT, at + 13, "extent %u: reserved bytes are not "
                                "zero", i);
        if (x->state == 0 || x->state > MSI_LAST_PAGE_STATE)
            return msi_perr_set(e, MS_ECORRUPT, at + 12, "extent %u: unknown page state %u", i,
                                x->state);
        if ((msi_state_feature(x->state) & ~features) != 0)
            return msi_perr_set(e, MS_ECORRUPT, at + 12, "extent %u: page state %s needs "
                                "required feature bit %d (%s), which the preamble does not set",
                                i, ms_page_state_name(x->state),
                                __builtin_ctzll(msi_state_feature(x->state)),
                                ms_page_state_name(x->state));
        if (x->count == 0)
            return msi_perr_set(e, MS_ECORRUPT, at + 8, "extent %u: page count is zero", i);
        if (x->first >= region_pages || x->count > region_pages - x->first)
            return msi_perr_set(e, MS_ECORRUPT, at, "extent %u: pages %llu..%llu lie outside "
                                "region %u \"%s\" (%llu pages)", i,
                                (unsigned long long)x->first,
                                (unsigned long long)x->first + x->count - 1, r->id, r->name,
                                (unsigned long long)region_pages);
        const char *why = msi_extent_check(x, r, features);
        if (why)
            return msi_perr_set(e, MS_ECORRUPT, at + 16, "extent %u (pages %llu..%llu, %s, "
                                "argument 0x%llx): %s", i, (unsigned long long)x->first,
                                (unsigned long long)x->first + x->count - 1,
                                ms_page_state_name(x->state), (unsigned long long)x->arg, why);
        if (x->first < next_free)
            return msi_perr_set(e, MS_ECORRUPT, at, "extent %u: page %llu overlaps or precedes "
                                "the previous extent (extents must ascend)", i,
                                (unsigned long long)x->first);
        next_free = x->first + x->count;
        if (x->state == MS_PAGE_DATA)
            data += x->count; /* at most 2^32 * 2^32 / 24: cannot overflow */
    }
    *data_pages = data;
    return MS_OK;
}
