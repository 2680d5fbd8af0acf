/*
 * Encoders and decoders of record payloads (FORMAT.md sections 5 to 8).
 * Decoders check every rule the spec states for one payload on its own;
 * rules that span records (unique region ids, totals) are the reader's.
 */
#ifndef MSI_PAYLOAD_H
#define MSI_PAYLOAD_H

#include <stdarg.h>

#include "common/cbor_codec.h"
#include "common/util.h"
#include "migstream/reader.h"
#include "migstream/stream.h"

/* Map keys a decoder does not know (FORMAT.md section 11.2): skipped, and
 * listed as payload paths ("/9", "/1/7") for ms_record.unknown_keys. */
typedef struct msi_keys {
    size_t count; /* all met, listed or not */
    char path[MS_MAX_LISTED_KEYS][48]; /* "/INDEX/KEY": at most 43 bytes */
} msi_keys;

/* A decode's context: where its failure goes (status, byte position
 * inside the payload, message) and where unknown keys go (NULL: nowhere).
 * Initialize it: msi_perr e = {.keys = ...}. */
typedef struct msi_perr {
    size_t at;
    char msg[256];
    msi_keys *keys;
} msi_perr;

/* Skips the value of map key @key, which the decoder does not know (no
 * float in it, at most 16 deep: section 10), listing its path: @index is
 * the map's index in the payload's array, or -1 for a payload that is one
 * map. */
int msi_skip_unknown(msi_cbor_in *in, msi_perr *e, int64_t index, uint64_t key,
                     const char *what);
int msi_perr_set(msi_perr *e, int code, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Turns a failed CBOR decode into a payload error naming @what. */
int msi_perr_cbor(msi_perr *e, int code, const msi_cbor_in *in, const char *what);

typedef struct msi_text {
    const uint8_t *p;
    size_t len;
} msi_text;

/* Reads an unsigned integer that must fit 32 bits, naming @what on error. */
int msi_get_u32(msi_cbor_in *in, uint32_t *v, const char *what, msi_perr *e);

/* True when s[0..len) is valid UTF-8 without NUL bytes. */
bool msi_text_ok(const uint8_t *s, size_t len);

/* ---- INFO (section 5.1) ---- */
int msi_info_encode(msi_buf *b, const char *machine, const char *description);
int msi_info_decode(const uint8_t *p, size_t n, msi_text *machine, msi_text *description,
                    msi_perr *e);

/* ---- REGIONS (section 5.2) ---- */
typedef struct msi_region_view {
    ms_region r;  /* r.name unset */
    msi_text name;
    size_t at;    /* payload position of the region's map */
} msi_region_view;
int msi_regions_encode(msi_buf *b, const ms_region *regions, size_t count);
/* Checks one region on its own (sizes, alignment, names). Returns NULL or a
 * static description of the problem. */
const char *msi_region_check(const ms_region *r, size_t name_len, uint32_t base_page_size);
/* Decodes up to @max regions into an array allocated from @a. */
int msi_regions_decode(const uint8_t *p, size_t n, uint32_t base_page_size, size_t max,
                       const ms_allocator *a, msi_region_view **out, size_t *count,
                       msi_perr *e);

/* ---- DEVICE (section 7) ---- */
int msi_device_encode(msi_buf *b, const char *path, uint32_t instance, const char *schema,
                      uint32_t version, const void *state, size_t state_size);
typedef struct msi_device_view {
    msi_text path, schema;
    uint32_t instance, version;
    const uint8_t *state;
    size_t state_size;
} msi_device_view;
int msi_device_decode(const uint8_t *p, size_t n, unsigned max_depth, msi_device_view *d,
                      msi_perr *e);
/* Checks that @state is exactly one item in the device-state profile. */
int msi_device_state_check(const uint8_t *state, size_t n, unsigned max_depth, msi_perr *e);

/* ---- END (section 8) ---- */
int msi_end_encode(msi_buf *b, const ms_totals *t);
int msi_end_decode(const uint8_t *p, size_t n, ms_totals *t, msi_perr *e);

/* ---- ROUND (section 6.4) ---- */
int msi_round_encode(msi_buf *b, const ms_round *r);
int msi_round_decode(const uint8_t *p, size_t n, ms_round *r, msi_perr *e);
/* Why @r breaks section 6.4 on its own, or NULL. */
const char *msi_round_check(const ms_round *r);

/* ---- PART (section 5.3) ---- */
int msi_part_encode(msi_buf *b, const ms_part *p);
int msi_part_decode(const uint8_t *p, size_t n, ms_part *part, msi_perr *e);
/* Why @p breaks section 5.3 on its own (or has reserved words set), or
 * NULL. */
const char *msi_part_check(const ms_part *p);

/* ---- OVERLAY (section 7.2) ---- */
int msi_overlays_encode(msi_buf *b, const ms_overlay *o, size_t count);
/* Decodes at most @max overlays into *@outp, an array of *@cap entries
 * grown from @a as needed; slot views point into @p. */
int msi_overlays_decode(const uint8_t *p, size_t n, size_t max, const ms_allocator *a,
                        ms_overlay **outp, size_t *cap, size_t *count, msi_perr *e);

/* ---- PAGES (section 6) ---- */
#define MSI_LAST_PAGE_STATE MS_PAGE_IN_PLACE
/* The feature bit a page state needs in the preamble, or 0 (DATA, ZERO). */
uint64_t msi_state_feature(uint8_t state);
#define MSI_PAGES_HEADER 16u
#define MSI_EXTENT_SIZE 24u
void msi_pages_header(uint8_t *p, uint32_t region_id, uint32_t extents, uint8_t encoding);
void msi_extent_encode(uint8_t *p, const ms_extent *x);
/* Reads the batch header: region id, extent count, encoding. */
int msi_pages_head(const uint8_t *p, size_t n, uint32_t *region_id, uint32_t *extents,
                   uint8_t *encoding, msi_perr *e);
/* Decodes and checks the extents against @r and the stream's required
 * @features; @out holds @extents entries. *data_pages gets the number of
 * DATA pages. */
int msi_pages_extents(const uint8_t *p, size_t n, const ms_region *r, uint64_t features,
                      uint32_t extents, ms_extent *out, uint64_t *data_pages, msi_perr *e);
/* Why extent @x breaks the state rules of section 6.2 for region @r with
 * @features, or NULL. Shared by the writer and the reader. */
const char *msi_extent_check(const ms_extent *x, const ms_region *r, uint64_t features);

#endif /* MSI_PAYLOAD_H */
