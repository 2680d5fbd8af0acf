/*
 * libmigstream: presenting and comparing CBOR items (device state).
 *
 * Device state travels as one CBOR data item (FORMAT.md sections 7 and 10).
 * These functions turn such an item into text for people and scripts, and
 * compare two items field by field. They accept only items in the format's
 * profile, check nesting before walking, and are safe on untrusted bytes.
 * They allocate with malloc (ms_cbor_diff only; ms_cbor_format allocates
 * only for non-text map keys in JSON form). They keep no state: any thread
 * may call them at any time.
 */
#ifndef MIGSTREAM_CBOR_H
#define MIGSTREAM_CBOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Output forms of ms_cbor_format(). */
typedef enum ms_cbor_form {
    /** RFC 8949 section 8 diagnostic notation: {0: h'5254', "a": [1, -2]} */
    MS_CBOR_DIAG = 0,
    /** JSON (RFC 8949 section 6.1 style): map keys become strings (an
     *  integer key 0 becomes "0"), byte strings become lowercase hex
     *  strings, floats that JSON cannot hold (NaN, infinities) become null,
     *  and integers beyond +-(2^53 - 1), which a parser that reads numbers
     *  as doubles would round, become strings of their decimal digits
     *  ("18446744071578845184"). */
    MS_CBOR_JSON = 1,
} ms_cbor_form;

/**
 * Formats the single CBOR item @p cbor (@p size bytes) as text, like
 * snprintf: writes at most @p bufsize bytes including the terminating NUL.
 * @param max_depth nesting limit (0: 64)
 * @return the length of the full text (excluding the NUL), which may exceed
 *         @p bufsize; or MS_ECBOR when the bytes are not exactly one item in
 *         the profile, MS_EINVAL on bad arguments.
 */
MS_API ssize_t ms_cbor_format(const void *cbor, size_t size, ms_cbor_form form,
                              unsigned max_depth, char *buf, size_t bufsize);

/**
 * Called by ms_cbor_diff() for each difference.
 * @param path  location of the difference, as a slash-separated list of map
 *              keys (in diagnostic notation) and array indexes, e.g.
 *              /regs/"rip" or /3/0; "" for the whole item
 * @param a,b   the differing items, encoded (NULL when absent on that side)
 * @return 0 to go on, negative to stop (ms_cbor_diff returns the value)
 */
typedef int (*ms_cbor_diff_fn)(void *ctx, const char *path, const uint8_t *a, size_t a_size,
                               const uint8_t *b, size_t b_size);

/**
 * Compares two CBOR items field by field: maps key by key (whatever the key
 * order), arrays index by index, anything else by value. Differences are
 * reported depth first, map keys in the order of their encoded bytes (length
 * first, as RFC 8949 section 4.2.1 sorts them), array elements by index.
 * @return the number of differences (0: equal), MS_ECBOR when either input
 *         is not one valid item, or a callback's negative value.
 */
MS_API int ms_cbor_diff(const void *a, size_t a_size, const void *b, size_t b_size,
                        ms_cbor_diff_fn fn, void *ctx);

/** Kinds of the item heads ms_cbor_next() gives. */
typedef enum ms_cbor_kind {
    MS_CBOR_UINT = 1,   /**< u: the value */
    MS_CBOR_NINT = 2,   /**< the value is -1 - u */
    MS_CBOR_BYTES = 3,  /**< str, len: the bytes (a view into the input) */
    MS_CBOR_TEXT = 4,   /**< str, len: the text (a view, not NUL-terminated) */
    MS_CBOR_ARRAY = 5,  /**< u: the number of items that follow */
    MS_CBOR_MAP = 6,    /**< u: the number of key-value pairs that follow */
    MS_CBOR_SIMPLE = 7, /**< u: false (0), true (1), null (2) */
    MS_CBOR_FLOAT = 8,  /**< f */
} ms_cbor_kind;

/** One item head. */
typedef struct ms_cbor_item {
    ms_cbor_kind kind;
    uint64_t u;
    const uint8_t *str;
    size_t len;
    double f;
} ms_cbor_item;

/**
 * Decodes the item head at *@p pos of @p cbor (@p size bytes) into @p item
 * and moves *@p pos past it (past a string's bytes too; a map's or array's
 * members follow as heads of their own). Allocates nothing and never
 * recurses; a count (u of a MAP or ARRAY) larger than the bytes left could
 * not be honest and is refused, so a loop over it is bounded by the
 * input's size. This is how to
 * read a device state from a stream without a general CBOR decoder, which
 * may allocate what the input's counts declare (libcbor's cbor_load).
 * @return 0; MS_ECBOR when the bytes there are not an item head of the
 *         profile (FORMAT.md section 10: definite lengths, no tags), the
 *         input ends inside it, or a count exceeds the bytes left;
 *         MS_EINVAL on NULL arguments.
 */
MS_API int ms_cbor_next(const void *cbor, size_t size, size_t *pos, ms_cbor_item *item);

#ifdef __cplusplus
}
#endif
#endif /* MIGSTREAM_CBOR_H */
