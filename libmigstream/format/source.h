/*
 * Foreign formats: streams that other VMMs write, read as the records of
 * this format's model (docs/HACKING.md, "Adding a foreign format").
 *
 * Each foreign format is a module in a layer above this one
 * (libmigstream/qemu/ for QEMU's stream) that fills one msi_source_ops and
 * calls only downward, in the spirit of libarchive's per-format readers:
 *
 *   bid     says from a stream's first bytes whether it is the module's
 *           format (detection; the registry asks every module);
 *   open    reads the stream's start, up to what the header needs;
 *   next    hands out the next record of the common model: the ms_record
 *           a reader of the equivalent libmigstream stream would hand out
 *           (INFO, REGIONS, PAGES, ROUND, DEVICE, OVERLAY, END);
 *   close   frees the module's state;
 *   export  (where the module has one) writes a libmigstream stream back
 *           out in the module's format.
 *
 * Records from a source carry no wire bytes: offset is the byte offset in
 * the foreign stream at which the item that produced the record starts,
 * index counts the source's records from 0, payload is NULL, length and
 * checksum are 0, known is true, status 0. A PAGES record's data is raw
 * (encoding MS_ENCODING_RAW). The last record is END, whose totals count
 * what the source handed out (bytes: the foreign stream's bytes read).
 * Views stay valid until the next call on the source.
 *
 * next() does a bounded amount of work per call (one item of the foreign
 * stream or a few), so that a caller never waits on a whole stream and the
 * source's memory stays bounded by its limits, not by the stream.
 */
#ifndef MSI_SOURCE_H
#define MSI_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "migstream/reader.h"
#include "migstream/writer.h"

/* Bytes a bid is given at most: enough for every module's magic and the
 * header fields that tell its variants apart. */
#define MSI_SOURCE_BID_BYTES 64u

/* One extra input of a stream that arrives over several connections
 * (QEMU's multifd channels). */
typedef struct msi_source_channel {
    ms_read_fn read;
    void *ctx;
    const char *name; /* what messages call it (a file name), or NULL */
} msi_source_channel;

/* Where a source reads from. */
typedef struct msi_source_io {
    ms_read_fn read; /* the stream, in order; NULL when pread is set */
    void *read_ctx;
    ms_pread_fn pread; /* positional reads of the stream, or NULL */
    void *pread_ctx;
    const msi_source_channel *channels; /* extra inputs, or NULL */
    size_t nchannels;
} msi_source_io;

typedef struct msi_source msi_source;

typedef struct msi_source_ops {
    const char *name;  /* "qemu": the format's short name */
    const char *title; /* "QEMU migration stream": for messages */
    /* 0 (not this format) to 100 (certainly this format), judged from the
     * stream's first @len bytes (MSI_SOURCE_BID_BYTES, or fewer when the
     * stream is shorter). Reads nothing else. */
    int (*bid)(const uint8_t *head, size_t len);
    /* The same for an extra input of the format (a QEMU multifd channel):
     * how likely @head starts one. NULL: the format has none. */
    int (*bid_extra)(const uint8_t *head, size_t len);
    /* What messages call an extra input ("multifd channel"), or NULL. */
    const char *extra_title;
    /* Sets up s->state, reads the stream's start and fills s->header and
     * s->info. 0, or a status with the source's error set. */
    int (*open)(msi_source *s);
    /* 1 with a record in *out; 0 after END was handed out; negative on
     * failure (sticky, with the source's error set). */
    int (*next)(msi_source *s, const ms_record **out);
    /* Frees s->state (also after a failed open). */
    void (*close)(msi_source *s);
    /* Reads a libmigstream stream through @in and writes it to @out in the
     * module's format, with the module's default options; NULL when the
     * module has no exporter. 0, or a status with @err set. */
    int (*export)(ms_read_fn in, void *in_ctx, ms_write_fn out, void *out_ctx, char *err,
                  size_t err_size);
    /* For a source with several inputs that each end in their own way (the
     * parts of a migration, format/parts.c), NULL otherwise: after END,
     * checks that no input holds bytes past its stream, as
     * ms_reader_expect_eof() does (0, or a status with the error set). */
    int (*expect_eof)(msi_source *s);
    /* ms_reader_part_count() and ms_reader_part_info() for a source that
     * reads a migration in parts; NULL for the others. */
    uint32_t (*part_count)(const msi_source *s);
    const ms_part_info *(*part_info)(msi_source *s, uint32_t i);
} msi_source_ops;

/* msi_source.err_record when the failure names no record of the source's
 * own: the reader then counts the records it handed out. */
