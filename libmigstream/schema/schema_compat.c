/*
 * Comparing an older release's schema set with a newer one's
 * (ms_schema_compare). The rules are those of docs/COMPAT.md, "What
 * migstream-compat reports": one release writes, the other reads, and every
 * state the writer can produce must pass the reader's validation
 * (schema_validate.c). Device schemas are checked with OLD writing and NEW
 * reading (an upgrade), and the other way round on request; the stream
 * format is checked for what an older reader cannot load (FORMAT.md
 * sections 3.2 and 11).
 *
 * A set learned from streams says only what its streams held: it "writes"
 * every version seen, and as a reader it is taken to read whatever versions
 * came before the ones seen and integers of either sign, since streams
 * cannot show what a reader refuses.
 */
#include <stdarg.h>
#include <stdio.h>

#include "schema/schema_impl.h"

typedef struct cctx {
    const ms_schema_set *ws, *rs; /* the writing and the reading release */
    const char *wname, *rname;    /* "OLD" / "NEW" */
    ms_compat_direction dir;
    ms_compat_fn fn;
    void *ctx;
    int errors;
    int stop;
    const msi_sdevice *wd, *rd;
    uint32_t wlo, whi; /* versions the writer writes */
    char path[512];
    size_t plen;
} cctx;

static const char *const check_names[] = {
    [MS_COMPAT_DEVICE_REMOVED] = "device-removed", [MS_COMPAT_FIELD_REMOVED] = "field-removed",
    [MS_COMPAT_TYPE_CHANGED] = "type-changed",     [MS_COMPAT_REQUIRED_ADDED] = "required-added",
    [MS_COMPAT_VERSION_DOWN] = "version-down",     [MS_COMPAT_VERSION_DROPPED] = "version-dropped",
    [MS_COMPAT_SINCE_CHANGED] = "since-changed",   [MS_COMPAT_FORMAT_MAJOR] = "format-major",
    [MS_COMPAT_FEATURE_ADDED] = "feature-added",   [MS_COMPAT_MINOR_NEWER] = "minor-newer",
};

const char *ms_compat_check_name(ms_compat_check check)
{
    if ((unsigned)check >= sizeof check_names / sizeof check_names[0])
        return NULL;
    return check_names[check];
}

__attribute__((format(printf, 6, 7))) static void issue(cctx *c, ms_compat_check check,
                                                        bool warning, const msi_snode *wn,
                                                        const msi_snode *rn, const char *fmt, ...)
{
    if (c->stop)
        return;
    char detail[700], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (c->wd)
        snprintf(msg, sizeof msg, "schema \"%s\"%s%s: %s", c->wd->schema, c->plen ? " field " : "",
                 c->plen ? c->path : "", detail);
    else
        snprintf(msg, sizeof msg, "%s", detail);
    bool old_writes = c->dir == MS_COMPAT_OLD_TO_NEW;
    const msi_sdevice *od = old_writes ? c->wd : c->rd, *nd = old_writes ? c->rd : c->wd;
    const msi_snode *on = old_writes ? wn : rn, *nn = old_writes ? rn : wn;
    const char *path = c->wd ? c->wd->path : NULL;
    if (!path && c->rd)
        path = c->rd->path;
    ms_compat_issue is = {
        .check = check,
        .direction = c->dir,
        .warning = warning,
        .schema = c->wd ? c->wd->schema : NULL,
        .device_path = path,
        .field = c->wd && c->plen ? c->path : NULL,
        .old_version = od ? od->version : 0,
        .new_version = nd ? nd->version : 0,
        .old_type = on ? msi_stype_name(on->type) : NULL,
        .new_type = nn ? msi_stype_name(nn->type) : NULL,
        .message = msg,
    };
    if (!warning)
        c->errors++;
    if (c->fn) {
        int rc = c->fn(c->ctx, &is);
        if (rc < 0)
            c->stop = rc;
    }
}

static bool accepts(const cctx *c, msi_stype r, msi_stype w)
{
    bool ints = (w == MSI_ST_UINT || w == MSI_ST_INT) && (r == MSI_ST_UINT || r == MSI_ST_INT);
    return r == MSI_ST_ANY || r == w || (r == MSI_ST_INT && w == MSI_ST_UINT) ||
           (ints && c->rs->kind == MSI_SET_LEARNED);
}

static bool required_in(const ms_schema_set *s, const msi_snode *parent, const msi_sfield *f)
{
    return s->kind == MSI_SET_LEARNED ? msi_learned_required(parent, f) : f->required;
}

