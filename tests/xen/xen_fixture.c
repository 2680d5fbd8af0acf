/*
 * The Xen tests' shared pieces (xen_fixture.h). States are read with the
 * public reader and a small CBOR walk of their own, not with the module's
 * code, so that a test compares the module with an independent reading.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "xen_fixture.h"

#ifndef MS_XEN_DATA
#error "MS_XEN_DATA: the directory mkxen.py writes"
#endif
#ifndef MS_XEN_SCRIPTS
#error "MS_XEN_SCRIPTS: tests/xen"
#endif

/* ------------------------------------------------------------- files */

uint8_t *tx_load(const char *file, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", MS_XEN_DATA, file);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s: %s\n", path, strerror(errno));
        fail();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

const tx_fixture *tx_fixtures(size_t *count)
{
    static tx_fixture list[32];
    static size_t n;
    if (!n) {
        size_t len;
        char *text = (char *)tx_load("fixtures.txt", &len);
        for (char *line = strtok(text, "\n"); line && n < 32; line = strtok(NULL, "\n")) {
            tx_fixture *f = &list[n];
            if (sscanf(line, "%63s %7s %7s", f->name, f->format, f->verdict) == 3)
                n++;
        }
        free(text);
    }
    *count = n;
    return list;
}

/* ------------------------------------------------------------- memory I/O */

ssize_t tx_read(void *ctx, void *buf, size_t len)
{
    tx_in *in = ctx;
    size_t n = in->len - in->pos;
    if (n > len)
        n = len;
    if (in->chunk && n > in->chunk)
        n = in->chunk;
    memcpy(buf, in->p + in->pos, n);
    in->pos += n;
    return (ssize_t)n;
}

int tx_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    tx_out *o = ctx;
    for (int i = 0; i < iovcnt; i++) {
        size_t n = iov[i].iov_len;
        if (o->fail_after && o->len + n > o->fail_after)
            return -EPIPE;
        if (n > o->cap - o->len) {
            size_t cap = o->cap ? o->cap : 1 << 16;
            while (cap - o->len < n)
                cap *= 2;
            o->p = realloc(o->p, cap);
            assert_non_null(o->p);
            o->cap = cap;
        }
        memcpy(o->p + o->len, iov[i].iov_base, n);
        o->len += n;
    }
    return 0;
}

void tx_out_free(tx_out *o)
{
    free(o->p);
    memset(o, 0, sizeof *o);
}

int tx_import(const uint8_t *xen, size_t len, const ms_xen_import_options *o, tx_out *out,
              char *msg, size_t msg_size)
{
    ms_xen_import *imp = ms_xen_import_new(o);
    assert_non_null(imp);
    tx_in in = {.p = xen, .len = len};
    int rc = ms_xen_import_run(imp, tx_read, &in, tx_write, out);
    if (msg && msg_size)
        snprintf(msg, msg_size, "%s", ms_xen_import_errmsg(imp));
    /* A failure always says why, a success never complains. */
    assert_int_equal(rc != 0, ms_xen_import_errmsg(imp)[0] != 0);
    ms_xen_import_free(imp);
    return rc;
}

int tx_export(const uint8_t *lm, size_t len, const ms_xen_export_options *o, tx_out *out, char *msg,
              size_t msg_size)
{
    ms_xen_export *exp = ms_xen_export_new(o);
    assert_non_null(exp);
    tx_in in = {.p = lm, .len = len};
    int rc = ms_xen_export_run(exp, tx_read, &in, tx_write, out);
    if (msg && msg_size)
        snprintf(msg, msg_size, "%s", ms_xen_export_errmsg(exp));
    assert_int_equal(rc != 0, ms_xen_export_errmsg(exp)[0] != 0);
    ms_xen_export_free(exp);
    return rc;
}

/* ------------------------------------------------------------- states */

uint64_t tx_fnv(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static size_t slot_of(const tx_state *st, uint64_t pfn)
{
    size_t i = (size_t)((pfn * 0x9e3779b97f4a7c15ull) >> 20) & (st->cap - 1);
    while (st->pages[i].state && st->pages[i].pfn != pfn)
        i = (i + 1) & (st->cap - 1);
    return i;
}

static void set_page(tx_state *st, uint64_t pfn, uint8_t state, uint64_t fnv)
{
    if (2 * (st->npages + 1) > st->cap) {
        tx_state old = *st;
        st->cap = st->cap ? st->cap * 2 : 1024;
        st->pages = calloc(st->cap, sizeof *st->pages);
        assert_non_null(st->pages);
        st->npages = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.pages[i].state) {
                st->pages[slot_of(st, old.pages[i].pfn)] = old.pages[i];
                st->npages++;
            }
        free(old.pages);
    }
    size_t i = slot_of(st, pfn);
    if (!st->pages[i].state)
        st->npages++;
    st->pages[i] = (tx_page){.pfn = pfn, .state = state, .fnv = fnv};
}

