/*
 * What the Xen module's tests share: the streams tests/xen/mkxen.py writes
 * (MS_XEN_DATA: NAME.xen, NAME.expect, fixtures.txt), the final state of a
 * libmigstream stream read back independently of the module (pages by pfn,
 * devices by path and instance with the FNV-1a hash of their "raw" bytes,
 * regions, rounds) and the same read from an .expect file, runs of the
 * importer and exporter over memory, and Xen's checker verify-stream-v2.
 */
#ifndef MS_TEST_XEN_FIXTURE_H
#define MS_TEST_XEN_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <migstream/migstream.h>

/* ---- files ---- */

/* The bytes of MS_XEN_DATA/@file (a .xen or .expect), NUL-terminated;
 * fails the test when missing. */
uint8_t *tx_load(const char *file, size_t *len);

/* One line of fixtures.txt. */
typedef struct tx_fixture {
    char name[64];
    char format[8];  /* "libxl" or "libxc" */
    char verdict[8]; /* verify-stream-v2: "pass", "fixed" or "no" */
} tx_fixture;

/* The fixtures, in fixtures.txt's order; *count of them. Static. */
const tx_fixture *tx_fixtures(size_t *count);

/* ---- memory I/O ---- */

typedef struct tx_in {
    const uint8_t *p;
    size_t len, pos, chunk; /* chunk: at most this many bytes per read (0: any) */
} tx_in;
ssize_t tx_read(void *ctx, void *buf, size_t len);

typedef struct tx_out {
    uint8_t *p;
    size_t len, cap;
    size_t fail_after; /* fail a write that would pass this many bytes (0: never) */
} tx_out;
int tx_write(void *ctx, const struct iovec *iov, int iovcnt);
void tx_out_free(tx_out *o);

/* Imports @len bytes of a Xen stream: the status, the output in @out,
 * the message in @msg (when set, @msg_size bytes). @o may be NULL. */
int tx_import(const uint8_t *xen, size_t len, const ms_xen_import_options *o, tx_out *out,
              char *msg, size_t msg_size);
/* Exports a libmigstream stream, the same way. */
int tx_export(const uint8_t *lm, size_t len, const ms_xen_export_options *o, tx_out *out, char *msg,
              size_t msg_size);

/* ---- final states ---- */

enum { TX_DATA = 1, TX_ZERO = 2, TX_DISCARDED = 3 };

typedef struct tx_page {
    uint64_t pfn;
    uint8_t state; /* TX_*; 0: an empty slot */
    uint64_t fnv;  /* TX_DATA: FNV-1a of the 4096 bytes */
} tx_page;

typedef struct tx_dev {
    char path[128];
    uint32_t instance;
    char schema[64];
    size_t len;   /* of "raw" */
    uint64_t fnv; /* of "raw" */
} tx_dev;

typedef struct tx_region {
    char name[64];
    uint64_t gpa, size;
} tx_region;

typedef struct tx_state {
    tx_page *pages; /* open addressing by pfn */
    size_t npages, cap;
    tx_dev *devs;
    size_t ndevs, dev_cap;
    tx_region regions[16];
    size_t nregions;
    uint64_t rounds;
    ms_header header;
    char machine[64];
} tx_state;

/* The state a libmigstream stream leaves; fails the test when the reader
 * refuses it. Pages are keyed by pfn: region gpa / 4096 + page index. */
void tx_state_read(const uint8_t *lm, size_t len, tx_state *st);
/* The state an .expect file names. */
void tx_state_expect(const char *text, tx_state *st);
/* NULL when @a and @b hold the same pages, devices and (with @regions)
 * regions and rounds; else the first difference, in @buf. */
const char *tx_state_diff(const tx_state *a, const tx_state *b, bool regions, char *buf,
                          size_t size);
const tx_page *tx_state_page(const tx_state *st, uint64_t pfn);
const tx_dev *tx_state_dev(const tx_state *st, const char *path, uint32_t instance);
void tx_state_free(tx_state *st);

/* The state map of the DEVICE (@path, @instance) of a libmigstream stream
 * as JSON (ms_cbor_format), malloc'd; NULL when there is none. */
char *tx_device_json(const uint8_t *lm, size_t len, const char *path, uint32_t instance);

uint64_t tx_fnv(const void *p, size_t n);

/* ---- Xen's checker ---- */

/* Runs verify-stream-v2 (@fixed false: Xen's script as installed) or
 * tests/xen/verify.py (@fixed true: the same checks, its Python 3 bug
 * fixed) on @len bytes, format @fmt ("libxl" or "libxc"). Returns its exit
 * status (0 accepted, 1 refused), or 77 when it is not installed; its
 * output goes to @out (@out_size bytes). */
int tx_verify(const uint8_t *p, size_t len, const char *fmt, bool fixed, char *out,
              size_t out_size);

#endif /* MS_TEST_XEN_FIXTURE_H */