static msi_sfield *counterpart(const msi_snode *n, const msi_sfield *f)
{
    return f->name ? msi_snode_find_text(n, (const uint8_t *)f->name, strlen(f->name))
                   : msi_snode_find_key(n, f->key);
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

static void compare_node(cctx *c, const msi_snode *w, const msi_snode *r, unsigned depth);

static void compare_fields(cctx *c, const msi_snode *w, const msi_snode *r, unsigned depth)
{
    size_t base = c->plen;
    bool r_learned = c->rs->kind == MSI_SET_LEARNED;
    for (size_t i = 0; i < w->nfields && !c->stop; i++) {
        const msi_sfield *wf = &w->fields[i];
        const msi_sfield *rf = counterpart(r, wf);
        uint32_t first = max_u32(wf->since, c->wlo); /* first version written with it */
        c->plen = msi_path_push(c->path, sizeof c->path, c->plen, wf);
        if (!rf) {
            if (r->has_fields)
                issue(c, MS_COMPAT_FIELD_REMOVED, r->open, &wf->node, NULL,
                      "%s writes it (%s, version %u) but %s version %u does not have it%s",
                      c->wname, msi_stype_name(wf->node.type), c->whi, c->rname, c->rd->version,
                      r->open ? " (its map is open: the field is ignored)" : "");
        } else {
            if (!r_learned && rf->since > first)
                issue(c, MS_COMPAT_SINCE_CHANGED, false, &wf->node, &rf->node,
                      "%s writes it in version %u states, but %s says it was added in version %u",
                      c->wname, first, c->rname, rf->since);
            compare_node(c, &wf->node, &rf->node, depth + 1);
        }
        c->path[c->plen = base] = 0;
    }
    if (!w->has_fields)
        return; /* the writer's map is not described: nothing to say */
    for (size_t i = 0; i < r->nfields && !c->stop; i++) {
        const msi_sfield *rf = &r->fields[i];
        if (!required_in(c->rs, r, rf) || rf->since > c->whi)
            continue;
        /* The reader requires the field in every version from rf->since on;
         * the writer writes versions up to whi. */
        uint32_t from = max_u32(rf->since, c->wlo);
        const msi_sfield *wf = counterpart(w, rf);
        if (wf && required_in(c->ws, w, wf) && wf->since <= from)
            continue;
        c->plen = msi_path_push(c->path, sizeof c->path, c->plen, rf);
        if (wf)
            issue(c, MS_COMPAT_REQUIRED_ADDED, false, &wf->node, &rf->node,
                  "%s requires it from version %u on, but %s may omit it in version %u states "
                  "(it is optional%s there): a required field needs a version bump",
                  c->rname, rf->since, c->wname, from, wf->since > from ? " or added later" : "");
        else if (rf->since)
            issue(c, MS_COMPAT_REQUIRED_ADDED, false, NULL, &rf->node,
                  "%s requires it (%s) from version %u on, but %s writes version %u states "
                  "without it: a required field needs a version bump",
                  c->rname, msi_stype_name(rf->node.type), rf->since, c->wname, from);
        else
            issue(c, MS_COMPAT_REQUIRED_ADDED, false, NULL, &rf->node,
                  "%s requires it (%s), but %s writes version %u states without it: a "
                  "required field needs a version bump",
                  c->rname, msi_stype_name(rf->node.type), c->wname, from);
        c->path[c->plen = base] = 0;
    }
}

static void compare_node(cctx *c, const msi_snode *w, const msi_snode *r, unsigned depth)
{
    if (c->stop)
        return;
    if (!accepts(c, r->type, w->type)) {
        issue(c, MS_COMPAT_TYPE_CHANGED, false, w, r, "%s writes %s, %s reads %s", c->wname,
              msi_stype_name(w->type), c->rname, msi_stype_name(r->type));
        return;
    }
    if (w->type == MSI_ST_MAP && r->type == MSI_ST_MAP && w->has_fields)
        compare_fields(c, w, r, depth);
    if (w->type == MSI_ST_ARRAY && r->type == MSI_ST_ARRAY && w->items && r->items) {
        size_t base = c->plen;
        c->plen = msi_path_push_raw(c->path, sizeof c->path, c->plen, "/*");
        compare_node(c, w->items, r->items, depth + 1);
        c->path[c->plen = base] = 0;
    }
}

static void compare_devices(cctx *c)
{
    bool r_learned = c->rs->kind == MSI_SET_LEARNED;
    for (size_t i = 0; i < c->ws->ndevices && !c->stop; i++) {
        c->wd = &c->ws->devices[i];
        c->rd = msi_schema_find(c->rs, c->wd->schema);
        c->plen = 0;
        c->path[0] = 0;
        /* A release writes its current version; streams show which. */
        c->whi = c->wd->version;
        c->wlo = c->ws->kind == MSI_SET_LEARNED ? c->wd->min_version : c->wd->version;
        char vers[40];
        if (c->wlo == c->whi)
            snprintf(vers, sizeof vers, "version %u", c->whi);
        else
            snprintf(vers, sizeof vers, "versions %u to %u", c->wlo, c->whi);
        if (!c->rd) {
            issue(c, MS_COMPAT_DEVICE_REMOVED, false, NULL, NULL,
                  "%s writes it (%s%s%s%s) but %s has no such schema", c->wname, vers,
                  c->wd->path ? ", device \"" : "", c->wd->path ? c->wd->path : "",
                  c->wd->path ? "\"" : "", c->rname);
            continue;
        }
        if (c->whi > c->rd->version) {
            issue(c, MS_COMPAT_VERSION_DOWN, false, NULL, NULL,
                  "the version went down: %s writes %s, %s reads up to version %u", c->wname, vers,
                  c->rname, c->rd->version);
            continue;
        }
        if (!r_learned && c->wlo < c->rd->min_version) {
            issue(c, MS_COMPAT_VERSION_DROPPED, false, NULL, NULL,
                  "%s writes %s, %s reads only from version %u on", c->wname, vers, c->rname,
                  c->rd->min_version);
            continue;
        }
        compare_node(c, &c->wd->root, &c->rd->root, 0);
    }
    c->wd = c->rd = NULL;
    c->plen = 0;
}

static void feature_list(char *buf, size_t cap, uint64_t bits)
{
    size_t n = 0;
    buf[0] = 0;
    for (unsigned b = 0; b < 64 && n < cap; b++) {
        if (!(bits >> b & 1))
            continue;
        const char *name = ms_feature_name(b);
        if (name)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s (bit %u)", n ? ", " : "", name, b);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%sbit %u", n ? ", " : "", b);
    }
}