const tx_page *tx_state_page(const tx_state *st, uint64_t pfn)
{
    if (!st->cap)
        return NULL;
    const tx_page *p = &st->pages[slot_of(st, pfn)];
    return p->state ? p : NULL;
}

static void set_dev(tx_state *st, const char *path, uint32_t instance, const char *schema,
                    size_t len, uint64_t fnv)
{
    tx_dev *d = (tx_dev *)tx_state_dev(st, path, instance);
    if (!d) {
        if (st->ndevs == st->dev_cap) {
            st->dev_cap = st->dev_cap ? st->dev_cap * 2 : 16;
            st->devs = realloc(st->devs, st->dev_cap * sizeof *st->devs);
            assert_non_null(st->devs);
        }
        d = &st->devs[st->ndevs++];
        memset(d, 0, sizeof *d);
        snprintf(d->path, sizeof d->path, "%s", path);
        d->instance = instance;
    }
    snprintf(d->schema, sizeof d->schema, "%s", schema);
    d->len = len;
    d->fnv = fnv;
}

const tx_dev *tx_state_dev(const tx_state *st, const char *path, uint32_t instance)
{
    for (size_t i = 0; i < st->ndevs; i++)
        if (st->devs[i].instance == instance && strcmp(st->devs[i].path, path) == 0)
            return &st->devs[i];
    return NULL;
}

void tx_state_free(tx_state *st)
{
    free(st->pages);
    free(st->devs);
    memset(st, 0, sizeof *st);
}

/* A CBOR head (RFC 8949): major type and argument; false past @end. */
static bool cbor_head(const uint8_t **p, const uint8_t *end, unsigned *major, uint64_t *arg)
{
    if (*p >= end)
        return false;
    uint8_t b = *(*p)++;
    *major = b >> 5;
    unsigned ai = b & 31;
    if (ai < 24) {
        *arg = ai;
        return true;
    }
    if (ai > 27)
        return false;
    size_t n = (size_t)1 << (ai - 24);
    if ((size_t)(end - *p) < n)
        return false;
    *arg = 0;
    for (size_t i = 0; i < n; i++)
        *arg = *arg << 8 | (*p)[i];
    *p += n;
    return true;
}

static bool cbor_skip(const uint8_t **p, const uint8_t *end)
{
    unsigned major;
    uint64_t arg;
    if (!cbor_head(p, end, &major, &arg))
        return false;
    switch (major) {
    case 2:
    case 3:
        if ((uint64_t)(end - *p) < arg)
            return false;
        *p += arg;
        return true;
    case 4:
        for (uint64_t i = 0; i < arg; i++)
            if (!cbor_skip(p, end))
                return false;
        return true;
    case 5:
        for (uint64_t i = 0; i < 2 * arg; i++)
            if (!cbor_skip(p, end))
                return false;
        return true;
    default:
        return true;
    }
}

/* The "raw" byte string of a state map. */
static bool state_raw(const uint8_t *p, size_t n, const uint8_t **raw, size_t *len)
{
    const uint8_t *end = p + n;
    unsigned major;
    uint64_t pairs;
    if (!cbor_head(&p, end, &major, &pairs) || major != 5)
        return false;
    for (uint64_t i = 0; i < pairs; i++) {
        uint64_t kl, vl;
        if (!cbor_head(&p, end, &major, &kl) || major != 3 || (uint64_t)(end - p) < kl)
            return false;
        bool is_raw = kl == 3 && memcmp(p, "raw", 3) == 0;
        p += kl;
        if (is_raw) {
            if (!cbor_head(&p, end, &major, &vl) || major != 2 || (uint64_t)(end - p) < vl)
                return false;
            *raw = p;
            *len = (size_t)vl;
            return true;
        }
        if (!cbor_skip(&p, end))
            return false;
    }
    return false;
}

