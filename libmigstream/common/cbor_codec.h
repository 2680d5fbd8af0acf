/*
 * CBOR within the profile of FORMAT.md section 10: definite lengths only, no
 * tags, simple values limited to false/true/null, floats allowed only in
 * device state. Encoding appends to an msi_buf; decoding walks a payload one
 * data item head at a time, never allocating and never recursing.
 */
#ifndef MSI_CBOR_CODEC_H
#define MSI_CBOR_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define MSI_CBOR_MAX_DEPTH MS_MAX_CBOR_DEPTH /* hard ceiling for depth options */

/* ---- encoding ---- */
int msi_cbor_put_uint(msi_buf *b, uint64_t v);
int msi_cbor_put_text(msi_buf *b, const char *s, size_t len);
int msi_cbor_put_int(msi_buf *b, int64_t v);
int msi_cbor_put_bytes(msi_buf *b, const void *p, size_t len);
int msi_cbor_put_bool(msi_buf *b, bool v);
int msi_cbor_put_map(msi_buf *b, size_t pairs);
int msi_cbor_put_array(msi_buf *b, size_t items);

/* ---- decoding ---- */
typedef enum msi_cbor_kind {
    MSI_CBOR_NONE,   /* no item decoded (internal) */
    MSI_CBOR_UINT,
    MSI_CBOR_NINT,   /* value is -1 - u */
    MSI_CBOR_BYTES,
    MSI_CBOR_TEXT,
    MSI_CBOR_ARRAY,  /* count in u */
    MSI_CBOR_MAP,    /* pairs in u */
    MSI_CBOR_SIMPLE, /* false (0), true (1), null (2) in u */
    MSI_CBOR_FLOAT,
} msi_cbor_kind;

typedef struct msi_cbor_tok {
    msi_cbor_kind kind;
    uint64_t u;
    const uint8_t *str; /* BYTES/TEXT: the string's bytes */
    size_t len;         /* BYTES/TEXT: its length */
    double f;           /* FLOAT: its value */
} msi_cbor_tok;

typedef struct msi_cbor_in {
    const uint8_t *p;
    size_t len;
    size_t pos;       /* next byte to decode */
    size_t err_pos;   /* where the failing item starts */
    const char *err;  /* static description of the failure */
} msi_cbor_in;

void msi_cbor_in_init(msi_cbor_in *in, const uint8_t *p, size_t len);
/* Decodes one item head. MS_OK or MS_ECBOR (with in->err set). */
int msi_cbor_next(msi_cbor_in *in, msi_cbor_tok *t);
/* Skips one whole data item, checking it against the profile (text strings
 * must be UTF-8) and nesting at most @max_depth containers deep, counting
 * the item itself. @allow_float admits floats. */
int msi_cbor_skip(msi_cbor_in *in, unsigned max_depth, bool allow_float);

/* Structural maps of the format (INFO, REGIONS, DEVICE, END): a definite map
 * with unsigned keys in strictly ascending order (FORMAT.md section 10),
 * which rules out duplicates without remembering every key. `seen` has bit k
 * set for each key k < 64 present, for required-key checks. */
typedef struct msi_cbor_map {
    uint64_t remaining;
    uint64_t seen;
    uint64_t last;
    bool any;
} msi_cbor_map;
int msi_cbor_map_open(msi_cbor_in *in, msi_cbor_map *m);
/* 1 with a key in *key, 0 when the map is done, MS_ECBOR / MS_ECORRUPT. */
int msi_cbor_map_key(msi_cbor_in *in, msi_cbor_map *m, uint64_t *key);
int msi_cbor_get_uint(msi_cbor_in *in, uint64_t *v);
/* A text string: returns a view (not NUL-terminated). */
int msi_cbor_get_text(msi_cbor_in *in, const uint8_t **s, size_t *len);
/* A signed integer within int64_t (major type 0 or 1). */
int msi_cbor_get_int(msi_cbor_in *in, int64_t *v);
/* A byte string: returns a view. */
int msi_cbor_get_bytes(msi_cbor_in *in, const uint8_t **s, size_t *len);
int msi_cbor_get_bool(msi_cbor_in *in, bool *v);

/* In the CBOR map that @p (@n bytes, checked to MSI_CBOR_MAX_DEPTH with
 * floats allowed, as device state is) holds, the value of text key @key:
 * 1 with *@at set to the value's position in @p, 0 when the map has no
 * such key, -2 when the key is there twice, -1 with *@why (static) when @p
 * is not a map or an item is malformed. Other keys may be of any kind. */
int msi_cbor_find_text_key(const uint8_t *p, size_t n, const char *key, size_t *at,
                           const char **why);

#endif /* MSI_CBOR_CODEC_H */