/* FORMAT.md 3.2 and 11.1: a reader refuses another major version and any
 * required feature bit it does not implement; a newer minor it reads,
 * skipping what it does not know. What OLD's streams used is what OLD's
 * reader is known to read. */
static void compare_format(cctx *c, const ms_schema_set *old_set, const ms_schema_set *new_set)
{
    if (!old_set->has_format || !new_set->has_format)
        return;
    c->dir = MS_COMPAT_NEW_TO_OLD;
    if (new_set->major != old_set->major) {
        issue(c, MS_COMPAT_FORMAT_MAJOR, false, NULL, NULL,
              "stream format: NEW uses major version %u, OLD %u: a reader reads only its own "
              "major version",
              new_set->major, old_set->major);
        return;
    }
    uint64_t added = new_set->features & ~old_set->features;
    if (added) {
        char names[600];
        feature_list(names, sizeof names, added);
        issue(c, MS_COMPAT_FEATURE_ADDED, false, NULL, NULL,
              "stream format: NEW sets required feature bits OLD never sets: %s; a reader "
              "without them refuses the stream",
              names);
    }
    if (new_set->minor > old_set->minor)
        issue(c, MS_COMPAT_MINOR_NEWER, true, NULL, NULL,
              "stream format: NEW is format %u.%u, OLD %u.%u: an OLD reader skips what the "
              "newer minor version adds",
              new_set->major, new_set->minor, old_set->major, old_set->minor);
}

int ms_schema_compare(const ms_schema_set *old_set, const ms_schema_set *new_set, unsigned flags,
                      ms_compat_fn fn, void *ctx)
{
    if (!old_set || !new_set || (flags & ~MS_COMPAT_BOTH_WAYS))
        return MS_EINVAL;
    if (old_set->status || new_set->status)
        return old_set->status ? old_set->status : new_set->status;
    cctx c = {.fn = fn, .ctx = ctx};
    compare_format(&c, old_set, new_set);
    c.ws = old_set;
    c.rs = new_set;
    c.wname = "OLD";
    c.rname = "NEW";
    c.dir = MS_COMPAT_OLD_TO_NEW;
    compare_devices(&c);
    if (flags & MS_COMPAT_BOTH_WAYS) {
        c.ws = new_set;
        c.rs = old_set;
        c.wname = "NEW";
        c.rname = "OLD";
        c.dir = MS_COMPAT_NEW_TO_OLD;
        compare_devices(&c);
    }
    return c.stop < 0 ? c.stop : c.errors;
}