void tx_state_read(const uint8_t *lm, size_t len, tx_state *st)
{
    memset(st, 0, sizeof *st);
    ms_reader *r = ms_reader_new_memory(NULL, lm, len);
    const ms_header *h;
    assert_int_equal(ms_reader_header(r, &h), 0);
    st->header = *h;
    const ms_record *rec;
    int rc;
    uint8_t fill[4096];
    while ((rc = ms_reader_next(r, &rec)) > 0) {
        switch (rec->type) {
        case MS_REC_INFO:
            snprintf(st->machine, sizeof st->machine, "%s",
                     rec->info.machine ? rec->info.machine : "");
            break;
        case MS_REC_REGIONS:
            for (size_t i = 0; i < rec->region_count; i++) {
                assert_true(st->nregions < 16);
                tx_region *g = &st->regions[st->nregions++];
                snprintf(g->name, sizeof g->name, "%s", rec->regions[i].name);
                g->gpa = rec->regions[i].gpa;
                g->size = rec->regions[i].size;
            }
            break;
        case MS_REC_ROUND:
            st->rounds++;
            break;
        case MS_REC_PAGES: {
            const ms_pages *pg = &rec->pages;
            const uint8_t *data = pg->data;
            uint64_t sub = pg->region->page_size / 4096;
            for (size_t e = 0; e < pg->extent_count; e++) {
                const ms_extent *x = &pg->extents[e];
                for (uint64_t k = 0; k < (uint64_t)x->count * sub; k++) {
                    uint64_t pfn = pg->region->gpa / 4096 + x->first * sub + k;
                    if (x->state == MS_PAGE_DATA) {
                        /* A page of a larger region page may be all zero. */
                        bool zero = true;
                        for (size_t b = 0; b < 4096 && zero; b++)
                            zero = data[b] == 0;
                        set_page(st, pfn, zero ? TX_ZERO : TX_DATA, zero ? 0 : tx_fnv(data, 4096));
                        data += 4096;
                    } else if (x->state == MS_PAGE_FILL) {
                        for (int b = 0; b < 4096; b++)
                            fill[b] = (uint8_t)(x->arg >> (8 * (b % 8)));
                        set_page(st, pfn, TX_DATA, tx_fnv(fill, 4096));
                    } else {
                        set_page(st, pfn, x->state == MS_PAGE_ZERO ? TX_ZERO : TX_DISCARDED, 0);
                    }
                }
            }
            break;
        }
        case MS_REC_DEVICE: {
            const uint8_t *raw = NULL;
            size_t rl = 0;
            if (!state_raw(rec->device.state, rec->device.state_size, &raw, &rl))
                raw = NULL;
            set_dev(st, rec->device.path, rec->device.instance, rec->device.schema, rl,
                    raw ? tx_fnv(raw, rl) : 0);
            break;
        }
        default:
            break;
        }
    }
    if (rc < 0)
        print_error("reading the stream back: %s\n", ms_reader_errmsg(r));
    assert_int_equal(rc, 0);
    ms_reader_free(r);
}

void tx_state_expect(const char *text, tx_state *st)
{
    memset(st, 0, sizeof *st);
    char *copy = strdup(text), *save = NULL;
    assert_non_null(copy);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char a[64], b[64];
        unsigned long long x, y, z;
        unsigned inst;
        size_t n;
        if (sscanf(line, "region %63s %llu %llu", a, &x, &y) == 3) {
            tx_region *g = &st->regions[st->nregions++];
            snprintf(g->name, sizeof g->name, "%s", a);
            g->gpa = x;
            g->size = y;
        } else if (sscanf(line, "rounds %llu", &x) == 1) {
            st->rounds = x;
        } else if (sscanf(line, "page %llu data %llx", &x, &y) == 2) {
            set_page(st, x, TX_DATA, y);
        } else if (sscanf(line, "page %llu %63s", &x, a) == 2) {
            set_page(st, x, strcmp(a, "zero") == 0 ? TX_ZERO : TX_DISCARDED, 0);
        } else if (sscanf(line, "device %63s %u %63s %zu %llx", a, &inst, b, &n, &z) == 5) {
            set_dev(st, a, inst, b, n, z);
        } else {
            print_error("unreadable expectation: %s\n", line);
            fail();
        }
        (void)y;
    }
    free(copy);
}

