/*
 * Chores shared by the command-line tools: opening inputs ("-" is standard
 * input), exit codes, JSON string output, atomic output files and
 * directories, a progress line, the per-state counts dump and validate
 * print, and device instances for their duplicate checks. No format logic
 * lives here: the tools see streams only through the public API, and the
 * library does the work (ms_pagemap, ms_diff, ms_replay_dir).
 */
#ifndef MST_COMMON_H
#define MST_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <migstream/migstream.h>

/* Exit codes, one table for every tool (docs/OUTPUT.md, each man page's
 * EXIT STATUS, each --help: mst_print_exit_table()). */
enum {
    MST_EXIT_OK = 0,    /* success: valid, same, compatible, done */
    MST_EXIT_FAIL = 1,  /* the answer is no: invalid, different, incompatible,
                         * or an input stream that is bad, damaged or refused */
    MST_EXIT_ERROR = 2, /* usage, I/O, out of memory, interrupted */
};

/* The exit code for a failed library call's status: MST_EXIT_ERROR for
 * what is not about the stream's contents (MS_EIO, MS_ENOMEM, MS_EINVAL,
 * MS_ESTATE), MST_EXIT_FAIL for a stream that is bad, damaged or refused
 * (MS_ECORRUPT, MS_ETRUNCATED, MS_ELIMIT ...). */
int mst_exit_for(int status);

/* Prints the exit-status table, as every --help ends. */
void mst_print_exit_table(FILE *f);

/* Program name for messages, set by mst_init(). */
extern const char *mst_prog;
void mst_init(const char *argv0);

/* Prints the --version line: "PROG (libmigstream X.Y.Z, format M.N)". */
void mst_print_version(void);

/* Prints "PROG: message\n" to stderr, its control characters escaped
 * (ms_escape_text): messages quote names from streams. */
void mst_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* vsnprintf into BUF, then its control characters escaped, as mst_error
 * does: for messages printed elsewhere. */
