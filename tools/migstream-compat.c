/*
 * migstream-compat: reports every change between an older and a newer
 * release that breaks migration between them, from their streams or their
 * device-state schemas. The rules live in the library (ms_schema_compare,
 * libmigstream/schema/schema_compat.c); this file reads the inputs and prints. The
 * output formats are documented in docs/man/migstream-compat.1: keep them
 * stable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

typedef enum { IN_STREAMS, IN_SCHEMAS } input_kind;

/* One side of the comparison. */
typedef struct side {
    const char *label; /* "old" / "new" */
    const char *path;
    input_kind kind;
    size_t streams; /* streams read */
    ms_schema_set *set;
    /* The formats of the streams read (ms_reader_format(): static), listed
     * when one is another format than libmigstream's. */
    const char *formats[8];
    size_t nformats;
    bool foreign;
    int status; /* why it failed to load: an MS_E* status (mst_exit_for()) */
} side;

typedef struct out {
    bool json;
    uint64_t errors, warnings;
} out;

/* Whether a file is a stream of a format this build reads (its header
 * reads): 1 yes; 0 no, after a note saying why when @note (a file of a
 * directory, skipped); -1 when it cannot be read (after printing why). */
static int is_stream(const char *path, bool note)
{
    const char *paths[] = {path};
    const mst_stream_hooks quiet = {.quiet = true};
    mst_stream st;
    int k = -1;
    if (mst_stream_open(&st, paths, 1, &quiet) == 0) {
        int rc = ms_reader_header(st.r, NULL);
        if (rc == 0) {
            k = 1;
        } else if (rc == MS_EMAGIC || (rc == MS_ETRUNCATED && ms_reader_error_record(st.r) < 0)) {
            /* Nothing this build reads, or nothing at all. */
            k = 0;
            if (note && rc == MS_EMAGIC)
                fprintf(stderr, "%s: %s: not a libmigstream stream, skipped\n", mst_prog, path);
            else if (note)
                fprintf(stderr, "%s: %s: %s, skipped\n", mst_prog, path, ms_reader_errmsg(st.r));
        } else {
            mst_error("%s: %s", path, ms_reader_errmsg(st.r));
        }
    } else if (st.status == MS_EINVAL && note) {
        /* An input that is no stream by itself (a multifd channel). */
        fprintf(stderr, "%s: %s, skipped\n", mst_prog, st.why);
        k = 0;
    } else {
        mst_error("%s", st.why);
    }
    mst_stream_close(&st);
    return k;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Keeps the format of a stream read. */
static void note_format(side *sd, const char *format)
{
    if (!format)
        return;
    if (strcmp(format, "migstream") != 0)
        sd->foreign = true;
    for (size_t i = 0; i < sd->nformats; i++)
        if (strcmp(sd->formats[i], format) == 0)
            return;
    if (sd->nformats < sizeof sd->formats / sizeof sd->formats[0])
        sd->formats[sd->nformats++] = format;
}

/* The streams read, one after the other: their bytes together. */
static mst_progress progress;

/* Reads one stream's preamble and DEVICE records into the side's set; 0 or
 * -1 after printing why. A stream of another format teaches its devices
 * only: its header is not this format's preamble. */
static int learn_stream(side *sd, const char *path)
{
    const char *paths[] = {path};
    const mst_stream_hooks hooks = {.progress = &progress};
    mst_stream st;
    if (mst_stream_open(&st, paths, 1, &hooks)) {
        mst_stream_close(&st);
        return -1;
    }
    ms_reader *r = st.r;
    const ms_header *h;
    const ms_record *rec;
    bool set_failed = false;
    int rc = ms_reader_header(r, &h);
    note_format(sd, st.format);
    if (rc == 0 && !st.foreign && (rc = ms_schema_set_learn_header(sd->set, h)) < 0)
        set_failed = true;
    while (rc == 0 && (rc = ms_reader_next(r, &rec)) > 0) {
        rc = 0;
        if (rec->type == MS_REC_DEVICE && (rc = ms_schema_set_learn_device(sd->set, &rec->device)))
            set_failed = true;
    }
    if (rc < 0) {
        mst_error("%s: %s", path, set_failed ? ms_schema_set_errmsg(sd->set) : ms_reader_errmsg(r));
        sd->status = rc;
    }
    progress.base += st.bytes;
    mst_stream_close(&st);
    if (rc < 0)
        return -1;
    sd->streams++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory: schema files (*.json, *.cbor) or streams, not both. Files
 * that are neither are skipped with a note, hidden files silently. */
static int load_dir(side *sd, DIR *dir)
{
    char **names = NULL;
    size_t n = 0, schemas = 0;
    int status = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char **p = realloc(names, (n + 1) * sizeof *p);
        if (!p || asprintf(&p[n], "%s/%s", sd->path, e->d_name) < 0) {
            names = p;
            mst_error("out of memory");
            status = -1;
            goto done;
        }
        names = p;
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, by_name);
    bool *stream = calloc(n ? n : 1, sizeof *stream);
    if (!stream) {
        mst_error("out of memory");
        status = -1;
        goto done;
    }
    size_t nstreams = 0;
    for (size_t i = 0; i < n && status == 0; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (ends_with(names[i], ".json") || ends_with(names[i], ".cbor")) {
            schemas++;
            continue;
        }
        int k = is_stream(names[i], true);
        if (k < 0)
            status = -1;
        else if (k)
            stream[i] = true, nstreams++;
    }
    if (status == 0 && schemas && nstreams) {
        mst_error("%s: holds both streams and schema files (*.json, *.cbor): give one kind",
                  sd->path);
        status = -1;
    } else if (status == 0 && !schemas && !nstreams) {
        mst_error("%s: no libmigstream streams or schema files (*.json, *.cbor)", sd->path);
        status = -1;
    } else if (status == 0 && schemas) {
        sd->kind = IN_SCHEMAS;
        if ((sd->status = ms_schema_set_load_path(sd->set, sd->path)) < 0) {
            mst_error("%s", ms_schema_set_errmsg(sd->set));
            status = -1;
        }
    } else {
        sd->kind = IN_STREAMS;
        for (size_t i = 0; i < n && status == 0; i++)
            if (stream[i] && learn_stream(sd, names[i]) < 0)
                status = -1;
    }
    free(stream);
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return status;
}

/* Loads OLD or NEW, whatever it is; 0 or -1 after printing why. */
static int load_side(side *sd)
{
    if (!(sd->set = ms_schema_set_new(NULL))) {
        mst_error("out of memory");
        return -1;
    }
    DIR *dir = opendir(sd->path);
    if (dir) {
        int rc = load_dir(sd, dir);
        closedir(dir);
        return rc;
    }
    if (errno != ENOTDIR) {
        mst_error("cannot open %s: %s", sd->path, strerror(errno));
        return -1;
    }
    int k = is_stream(sd->path, false);
    if (k < 0)
        return -1;
    if (k) {
        sd->kind = IN_STREAMS;
        return learn_stream(sd, sd->path);
    }
    sd->kind = IN_SCHEMAS;
    if ((sd->status = ms_schema_set_load_path(sd->set, sd->path)) < 0) {
        mst_error("%s", ms_schema_set_errmsg(sd->set));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- output */

static void print_features(FILE *o, uint64_t bits, bool json)
{
    bool any = false;
    if (json)
        fputc('[', o);
    for (unsigned b = 0; b < 64; b++) {
        if (!(bits >> b & 1))
            continue;
        const char *name = ms_feature_name(b);
        char num[16];
        snprintf(num, sizeof num, "bit%u", b);
        if (json)
            fprintf(o, "%s\"%s\"", any ? "," : "", name ? name : num);
        else
            fprintf(o, "%s%s", any ? "," : "", name ? name : num);
        any = true;
    }
    if (json)
        fputc(']', o);
    else if (!any)
        fputs("none", o);
}

static void print_side(const out *ot, const side *sd)
{
    FILE *o = stdout;
    uint16_t major, minor;
    uint64_t features;
    bool fmt = ms_schema_set_format(sd->set, &major, &minor, &features);
    const char *kind = sd->kind == IN_STREAMS ? "streams" : "schemas";
    size_t count = ms_schema_set_count(sd->set);
    if (ot->json) {
        fprintf(o, "{\"kind\":\"input\",\"side\":\"%s\",\"holds\":\"%s\",\"path\":", sd->label,
                kind);
        mst_json_string(o, sd->path);
        if (sd->kind == IN_STREAMS)
            fprintf(o, ",\"streams\":%zu", sd->streams);
        else
            fputs(",\"streams\":null", o);
        if (sd->foreign) { /* the formats of the streams read */
            fputs(",\"stream_formats\":[", o);
            for (size_t i = 0; i < sd->nformats; i++) {
                fputs(i ? "," : "", o);
                mst_json_string(o, sd->formats[i]);
            }
            fputc(']', o);
        }
        fprintf(o, ",\"schemas\":%zu,\"format\":", count);
        if (fmt)
            fprintf(o, "\"%u.%u\",\"required_features\":", major, minor);
        else
            fputs("null,\"required_features\":", o);
        if (fmt)
            print_features(o, features, true);
        else
            fputs("null", o);
        fputs("}\n", o);
        return;
    }
    fprintf(o, "%s: %s ", sd->label, kind);
    mst_json_string(o, sd->path);
    if (sd->kind == IN_STREAMS) {
        fprintf(o, " (%zu stream%s", sd->streams, sd->streams == 1 ? "" : "s");
        for (size_t i = 0; sd->foreign && i < sd->nformats; i++)
            fprintf(o, "%s%s", i ? ", " : ": ", sd->formats[i]);
        fputc(')', o);
    }
    fprintf(o, ": %zu schema%s, ", count, count == 1 ? "" : "s");
    if (fmt) {
        fprintf(o, "format %u.%u, required features ", major, minor);
        print_features(o, features, false);
        fputc('\n', o);
    } else {
        fputs("format not declared\n", o);
    }
}

static void json_opt_string(FILE *o, const char *s)
{
    if (s)
        mst_json_string(o, s);
    else
        fputs("null", o);
}

static int on_issue(void *ctx, const ms_compat_issue *is)
{
    out *ot = ctx;
    FILE *o = stdout;
    const char *sev = is->warning ? "warning" : "error";
    const char *dir = is->direction == MS_COMPAT_OLD_TO_NEW ? "old-to-new" : "new-to-old";
    if (is->warning)
        ot->warnings++;
    else
        ot->errors++;
    if (!ot->json) {
        fprintf(o, "%s %s: %s: %s\n", sev, ms_compat_check_name(is->check), dir, is->message);
        return 0;
    }
    fprintf(o,
            "{\"kind\":\"issue\",\"severity\":\"%s\",\"check\":\"%s\",\"direction\":\"%s\","
            "\"schema\":",
            sev, ms_compat_check_name(is->check), dir);
    json_opt_string(o, is->schema);
    fputs(",\"device\":", o);
    json_opt_string(o, is->device_path);
    fputs(",\"field\":", o);
    json_opt_string(o, is->field);
    /* A version of a side without the schema is null, not 0. */
    bool removed = is->check == MS_COMPAT_DEVICE_REMOVED;
    bool old_has = is->schema && !(removed && is->direction == MS_COMPAT_NEW_TO_OLD);
    bool new_has = is->schema && !(removed && is->direction == MS_COMPAT_OLD_TO_NEW);
    fputs(",\"old_version\":", o);
    if (old_has)
        fprintf(o, "%" PRIu32, is->old_version);
    else
        fputs("null", o);
    fputs(",\"new_version\":", o);
    if (new_has)
        fprintf(o, "%" PRIu32, is->new_version);
    else
        fputs("null", o);
    fputs(",\"old_type\":", o);
    json_opt_string(o, is->old_type);
    fputs(",\"new_type\":", o);
    json_opt_string(o, is->new_type);
    fputs(",\"message\":", o);
    mst_json_string(o, is->message);
    fputs("}\n", o);
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f, "usage: migstream-compat [--json] [--both-ways] [--strict] [-q] [--progress=MODE]\n"
               "                        OLD NEW\n"
               "\n"
               "Reports every change from an older release (OLD) to a newer one (NEW) that\n"
               "breaks migration: devices or fields that disappeared, type changes, required\n"
               "fields added without a version bump, versions that went down, stream format\n"
               "features an older reader cannot read. OLD and NEW are each a stream, a\n"
               "directory of streams, or a schema set (a JSON or CBOR schema file, or a\n"
               "directory of them). Streams may be of any format this build reads\n"
               "(libmigstream's; QEMU's with the QEMU module, whose device sections are\n"
               "learned as devices of their vmsd names).\n"
               "\n"
               "  --json       JSON Lines: input objects, one object per issue, a result\n"
               "  --both-ways  also check that OLD reads the device states NEW writes\n"
               "  --strict     warnings make the result incompatible\n");
    mst_print_progress_help(f, 12, false);
    fprintf(f, "  --help       this text\n"
               "  --version    version of the tool and the library\n"
               "\n"
               "A bad stream or schema file is refused (exit status 1).\n"
               "\n");
    mst_print_exit_table(f);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", mst_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", mst_prog);
    return MST_EXIT_ERROR;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},           {"both-ways", no_argument, NULL, 'b'},
        {"strict", no_argument, NULL, 's'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},        {"quiet", no_argument, NULL, 'q'},
        {"progress", required_argument, NULL, 'P'}, {NULL, 0, NULL, 0},
    };
    out ot = {0};
    bool both = false, strict = false, quiet = false;
    mst_init(argv[0]);
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, "+q", longopts, NULL)) != -1;) {
        switch (opt) {
        case 'j':
            ot.json = true;
            break;
        case 'b':
            both = true;
            break;
        case 's':
            strict = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'P':
            if (mst_progress_option(optarg))
                return MST_EXIT_ERROR;
            break;
        case 'h':
            usage(stdout);
            return MST_EXIT_OK;
        case 'V':
            mst_print_version();
            return MST_EXIT_OK;
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return usage_error("%s", argc - optind < 2 ? "expected OLD and NEW"
                                                   : "expected only OLD and NEW");
    side old_side = {.label = "old", .path = argv[optind]};
    side new_side = {.label = "new", .path = argv[optind + 1]};
    int status = MST_EXIT_ERROR;
    if (ot.json)
        mst_json_output_head(stdout);
    /* The streams' sizes are not known until their directories are read. */
    mst_progress_init(&progress, quiet, 0);
    int loaded = load_side(&old_side) < 0 || load_side(&new_side) < 0 ? -1 : 0;
    mst_progress_done(&progress);
    if (loaded < 0) {
        /* A bad stream or schema file is refused; an unreadable one is an
         * I/O error. */
        int why = old_side.status ? old_side.status : new_side.status;
        if (why < 0)
            status = mst_exit_for(why);
    } else {
        print_side(&ot, &old_side);
        print_side(&ot, &new_side);
        int rc = ms_schema_compare(old_side.set, new_side.set, both ? MS_COMPAT_BOTH_WAYS : 0,
                                   on_issue, &ot);
        if (rc < 0) {
            mst_error("comparing: %s", ms_strerror(rc));
        } else {
            bool ok = ot.errors == 0 && !(strict && ot.warnings);
            if (ot.json)
                printf("{\"kind\":\"result\",\"compatible\":%s,\"both_ways\":%s,\"strict\":%s,"
                       "\"errors\":%" PRIu64 ",\"warnings\":%" PRIu64 "}\n",
                       ok ? "true" : "false", both ? "true" : "false", strict ? "true" : "false",
                       ot.errors, ot.warnings);
            else
                printf("result: %s, %" PRIu64 " error%s, %" PRIu64 " warning%s%s\n",
                       ok ? "compatible" : "incompatible", ot.errors, ot.errors == 1 ? "" : "s",
                       ot.warnings, ot.warnings == 1 ? "" : "s",
                       !ok && !ot.errors ? " (--strict)" : "");
            status = ok ? MST_EXIT_OK : MST_EXIT_FAIL;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        mst_error("cannot write standard output");
        status = MST_EXIT_ERROR;
    }
    ms_schema_set_free(old_side.set);
    ms_schema_set_free(new_side.set);
    return status;
}