#define MSI_SOURCE_NO_RECORD INT64_MIN

struct msi_source {
    const msi_source_ops *ops;
    ms_allocator alloc;
    msi_source_io io;
    const void *options; /* the module's own options struct, or NULL */
    ms_header header;    /* set by open: page size, writer name ...; minor
                          * msi_minor_for() of its required features, as a
                          * libmigstream stream of the same contents has */
    ms_info info;        /* set by open: machine, description (views) */
    int status;          /* sticky: 0, or the failure that stopped it */
    char msg[512];       /* what failed and where */
    uint64_t err_offset; /* byte offset of the failure in its input */
    /* The record index the failure (or the problem being reported) names
     * in its input, or MSI_SOURCE_NO_RECORD; the part it is in, or -1
     * (ms_reader_error_part()). Set by sources with several streams. */
    int64_t err_record;
    int64_t err_part;
    void *state;         /* the module's */
    /* Where problems the source can step over go (msi_source_problem()):
     * set by the reader that hands the source's records out, or NULL. */
    void (*problem)(void *ctx, int status, uint64_t offset, const char *msg);
    void *problem_ctx;
};

/* Initializes @s for @ops over @io; nothing is read. @alloc may be NULL. */
void msi_source_init(msi_source *s, const msi_source_ops *ops, const ms_allocator *alloc,
                     const msi_source_io *io, const void *options);
/* ops->open, with the status kept. */
int msi_source_open(msi_source *s);
/* ops->next; a failed source keeps returning its status. */
int msi_source_next(msi_source *s, const ms_record **out);
/* ops->close; @s may be uninitialized-but-zeroed or NULL. */
void msi_source_close(msi_source *s);

/* A source on the heap, from @alloc (NULL: malloc), initialized as
 * msi_source_init() does; NULL when out of memory. */
msi_source *msi_source_create(const msi_source_ops *ops, const ms_allocator *alloc,
                              const msi_source_io *io, const void *options);
/* Closes and frees a source from msi_source_create() (NULL is fine). */
void msi_source_destroy(msi_source *s);

/* Records a failure (the first one wins) and returns @status. */
int msi_source_fail(msi_source *s, int status, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reports a problem the source steps over (a structural check the foreign
 * format allows, which does not stop the reading), at byte @offset of its
 * input; validators show it. Nothing happens when nobody listens. */
void msi_source_problem(msi_source *s, int status, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An ms_reader that hands out the records of @src (format/reader.c), which
 * it owns from now on, whatever happens (msi_source_destroy() on free). The
 * source is opened on the reader's first call; its failures become the
 * reader's, with the source's message. NULL only when out of memory. */
ms_reader *msi_reader_new_source(const ms_reader_options *opts, msi_source *src);

/* A reader in the failed state with @status and @msg (an opener's
 * refusal, before any reader could read); NULL only when out of memory. */
ms_reader *msi_reader_new_failed(const ms_reader_options *opts, int status, const char *msg);

/* Calls @fn(@ctx) when @r is freed, after everything else: for what the
 * reader's callbacks need (an opener's input buffers and descriptors).
 * One per reader; 0, or MS_EINVAL when one is set already. */
int msi_reader_on_free(ms_reader *r, void (*fn)(void *ctx), void *ctx);

/* Where msi_source_copy() stopped when it failed. */
typedef struct msi_copy_stop {
    bool writer_failed;   /* the writer failed (else the source did) */
    const ms_record *rec; /* the record being written when the writer failed */
    /* Within @rec, the first item the failing call wrote: the region
     * (REGIONS), the page (PAGES, counting the pages of every extent
     * before it) or the overlay (OVERLAY); 0 for other records. */
    uint64_t item;
} msi_copy_stop;

/*
 * Writes every record of the opened source @s through @w, the way a VMM
 * receiving the foreign stream and sending it on would: regions as
 * declared, DATA pages one call per page (so that the writer ends PAGES
 * records where it would for such a VMM), runs of other states in one
 * call, rounds, overlays, devices, unknown records; INFO is the writer's
 * (it was created with the source's info) and END is written by
 * ms_writer_finish(). Stops at the source's END without finishing @w.
 * @param stop [out] where it stopped on failure: a module names the item of
 *        its own stream that the failing writer call came from, the record
 *        staying valid until the next call on @s
 * @return 0; a source status (the source's error set); or a writer status
 *         (the writer's error set), told apart by @stop->writer_failed.
 */
int msi_source_copy(msi_source *s, ms_writer *w, msi_copy_stop *stop);

#endif /* MSI_SOURCE_H */