void mst_vformat(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* A usage error: "PROG: message" as mst_error() prints it (the message
 * cut at 511 bytes), then "Try 'PROG --help'."; returns MST_EXIT_ERROR. */
int mst_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The rows of the options mst_common_option() reads, for a struct option
 * table (getopt.h). */
/* clang-format off */
#define MST_COMMON_LONGOPTS                       \
    {"quiet", no_argument, NULL, 'q'},            \
    {"progress", required_argument, NULL, 'P'},   \
    {"help", no_argument, NULL, 'h'},             \
    {"version", no_argument, NULL, 'V'}
/* clang-format on */

/* The options import, export and pack read alike, at the end of their
 * getopt_long() switch (short options ":...qhV", opterr 0): -q sets
 * *QUIET, --progress (as 'P') the mode, -h prints USAGE to standard
 * output, -V the version; ':' and '?' are usage errors. Returns 0 to read
 * on, -1 after -h or -V (the tool is done: exit 0), or MST_EXIT_ERROR
 * after printing a usage error. */
int mst_common_option(int opt, char **argv, bool *quiet, void (*usage)(FILE *f));

/* Opens PATH for reading ("-": standard input). Returns an fd or -1 after
 * printing why. */
int mst_open_input(const char *path);
/* Size of the input if it is a regular file, else 0. */
uint64_t mst_input_size(int fd);

/* ---- a stream's inputs, read through ms_open() (open.h) ---- */

/* What a tool adds to the reading of its inputs; every member optional. */
typedef struct mst_stream_hooks {
    /* Reads up to LEN bytes of FD as read(2) does (-1 with errno set), in
     * place of read(2) with EINTR retried and a non-blocking descriptor
     * waited on: migstream-replay waits there with its signals unblocked.
     * Positional reads never come here. */
    ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
    void *ctx;
    /* The reader's options (on_problem, limits). */
    const ms_reader_options *reader;
    /* Print nothing: mst_stream_open() leaves why it failed in the
     * stream's why and status, for the tool to word (or skip) itself. */
    bool quiet;
    /* Told the bytes read from all inputs (mst_stream.bytes) as they come. */
    struct mst_progress *progress;
} mst_stream_hooks;

typedef struct mst_stream mst_stream;

/* One input of a stream. */
typedef struct mst_input {
    mst_stream *stream;
    const char *path; /* as given ("-" for standard input) */
    const char *name; /* in messages: the path, or "standard input" */
    int fd;
    int err;           /* errno of its last failed read, or 0 */
    uint64_t seq, end; /* bytes read in order; the end of the furthest read */
    bool regular;      /* a regular file: also read by position */
    dev_t dev;         /* a regular file's, to tell a file given twice */
    ino_t ino;
} mst_input;

/* A stream: its inputs and the reader ms_open() made of them. */
struct mst_stream {
    ms_reader *r;
    mst_input *in;
    size_t n;
    uint64_t bytes; /* read from all inputs so far, by position too: for
                     * the progress line (mst_progress_update) */
    uint64_t size;  /* of every input, when all are regular files; else 0 */
    bool foreign;   /* another format than libmigstream's (ms_reader_format) */
    const char *format;
    mst_stream_hooks hooks;
    int status;    /* when mst_stream_open() failed: MS_EIO (an input cannot
                    * be opened or read), MS_EINVAL (the inputs make no
                    * stream) or MS_ENOMEM */
    char why[640]; /* and what it printed, or would have (quiet) */
};

/*
 * Opens the stream whose inputs are PATHS[0..N): its main input and its
 * extra inputs (QEMU's multifd channels), in any order; "-" is standard
 * input, once at most. Each input is opened here, read sequentially with
 * EINTR retried (or through hooks->read), and regular files also by
 * position (mapped-ram needs it). Returns 0 with S->r set: its status may
 * still be a failure for the tool to report as a bad stream (among several
 * inputs, one that is no stream). Returns -1 after printing why (unless
 * hooks->quiet; S->status and S->why say it): "cannot open PATH: reason",
 * "cannot read PATH: reason", inputs that make no stream (a channel alone,
 * two main streams, a file given twice: the message names them), or no
 * memory. mst_stream_close() in both cases.
 */
int mst_stream_open(mst_stream *s, const char *const *paths, size_t n,
                    const mst_stream_hooks *hooks);
/* Frees the reader, then closes the inputs. */
void mst_stream_close(mst_stream *s);
/* The input whose read failed (its err set), or NULL. */
const mst_input *mst_stream_failed_input(const mst_stream *s);

/* Writes S as a JSON string literal (quotes and escapes included). */
void mst_json_string(FILE *f, const char *s);
/* Writes N bytes as a JSON string of lowercase hex digits. */
void mst_json_hex(FILE *f, const uint8_t *p, size_t n);

/* The u64 rule of docs/OUTPUT.md: a value a stream sets freely (a size,
 * a count it declares) is a JSON string, decimal ("4294967296"); an
 * address, word, checksum or digest a hex string ("0x1000"). Numbers are
 * only what cannot pass 2^53 - 1 by construction. */
void mst_json_u64(FILE *f, uint64_t v);
void mst_json_x64(FILE *f, uint64_t v);

/* The version of the tools' JSON outputs (docs/OUTPUT.md, docs/schemas/). */
#define MST_SCHEMA_VERSION 1
/* The first object of every JSON Lines output:
 * {"kind":"output","tool":PROG,"schema_version":N}. */
void mst_json_output_head(FILE *f);

/* A library status by its name, as a JSON string: "MS_ECHECKSUM". */
void mst_json_status(FILE *f, int status);
/* The error object of docs/OUTPUT.md ("Errors in JSON"), in two halves so
 * that a tool can add members between them: mst_json_error_head() writes
 * {"kind":"error", and mst_json_error_tail() the status, offset, record
 * (null when negative), message and the closing brace and newline. */
void mst_json_error_head(FILE *f);
void mst_json_error_tail(FILE *f, int status, uint64_t offset, int64_t record, const char *message);

/* Formats a CBOR item with ms_cbor_format into a malloc'd string (NULL on
 * malformed input or no memory). */
char *mst_cbor_text(const uint8_t *cbor, size_t n, ms_cbor_form form);

/* ---- atomic outputs ---- */

/* An output file written under a temporary name beside its final path and
 * renamed into place by mst_out_commit(). "-" writes to standard output. */
typedef struct mst_out {
    char *final_path; /* NULL for standard output and devices */
    char *tmp_path;
    int fd;
    bool device; /* a character device or FIFO, written in place */
} mst_out;
/* A regular file is written under a temporary name and renamed by
 * mst_out_commit(); it fails (printing why) if PATH exists and !force.
 * A character device or FIFO (/dev/null, a tape, a named pipe) is written
 * in place, force or not: there is no file to lose and no rename to make;
 * a terminal is refused. */
int mst_out_open(mst_out *o, const char *path, bool force);
int mst_out_commit(mst_out *o);  /* fsync + rename; 0 or -1 */
void mst_out_abort(mst_out *o);  /* removes the temporary file */

/* Creates DIR.tmp-XXXXXX beside DIR for building an output directory;
 * mst_dir_commit() renames it to DIR (replacing an old DIR only when force
 * was given to mst_dir_begin). */
typedef struct mst_dir {
    char *final_path;
    char *tmp_path;
    bool force;
} mst_dir;
int mst_dir_begin(mst_dir *d, const char *path, bool force);
int mst_dir_commit(mst_dir *d);
void mst_dir_abort(mst_dir *d); /* removes the temporary tree */

/* ---- progress on standard error (docs/OUTPUT.md, "Progress") ----
 * auto: a line redrawn in place when standard error is a terminal (-q:
 * none); json: JSON Lines whatever standard error is, -q or not
 * ({"kind":"progress",...}, at most 4 a second, and a last one with
 * "done":true); none: nothing. */
typedef enum { MST_PROGRESS_AUTO, MST_PROGRESS_JSON, MST_PROGRESS_NONE } mst_progress_mode;
/* --progress=MODE: "auto", "json" or "none" for every progress of the
 * process; for another word, -1 after printing the usage error (the
 * message and "Try 'PROG --help'."), nothing set. */
int mst_progress_option(const char *mode);
/* For the tools that read their arguments one by one: when ARGV[*I] is
 * -q, --quiet, --progress MODE or --progress=MODE, takes it (and MODE),
 * sets *QUIET or the mode, and returns 1; 0 for another argument; -1
 * after printing why MODE is wrong or missing (a usage error). */
int mst_progress_arg(int argc, char **argv, int *i, bool *quiet);
/* Prints the --help lines of -q and --progress, the options @width
 * columns wide; @shorts: the tool's options column shows short forms, so
 * that a long-only option is indented. */
void mst_print_progress_help(FILE *f, int width, bool shorts);

typedef struct mst_progress {
    bool enabled;   /* the terminal line */
    bool json;      /* JSON Lines */
    bool finished;  /* the last JSON line was written */
    uint64_t total; /* input bytes if known, else 0 */
    /* Bytes of the inputs read before the current stream (diff's A,
     * compat's earlier streams): added to what updates count. */
    uint64_t base;
    uint64_t bytes; /* the last count, base included */
    double start, last, last_json;
} mst_progress;
void mst_progress_init(mst_progress *p, bool quiet, uint64_t total);
/* Redraws the line at most 10 times a second, and writes a JSON line at
 * most 4 times; @pages: 0 when not counted. */
void mst_progress_update(mst_progress *p, uint64_t bytes, uint64_t pages);
/* Clears the line; writes the last JSON line (once). */
void mst_progress_done(mst_progress *p);
/* The bytes of regular files PATHS[0..N) together; 0 when one is not a
 * regular file (standard input, a pipe) or cannot be looked at. */
uint64_t mst_paths_size(const char *const *paths, size_t n);

/* ---- final page states and device instances, for dump and validate ---- */

/* Page states as dump and validate print them: index 0 is "missing" (never
 * sent), 1.. are the wire states (ms_page_state, DATA to DUPLICATE);
 * MST_STATE_OTHER lumps together states a later format may add. */
enum { MST_STATE_MISSING = 0, MST_STATE_OTHER = MS_PAGE_DUPLICATE + 1, MST_STATES };

/* The page map's memory budget in dump and validate (ms_pagemap_options):
 * a region whose map would take the total past it is given up (its final
 * states untracked) rather than the budget exceeded. */
#define MST_PAGEMAP_BUDGET (256u << 20)
/* A page map for dump and validate, with that budget; NULL: no memory. */
ms_pagemap *mst_pagemap_new(void);

/* Lumps MS_PAGEMAP_STATES counts into MST_STATES (later states as OTHER). */
void mst_lump_states(const uint64_t *in, uint64_t out[MST_STATES]);
/* Final page counts per state of region @s; FIRST/LAST_MISSING get the
 * first and last page never sent (UINT64_MAX when none). false if its
 * states were given up. */
bool mst_pagemap_final(ms_pagemap *m, const ms_pagemap_region *s, uint64_t counts[MST_STATES],
                       uint64_t *first_missing, uint64_t *last_missing);

/* Device instances (path, instance) in order of first appearance. */
typedef struct mst_device_stats {
    char *path;
    uint32_t instance;
    char *schema;                       /* from the last record */
    uint32_t version;                   /* from the last record */
    uint64_t records, bytes;            /* DEVICE records for the instance, headers included */
    uint64_t first_index, first_offset; /* its first record */
    uint64_t last_index, last_offset;   /* its last record (the one that counts) */
} mst_device_stats;
typedef struct mst_devset mst_devset;
#define MST_DEVSET_BUDGET (64u << 20)
/* A hash of a device instance (path, instance), for the tools' tables of
 * instances (FNV-1a). */
size_t mst_device_hash(const char *path, uint32_t instance);
mst_devset *mst_devset_new(size_t budget);
void mst_devset_free(mst_devset *s);
/* Counts a decoded DEVICE record; returns its instance's entry (records == 1
 * on first sight), or NULL when the budget is spent (mst_devset_full) or
 * memory ran out. */
mst_device_stats *mst_devset_add(mst_devset *s, const ms_record *rec);
bool mst_devset_full(const mst_devset *s);
/* Forgets the instances after the first @count (first seen last). */
void mst_devset_forget(mst_devset *s, size_t count);
size_t mst_devset_count(const mst_devset *s);
const mst_device_stats *mst_devset_get(const mst_devset *s, size_t i);

/* Percentage of PART in WHOLE (0 when WHOLE is 0). */
double mst_percent(uint64_t part, uint64_t whole);

/* Parses the value of a --max-output option: a number of bytes with an
 * optional binary suffix K, M, G or T (1G = 2^30), or "none" (UINT64_MAX:
 * no limit but the free space). 0, or -1 after printing why, naming
 * OPTION. */
int mst_parse_output_limit(const char *option, const char *s, uint64_t *out);

#endif /* MST_COMMON_H */
