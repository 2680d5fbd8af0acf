/*
 * One conversion between formats, as migstream-import and migstream-export
 * run it for every format: the inputs opened (as descriptors, or as one
 * stream of any format through ms_open()), the output opened (atomic file,
 * device or FIFO, no overwrite without --force, no terminal), interrupts
 * caught, progress drawn over the inputs, the library's conversion run,
 * then the output committed or removed. The tool supplies the library
 * calls as callbacks; nothing here knows a format.
 */
#ifndef MST_CONVERT_H
#define MST_CONVERT_H

#include <signal.h>

#include "common.h"

typedef struct mst_convert mst_convert;

/* One input being read: mst_convert_read() and mst_convert_pread() take it
 * as their context. */
typedef struct mst_convert_input {
    int fd;
    mst_convert *cv; /* whose progress counts its bytes */
} mst_convert_input;

/* What a tool does for one format. */
typedef struct mst_convert_ops {
    const char *what; /* in "refusing to write WHAT to a terminal" */
    /* Makes the library's converter into CV->conv, once the inputs and
     * the output are open (CV->out_fd, CV->in_size and the inputs set),
     * and runs it from mst_convert_read() on &CV->in (with any_format:
     * from the reader CV->stream.r) to mst_convert_write() on CV. Returns
     * 0, or the failed status with CV->msg its message; CV->made false
     * when the converter could not be made (the message printed as it is,
     * exit status 2); CV->named when the message names its input itself,
     * else it is printed after the main input's name; CV->output_full when
     * the output would have passed its limit (exit status 2, whatever the
     * status: the input is not at fault, as in migstream-replay). */
    int (*run)(mst_convert *cv);
    /* After the run, whatever came of it: the summary to SUMMARY (NULL
     * when the output was not committed; standard error when it is
     * standard output), then CV->conv freed (it may be NULL). */
    void (*finish)(mst_convert *cv, FILE *summary);
} mst_convert_ops;

struct mst_convert {
    /* ---- set by the tool ---- */
    const mst_convert_ops *ops;
    const void *args;     /* the tool's, for the ops */
    const char *in_path;  /* the main input, "-" for standard input */
    const char *out_path; /* "-" for standard output */
    bool force, quiet;
    /* The main input read through ms_open() into STREAM rather than as a
     * descriptor into IN: a stream of any format this build reads,
     * converted as it is read (migstream-export), with its extra inputs
     * (EXTRA_PATHS: QEMU's multifd channels, the other parts of a
     * migration in parts). Its progress line, over every input, is
     * started before it is opened, as ms_open() reads to recognize it. */
    bool any_format;
    /* Further inputs (QEMU's multifd channels): without any_format, opened
     * in order before the main one, into EXTRA[0..NEXTRA) that the tool
     * provides; with any_format, NEXTRA paths opened with the main input
     * by mst_stream_open(), EXTRA unused. */
    char *const *extra_paths;
    mst_convert_input *extra;
    size_t nextra;
    /* The exit code for a failed run's library status. */
    int (*exit_for)(int status);

    /* ---- set by mst_convert_run() for the ops ---- */
    mst_convert_input in; /* the main input; fd -1 with any_format */
    mst_stream stream;    /* the main input with any_format */
    uint64_t in_size;     /* the main input's, when a regular file; else 0 */
    int out_fd;
    uint64_t bytes; /* read from all inputs, for the progress line */
    mst_progress progress;

    /* ---- set by mst_convert_output_limit() ---- */
    uint64_t out_limit;  /* what it returned */
    bool out_limit_free; /* the limit is the free space: a failure past it
                          * gets a line that says so */

    /* ---- set by ops->run ---- */
    void *conv;
    const char *msg;
    bool made, named, output_full;
};

/* Runs CV: returns MST_EXIT_OK once the output is committed, else an exit
 * code after printing why (nothing for an interrupt: MST_EXIT_ERROR, the
 * output removed, and mst_convert_exit_signal() to die of it). */
int mst_convert_run(mst_convert *cv);

/* For ops->run: the most bytes the output may take, MAX_OUTPUT (a tool's
 * --max-output; 0: MS_MAX_OUTPUT_DEFAULT), and at most the free space of
 * its file system when the output is a file (a FIFO, a device written in
 * place, standard output: the limit alone). */
uint64_t mst_convert_output_limit(mst_convert *cv, uint64_t max_output);

/* ms_read_fn and ms_pread_fn on a mst_convert_input: EINTR retried, an
 * interrupt stops the conversion, the bytes counted for progress. */
ssize_t mst_convert_read(void *ctx, void *buf, size_t len);
ssize_t mst_convert_pread(void *ctx, void *buf, size_t len, uint64_t offset);
/* ms_write_fn on a mst_convert: to its output; an interrupt stops it. */
int mst_convert_write(void *ctx, const struct iovec *iov, int iovcnt);

/* For a format whose module this build of libmigstream leaves out
 * (-D<NAME>=false, NAME "qemu" or "xen"): says so, returns MST_EXIT_ERROR. */
int mst_convert_no_module(const char *name);

/* When a signal interrupted the conversion, dies of it as if uncaught
 * (once the tool has cleaned up); else returns. */
void mst_convert_exit_signal(void);

/* ---- --json: the summary as JSON Lines (docs/OUTPUT.md) ----
 * mst_convert_json_begin() writes the output head line, then opens the
 * stats object: {"kind":"stats","format":FORMAT; the tool adds members
 * (each starting with a comma) and closes it with "}\n". */
void mst_convert_json_begin(FILE *f, const char *format);
/* ,"NAME":"V" for each counter of the library's stats in C[0..N), as a
 * decimal string (OUTPUT.md, "u64 values": nothing bounds it by
 * construction); MST_JSON_COUNTERS(F, {"name", v}, ...) passes a list. */
typedef struct mst_convert_counter {
    const char *name;
    uint64_t v;
} mst_convert_counter;
void mst_convert_json_counters(FILE *f, const mst_convert_counter *c, size_t n);
#define MST_JSON_COUNTERS(f, ...)                                                                  \
    mst_convert_json_counters(f, (const mst_convert_counter[]){__VA_ARGS__},                       \
                              sizeof((const mst_convert_counter[]){__VA_ARGS__}) /                 \
                                  sizeof(mst_convert_counter))
/* ,"NAME":"S" (S escaped), or ,"NAME":null when S is "". */
void mst_convert_json_text(FILE *f, const char *name, const char *s);
/* ,"page_types":{"NOTAB":"N",...}: Xen's pfn entries by page type
 * (PAGES[MS_XEN_PAGE_TYPES], ms_xen_*_stats.pages), the types counted. */
void mst_convert_json_xen_page_types(FILE *f, const uint64_t *pages);

#endif /* MST_CONVERT_H */