const char *tx_state_diff(const tx_state *a, const tx_state *b, bool regions, char *buf,
                          size_t size)
{
    static const char *names[] = {"-", "data", "zero", "discarded"};
    if (regions) {
        if (a->nregions != b->nregions) {
            snprintf(buf, size, "%zu regions, %zu expected", a->nregions, b->nregions);
            return buf;
        }
        for (size_t i = 0; i < a->nregions; i++)
            if (strcmp(a->regions[i].name, b->regions[i].name) ||
                a->regions[i].gpa != b->regions[i].gpa ||
                a->regions[i].size != b->regions[i].size) {
                snprintf(buf, size, "region %zu: %s 0x%llx+0x%llx, expected %s 0x%llx+0x%llx", i,
                         a->regions[i].name, (unsigned long long)a->regions[i].gpa,
                         (unsigned long long)a->regions[i].size, b->regions[i].name,
                         (unsigned long long)b->regions[i].gpa,
                         (unsigned long long)b->regions[i].size);
                return buf;
            }
        if (a->rounds != b->rounds) {
            snprintf(buf, size, "%llu rounds, %llu expected", (unsigned long long)a->rounds,
                     (unsigned long long)b->rounds);
            return buf;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const tx_state *x = pass ? b : a, *y = pass ? a : b;
        for (size_t i = 0; i < x->cap; i++) {
            const tx_page *p = &x->pages[i];
            if (!p->state)
                continue;
            const tx_page *q = tx_state_page(y, p->pfn);
            if (!q || q->state != p->state || q->fnv != p->fnv) {
                const tx_page *pa = pass ? q : p, *pb = pass ? p : q;
                snprintf(buf, size, "pfn 0x%llx: %s %016llx, expected %s %016llx",
                         (unsigned long long)p->pfn, pa ? names[pa->state] : "missing",
                         pa ? (unsigned long long)pa->fnv : 0ull, pb ? names[pb->state] : "missing",
                         pb ? (unsigned long long)pb->fnv : 0ull);
                return buf;
            }
        }
        for (size_t i = 0; i < x->ndevs; i++) {
            const tx_dev *d = &x->devs[i], *e = tx_state_dev(y, d->path, d->instance);
            if (!e || e->len != d->len || e->fnv != d->fnv || strcmp(e->schema, d->schema)) {
                const tx_dev *da = pass ? e : d, *db = pass ? d : e;
                snprintf(buf, size,
                         "device %s %u: %s %zu bytes %016llx, expected %s %zu bytes "
                         "%016llx",
                         d->path, d->instance, da ? da->schema : "missing", da ? da->len : 0,
                         da ? (unsigned long long)da->fnv : 0ull, db ? db->schema : "missing",
                         db ? db->len : 0, db ? (unsigned long long)db->fnv : 0ull);
                return buf;
            }
        }
    }
    return NULL;
}

char *tx_device_json(const uint8_t *lm, size_t len, const char *path, uint32_t instance)
{
    ms_reader *r = ms_reader_new_memory(NULL, lm, len);
    const ms_record *rec;
    char *out = NULL;
    while (ms_reader_next(r, &rec) > 0) {
        if (rec->type != MS_REC_DEVICE || rec->device.instance != instance ||
            strcmp(rec->device.path, path))
            continue;
        ssize_t n =
            ms_cbor_format(rec->device.state, rec->device.state_size, MS_CBOR_JSON, 0, NULL, 0);
        assert_true(n >= 0);
        free(out);
        out = malloc((size_t)n + 1);
        assert_non_null(out);
        ms_cbor_format(rec->device.state, rec->device.state_size, MS_CBOR_JSON, 0, out,
                       (size_t)n + 1);
        /* Compact: no blank after ':' and ',' (none of the texts holds one). */
        char *w = out;
        for (const char *q = out; *q; q++)
            if (!(*q == ' ' && q > out && (q[-1] == ':' || q[-1] == ',')))
                *w++ = *q;
        *w = 0;
    }
    ms_reader_free(r);
    return out;
}

/* ------------------------------------------------------------- the checker */

int tx_verify(const uint8_t *p, size_t len, const char *fmt, bool fixed, char *out, size_t out_size)
{
    const char *script = getenv("MS_XEN_VERIFY");
    if (!script)
        script = "/usr/lib/xen-4.17/bin/verify-stream-v2";
    const char *pydir = getenv("MS_XEN_PYTHON");
    if (!pydir)
        pydir = "/usr/lib/xen-4.17/lib/python";
    if (access(script, X_OK) != 0)
        return 77;
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/xen-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    close(fd);
    char cmd[2048];
    if (fixed)
        snprintf(cmd, sizeof cmd, "python3 '%s/verify.py' %s '%s' 2>&1", MS_XEN_SCRIPTS, fmt, path);
    else
        snprintf(cmd, sizeof cmd, "PYTHONPATH='%s' '%s' -f %s -i '%s' 2>&1", pydir, script, fmt,
                 path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = 0;
    if (out_size) {
        n = fread(out, 1, out_size - 1, f);
        out[n] = 0;
    }
    char sink[256];
    while (fread(sink, 1, sizeof sink, f) > 0)
        ;
    int status = pclose(f);
    unlink(path);
    if (!WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}
