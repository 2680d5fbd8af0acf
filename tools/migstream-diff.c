/*
 * migstream-diff: compares two streams by the guest state they leave behind
 * (the "final state" of docs/FORMAT.md section 2), not by their bytes.
 * tools/diff_engine.c does the work; this file holds the command line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "diff_engine.h"

/* The engine's input: a descriptor, read as ms_reader_new_fd() would. */
static ssize_t read_fd(void *ctx, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(*(int *)ctx, buf, len);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* Loads one side; 0, or -1 after printing why. */
static int load(mst_diff *d, unsigned side, const char *path)
{
    char err[1024];
    int fd = mst_open_input(path);
    if (fd < 0)
        return -1;
    const char *name = strcmp(path, "-") == 0 ? "standard input" : path;
    int rc = mst_diff_load(d, side, read_fd, &fd, name, err, sizeof err);
    if (rc != MST_DIFF_SAME)
        mst_error("%s", err);
    if (fd != STDIN_FILENO)
        close(fd);
    return rc == MST_DIFF_SAME ? 0 : -1;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f, "usage: migstream-diff [--json] A B\n"
               "\n"
               "Compares two libmigstream streams by the guest state they describe:\n"
               "memory page by page, device state field by field, and stream metadata.\n"
               "A or B (not both) may be \"-\" for standard input.\n"
               "\n"
               "  --json     one JSON object per line (JSON Lines) instead of text\n"
               "  --help     print this help and exit\n"
               "  --version  print the version and exit\n"
               "\n"
               "DATA pages are kept in temporary files in $TMPDIR (default /tmp).\n"
               "Exit status: 0 same, 1 different, 2 usage or I/O error or unreadable stream.\n");
}

static void short_usage(void)
{
    fprintf(stderr, "usage: migstream-diff [--json] A B  (see --help)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    mst_init(argv[0]);
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return MST_EXIT_OK;
        case 'V':
            mst_print_version();
            return MST_EXIT_OK;
        default: /* getopt's own message would name the program by its path */
            mst_error("invalid option: %s", argv[optind - 1]);
            short_usage();
            return MST_EXIT_ERROR;
        }
    }
    if (argc - optind != 2) {
        mst_error("expected two streams, A and B");
        short_usage();
        return MST_EXIT_ERROR;
    }
    if (strcmp(argv[optind], "-") == 0 && strcmp(argv[optind + 1], "-") == 0) {
        mst_error("standard input can be only one of A and B");
        return MST_EXIT_ERROR;
    }
    mst_diff_options o = {.json = json};
    mst_diff *d = mst_diff_new(&o);
    if (!d) {
        mst_error("out of memory");
        return MST_EXIT_ERROR;
    }
    int status = MST_EXIT_ERROR;
    char err[1024];
    if (load(d, 0, argv[optind]) || load(d, 1, argv[optind + 1]))
        goto out;
    int rc = mst_diff_compare(d, stdout, NULL, err, sizeof err);
    if (rc == MST_DIFF_ERROR) {
        fflush(stdout); /* the differences found so far come first */
        mst_error("%s", err);
        goto out;
    }
    status = rc == MST_DIFF_SAME ? MST_EXIT_OK : MST_EXIT_FAIL;
out:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        mst_error("cannot write the output: %s", strerror(errno));
        status = MST_EXIT_ERROR;
    }
    mst_diff_free(d);
    return status;
}
