/*
 * A migration in parts read as one stream (FORMAT.md section 2.1): one
 * ms_reader per part, each checking its part as the stream it is, and a
 * source (format/source.h) that hands out their records in the order of
 * the final state: every part's records up to its first ROUND (part 0's,
 * then part 1's ...), then round by round the ROUND once and every part's
 * records of that round, in part order, and at last one END for the whole
 * migration.
 *
 * Each part's reader stops at its next ROUND or END, whose view stays
 * valid while the other parts are read (nothing calls that reader
 * meanwhile), so the merge holds no record of its own: memory is the
 * parts' readers' and the regions and overlays of the migration, within
 * the reader's limits. The rules that span parts and cost little are
 * checked here (section 2.1): one migration id, every index present once,
 * one base page size, the same rounds in every part, regions declared
 * alike, INFO alike, each overlay in one part. Disjoint pages and devices
 * within a round need a map of the round's pages: migstream-validate's.
 *
 * Owns: the parts' readers, the migration's regions as declared first,
 * the overlay keys, the copy of INFO.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "format/options.h"
#include "format/parts.h"
#include "migstream/overlay.h"

typedef struct parts parts;

typedef struct part_in {
    parts *ps;
    ms_reader *r;
    const char *name;
    bool known;            /* its PART was read: info.part holds its index */
    bool part_pending;     /* its PART is yet to be handed out */
    const ms_record *held; /* its PART, then the ROUND or END it stopped at */
    ms_part_info info;
} part_in;

typedef struct region_entry {
    ms_region r;
    char name[MS_MAX_NAME_LEN + 1];
    uint32_t part; /* where it was declared first */
    uint64_t index, offset;
} region_entry;

struct parts {
    msi_source *src;
    ms_reader_options opts; /* the caller's; each part's reader gets a copy */
    part_in *in;            /* in input order: the problem callbacks point here */
    part_in **order;        /* by part index, once known */
    size_t n;
    size_t cur;  /* the part being read; n: every part holds ROUND or END */
    bool opened; /* the parts are told apart and in order */
    bool done;
    uint64_t rounds;
    ms_record rec; /* what next() hands out */
    region_entry **regions;
    size_t nregions, regions_cap, last_region;
    ms_region *rec_regions; /* the regions a REGIONS record declares first */
    size_t rec_regions_cap;
    struct ov_key {
        uint64_t gfn;
        uint32_t kind;
    } * ov;
    size_t nov;
    bool have_info;
    char *machine, *description; /* the first INFO's */
};

/* ----------------------------------------------------------------- words */

/* "part 1 (b.mig)", or the input's name before its PART was read. */
static const char *label(const part_in *p, char *buf, size_t size)
{
    if (p->known)
        snprintf(buf, size, "part %u (%s)", p->info.part.index, p->name);
    else
        snprintf(buf, size, "%s", p->name);
    return buf;
}

/* "part 1 (b.mig), record 7 (ROUND at byte 4242)" */
static const char *where(const part_in *p, const ms_record *rec, char *buf, size_t size)
{
    char l[320], tn[32];
    const char *name = ms_record_type_name(rec->type);
    if (!name)
        snprintf(tn, sizeof tn, "type 0x%04x", rec->type);
    snprintf(buf, size, "%s, record %llu (%s at byte %llu)", label(p, l, sizeof l),
             (unsigned long long)rec->index, name ? name : tn, (unsigned long long)rec->offset);
    return buf;
}

const char *msi_part_prefix(char *buf, size_t size, ms_reader *r, const ms_record *rec)
{
    const ms_part_info *pi =
        rec->part && ms_reader_part_count(r) > 1 ? ms_reader_part_info(r, rec->part->index) : NULL;
    if (pi)
        snprintf(buf, size, "part %u (%s), ", rec->part->index, pi->name ? pi->name : "?");
    else if (size)
        buf[0] = 0;
    return buf;
}

static void hex_id(const uint8_t *id, char out[2 * MS_MIGRATION_ID_SIZE + 1])
{
    for (unsigned i = 0; i < MS_MIGRATION_ID_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* A part's reader failed: its failure, named by the part, becomes the
 * source's. */
static int adopt(msi_source *s, part_in *p)
{
    char l[320];
    int status = ms_reader_status(p->r);
    s->err_part = p->known ? (int64_t)p->info.part.index : -1;
    s->err_record = ms_reader_error_record(p->r);
    return msi_source_fail(s, status ? status : MS_ECORRUPT, ms_reader_error_offset(p->r), "%s: %s",
                           label(p, l, sizeof l), ms_reader_errmsg(p->r));
}

/* A rule across parts broken at @rec of @p (@at: its byte), with nothing to
 * step over: the source fails. */
__attribute__((format(printf, 6, 7))) static int fail_at(msi_source *s, int status, part_in *p,
                                                         const ms_record *rec, uint64_t at,
                                                         const char *fmt, ...)
{
    char w[400], detail[600];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    s->err_part = p->known ? (int64_t)p->info.part.index : -1;
    s->err_record = rec ? (int64_t)rec->index : -1;
    if (rec)
        where(p, rec, w, sizeof w);
    else
        label(p, w, sizeof w);
    return msi_source_fail(s, status, at, "%s: %s", w, detail);
}

/* The same for a rule a lenient reader steps over (ms_reader_options.
 * on_problem): reported there, and 0; otherwise the source fails. */
__attribute__((format(printf, 6, 7))) static int problem_at(msi_source *s, int status, part_in *p,
                                                            const ms_record *rec, uint64_t at,
                                                            const char *fmt, ...)
{
    parts *ps = s->state;
    char w[400], detail[600], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (!ps->opts.on_problem)
        return fail_at(s, status, p, rec, at, "%s", detail);
    snprintf(msg, sizeof msg, "%s: %s", where(p, rec, w, sizeof w), detail);
    s->err_part = p->known ? (int64_t)p->info.part.index : -1;
    s->err_record = (int64_t)rec->index;
    ps->opts.on_problem(ps->opts.problem_ctx, status, at, (int64_t)rec->index, msg);
    s->err_part = -1;
    s->err_record = MSI_SOURCE_NO_RECORD;
    return 0;
}

/* A part's reader reports a problem it steps over: the caller hears of it
 * with the part named. */
static void part_problem(void *ctx, int status, uint64_t offset, int64_t record,
                         const char *message)
{
    part_in *p = ctx;
    msi_source *s = p->ps->src;
    char l[320], msg[1024];
    snprintf(msg, sizeof msg, "%s: %s", label(p, l, sizeof l), message);
    s->err_part = p->known ? (int64_t)p->info.part.index : -1;
    s->err_record = record;
    p->ps->opts.on_problem(p->ps->opts.problem_ctx, status, offset, record, msg);
    s->err_part = -1;
    s->err_record = MSI_SOURCE_NO_RECORD;
}

/* ------------------------------------------------------------------ open */

static int by_index(const void *a, const void *b)
{
    const part_in *x = *(part_in *const *)a, *y = *(part_in *const *)b;
    return x->info.part.index < y->info.part.index ? -1 : x->info.part.index > y->info.part.index;
}

/* Reads @p's preamble and its PART record. */
static int open_part(msi_source *s, part_in *p)
{
    const ms_header *h;
    const ms_record *rec;
    char l[320];
    if (ms_reader_header(p->r, &h))
        return adopt(s, p);
    p->info.header = *h;
    if (!(h->required_features & MS_FEATURE_PARTS)) {
        const parts *ps = s->state;
        const part_in *other = p == &ps->in[0] ? &ps->in[1] : &ps->in[0];
        return msi_source_fail(s, MS_EINVAL, 16,
                               "%s and %s are both main inputs (libmigstream "
                               "streams), and %s is no part of a migration in parts (its "
                               "preamble does not require feature PARTS): open one stream at a "
                               "time, or every part of one migration",
                               p->name, other->name, p->name);
    }
    int rc = ms_reader_next(p->r, &rec);
    if (rc < 0)
        return adopt(s, p);
    /* A lenient reader hands out a damaged record 0: nothing tells this
     * part from the others then. */
    if (rc == 0 || rec->type != MS_REC_PART || rec->status || !rec->part)
        return msi_source_fail(s, MS_ECORRUPT, rec->offset,
                               "%s: record 0 (at byte %llu) is no "
                               "valid PART record: the part cannot be placed in its migration",
                               label(p, l, sizeof l), (unsigned long long)rec->offset);
    p->info.part = *rec->part;
    p->info.header_size = (uint32_t)rec->offset; /* record 0 starts right after it */
    p->info.records = 1;
    p->known = true;
    p->held = rec;
    p->part_pending = true;
    return MS_OK;
}

static int parts_open(msi_source *s)
{
    parts *ps = s->state;
    char a[2 * MS_MIGRATION_ID_SIZE + 1], b[2 * MS_MIGRATION_ID_SIZE + 1], la[320], lb[320];
    int rc;
    for (size_t i = 0; i < ps->n; i++)
        if ((rc = open_part(s, &ps->in[i])))
            return rc;
    /* FORMAT.md section 2.1: one migration id, each index 0..count-1 once. */
    part_in *first = &ps->in[0];
    for (size_t i = 1; i < ps->n; i++) {
        part_in *p = &ps->in[i];
        if (memcmp(p->info.part.migration_id, first->info.part.migration_id,
                   MS_MIGRATION_ID_SIZE) != 0) {
            hex_id(first->info.part.migration_id, a);
            hex_id(p->info.part.migration_id, b);
            s->err_part = -1;
            return msi_source_fail(s, MS_EINVAL, 0,
                                   "%s and %s are parts of different "
                                   "migrations (ids %s and %s): open one migration at a time",
                                   label(first, la, sizeof la), label(p, lb, sizeof lb), a, b);
        }
    }
    hex_id(first->info.part.migration_id, a);
    for (size_t i = 0; i < ps->n; i++) {
        part_in *p = &ps->in[i];
        if (p->info.part.count != ps->n)
            return fail_at(s, MS_EINVAL, p, p->held, p->held->offset + MS_RECORD_HEADER_SIZE,
                           "migration %s has %u parts, but %zu inputs are given: open every "
                           "part of the migration, and nothing else",
                           a, p->info.part.count, ps->n);
        if (p->info.header.page_size != first->info.header.page_size)
            return fail_at(s, MS_ECORRUPT, p, NULL, 32,
                           "base page size %u, but %s has %u: the "
                           "parts of a migration have one base page size",
                           p->info.header.page_size, label(first, la, sizeof la),
                           first->info.header.page_size);
        ps->order[i] = p;
    }
    qsort(ps->order, ps->n, sizeof *ps->order, by_index);
    for (size_t i = 1; i < ps->n; i++)
        if (ps->order[i]->info.part.index == ps->order[i - 1]->info.part.index) {
            s->err_part = ps->order[i]->info.part.index;
            return msi_source_fail(s, MS_EINVAL, 0, "%s and %s are both part %u of migration %s",
                                   ps->order[i - 1]->name, ps->order[i]->name,
                                   ps->order[i]->info.part.index, a);
        }
    /* The migration's preamble, as one stream's would be: the union of the
     * parts' features, part 0's writer. */
    ms_header *h = &s->header;
    *h = ps->order[0]->info.header;
    for (size_t i = 1; i < ps->n; i++) {
        const ms_header *o = &ps->order[i]->info.header;
        h->required_features |= o->required_features;
        h->optional_features |= o->optional_features;
        if (o->minor > h->minor)
            h->minor = o->minor;
    }
    ps->opened = true;
    return MS_OK;
}

/* ------------------------------------------------------------- records */

static region_entry *find_region(parts *ps, uint32_t id)
{
    if (ps->last_region < ps->nregions && ps->regions[ps->last_region]->r.id == id)
        return ps->regions[ps->last_region];
    for (size_t i = 0; i < ps->nregions; i++)
        if (ps->regions[i]->r.id == id) {
            ps->last_region = i;
            return ps->regions[i];
        }
    return NULL;
}

static bool same_region(const ms_region *a, const ms_region *b)
{
    return a->id == b->id && strcmp(a->name, b->name) == 0 && a->has_gpa == b->has_gpa &&
           (!a->has_gpa || a->gpa == b->gpa) && a->size == b->size && a->page_size == b->page_size;
}

static bool overlap(const ms_region *a, const ms_region *b)
{
    return a->has_gpa && b->has_gpa && a->gpa <= b->gpa + (b->size - 1) &&
           b->gpa <= a->gpa + (a->size - 1);
}

/* A REGIONS record: regions another part declared already are left out of
 * what is handed out (they must be declared alike); 0 when none is left. */
static int take_regions(msi_source *s, parts *ps, part_in *p, ms_record *rec)
{
    size_t k = 0;
    if (rec->region_count > ps->rec_regions_cap) {
        ms_region *rv = msi_realloc(&s->alloc, ps->rec_regions, rec->region_count * sizeof *rv);
        if (!rv)
            return msi_source_fail(s, MS_ENOMEM, rec->offset, "out of memory");
        ps->rec_regions = rv;
        ps->rec_regions_cap = rec->region_count;
    }
    for (size_t i = 0; i < rec->region_count; i++) {
        const ms_region *g = &rec->regions[i];
        region_entry *e = find_region(ps, g->id);
        char l[320];
        if (e && same_region(&e->r, g))
            continue;
        if (e)
            return fail_at(s, MS_ECORRUPT, p, rec, rec->offset,
                           "region %u \"%s\" differs from "
                           "the region %u \"%s\" that part %u declared (record %llu at byte "
                           "%llu): a region of a migration is declared alike in every part "
                           "that declares it",
                           g->id, g->name, e->r.id, e->r.name, e->part,
                           (unsigned long long)e->index, (unsigned long long)e->offset);
        for (size_t j = 0; j < ps->nregions; j++)
            if (overlap(&ps->regions[j]->r, g))
                return fail_at(s, MS_ECORRUPT, p, rec, rec->offset,
                               "region %u \"%s\" overlaps "
                               "region %u \"%s\" of part %u in guest-physical memory",
                               g->id, g->name, ps->regions[j]->r.id, ps->regions[j]->r.name,
                               ps->regions[j]->part);
        if (ps->nregions >= ps->opts.max_regions)
            return fail_at(s, MS_ELIMIT, p, rec, rec->offset,
                           "more than %u regions in the "
                           "migration (max_regions)",
                           ps->opts.max_regions);
        if (ps->nregions == ps->regions_cap) {
            size_t cap = ps->regions_cap ? 2 * ps->regions_cap : 16;
            region_entry **re = msi_realloc(&s->alloc, ps->regions, cap * sizeof *re);
            if (!re)
                return msi_source_fail(s, MS_ENOMEM, rec->offset, "out of memory");
            ps->regions = re;
            ps->regions_cap = cap;
        }
        if (!(e = msi_alloc(&s->alloc, sizeof *e)))
            return msi_source_fail(s, MS_ENOMEM, rec->offset, "%s: out of memory",
                                   label(p, l, sizeof l));
        e->r = *g;
        snprintf(e->name, sizeof e->name, "%s", g->name);
        e->r.name = e->name;
        e->part = p->info.part.index;
        e->index = rec->index;
        e->offset = rec->offset;
        ps->regions[ps->nregions++] = e;
        ps->rec_regions[k++] = e->r;
    }
    rec->regions = ps->rec_regions;
    rec->region_count = k;
    return k ? 1 : 0;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *copy_text(msi_source *s, const char *t)
{
    return t ? msi_strdup(&s->alloc, t) : NULL;
}

/* INFO: handed out once, from the first part that has it; the others must
 * say the same. */
static int take_info(msi_source *s, parts *ps, part_in *p, ms_record *rec)
{
    if (!ps->have_info) {
        ps->machine = copy_text(s, rec->info.machine);
        ps->description = copy_text(s, rec->info.description);
        if ((rec->info.machine && !ps->machine) || (rec->info.description && !ps->description))
            return msi_source_fail(s, MS_ENOMEM, rec->offset, "out of memory");
        ps->have_info = true;
        return 1;
    }
    if (same_text(ps->machine, rec->info.machine) &&
        same_text(ps->description, rec->info.description))
        return 0;
    int rc = problem_at(s, MS_ECORRUPT, p, rec, rec->offset,
                        "INFO differs from the INFO of an "
                        "earlier part: parts that carry INFO carry the same");
    if (rc)
        return rc;
    rec->status = MS_ECORRUPT; /* handed out undecoded, as a lenient reader does */
    memset(&rec->info, 0, sizeof rec->info);
    return 1;
}

/* OVERLAY: a frame holds one overlay of a kind in the whole migration. */
static int take_overlays(msi_source *s, parts *ps, part_in *p, ms_record *rec)
{
    const size_t max = ps->opts.max_overlays;
    if (rec->overlay_count > max - ps->nov)
        return fail_at(s, MS_ELIMIT, p, rec, rec->offset,
                       "more than %zu overlays in the "
                       "migration (max_overlays)",
                       max);
    for (size_t i = 0; i < rec->overlay_count; i++) {
        const ms_overlay *o = &rec->overlays[i];
        /* Linear, as in the reader: the limit bounds it. */
        for (size_t k = 0; k < ps->nov; k++) {
            if (ps->ov[k].gfn != o->gfn || ps->ov[k].kind != o->kind)
                continue;
            int rc = problem_at(s, MS_ECORRUPT, p, rec, rec->offset + MS_RECORD_HEADER_SIZE,
                                "overlay %zu: frame 0x%llx already has a %s overlay in an "
                                "earlier part (one of each kind per frame in a migration)",
                                i, (unsigned long long)o->gfn, ms_overlay_kind_name(o->kind));
            if (rc)
                return rc;
            rec->status = MS_ECORRUPT;
            rec->overlays = NULL;
            rec->overlay_count = 0;
            return 1;
        }
    }
    for (size_t i = 0; i < rec->overlay_count; i++) {
        ps->ov[ps->nov].gfn = rec->overlays[i].gfn;
        ps->ov[ps->nov].kind = rec->overlays[i].kind;
        ps->nov++;
    }
    return 1;
}

/* Prepares @x, read from @p, to be handed out: 1 when it is, 0 when the
 * single stream would not hold it (a second INFO, regions declared
 * already), or a failure. */
static int take(msi_source *s, parts *ps, part_in *p, const ms_record *x)
{
    ms_record *rec = &ps->rec;
    *rec = *x;
    rec->part = &p->info.part;
    if (rec->status)
        return 1; /* damaged, reported: as the part's reader hands it out */
    switch (rec->type) {
    case MS_REC_INFO:
        return take_info(s, ps, p, rec);
    case MS_REC_REGIONS:
        return take_regions(s, ps, p, rec);
    case MS_REC_PAGES: {
        /* The migration's region, declared alike in this part. */
        region_entry *e = find_region(ps, rec->pages.region->id);
        if (!e)
            return fail_at(s, MS_ECORRUPT, p, rec, rec->offset, "region %u is not declared",
                           rec->pages.region->id);
        rec->pages.region = &e->r;
        return 1;
    }
    case MS_REC_OVERLAY:
        return take_overlays(s, ps, p, rec);
    default:
        return 1;
    }
}

/* Which field two ROUND records of one round differ in, or NULL. */
static const char *round_differs(const ms_round *a, const ms_round *b)
{
    if (a->number != b->number)
        return "number";
    if (a->tracker != b->tracker)
        return "tracker";
    if (a->granularity != b->granularity)
        return "granularity";
    if (a->has_dirty != b->has_dirty || (a->has_dirty && a->dirty != b->dirty))
        return "dirty count";
    if (a->final != b->final)
        return "final flag";
    return NULL;
}

/* The migration digest (FORMAT.md section 8): XXH3-64 of the parts'
 * stream digests, 8 bytes each, little-endian, in part order; the one
 * part's own, when there is one part. */
static uint64_t migration_digest(const parts *ps)
{
    if (ps->n == 1)
        return ps->order[0]->held->checksum;
    XXH3_state_t *st = XXH3_createState();
    uint64_t d = 0;
    if (!st)
        return 0;
    XXH3_64bits_reset(st);
    for (size_t i = 0; i < ps->n; i++) {
        uint8_t le[8];
        msi_put64(le, ps->order[i]->held->checksum);
        XXH3_64bits_update(st, le, sizeof le);
    }
    d = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return d;
}

/* Every part holds its next ROUND, or its END: the same in all of them
 * (section 2.1). Hands out the ROUND once, or the migration's END. */
static int sync_parts(msi_source *s, parts *ps, const ms_record **out)
{
    part_in *a = ps->order[0];
    const bool end = a->held->type == MS_REC_END;
    char w[400];
    for (size_t i = 1; i < ps->n; i++) {
        part_in *b = ps->order[i];
        const ms_record *x = b->held, *y = a->held;
        if (end && x->type != MS_REC_END)
            return fail_at(s, MS_ECORRUPT, b, x, x->offset,
                           "ROUND %llu, but %s ends its part "
                           "there: the parts of a migration start the same rounds",
                           (unsigned long long)x->round.number, where(a, y, w, sizeof w));
        if (!end && x->type == MS_REC_END)
            return fail_at(s, MS_ECORRUPT, b, x, x->offset,
                           "the part ends, but %s starts round "
                           "%llu: the parts of a migration start the same rounds",
                           where(a, y, w, sizeof w), (unsigned long long)y->round.number);
        const char *field;
        if (!end && !x->status && !y->status && (field = round_differs(&y->round, &x->round)))
            return fail_at(s, MS_ECORRUPT, b, x, x->offset + MS_RECORD_HEADER_SIZE,
                           "ROUND %llu differs in its %s from %s, ROUND %llu: the parts of a "
                           "migration start the same rounds, alike",
                           (unsigned long long)x->round.number, field, where(a, y, w, sizeof w),
                           (unsigned long long)y->round.number);
    }
    ms_record *rec = &ps->rec;
    ps->cur = 0;
    if (!end) {
        ps->rounds++;
        *rec = *a->held;
        rec->part = &a->info.part;
        *out = rec;
        return 1;
    }
    /* The migration's END: the parts' totals summed, but for rounds, which
     * every part counts alike; no wire bytes of its own. */
    memset(rec, 0, sizeof *rec);
    rec->type = MS_REC_END;
    rec->flags = MS_RECORD_MUST_UNDERSTAND;
    rec->known = true;
    ms_totals *t = &rec->totals;
    for (size_t i = 0; i < ps->n; i++) {
        const ms_record *x = ps->order[i]->held;
        t->records += x->totals.records;
        t->bytes += x->totals.bytes;
        for (unsigned k = 0; k < MS_PAGE_STATE_SLOTS; k++)
            t->pages[k] += x->totals.pages[k];
        t->devices += x->totals.devices;
        t->overlays += x->totals.overlays;
    }
    t->rounds = ps->rounds;
    rec->index = t->records;
    rec->offset = t->bytes;
    rec->checksum = migration_digest(ps);
    ps->done = true;
    *out = rec;
    return 1;
}

static int parts_next(msi_source *s, const ms_record **out)
{
    parts *ps = s->state;
    for (;;) {
        if (ps->done)
            return 0;
        if (ps->cur == ps->n)
            return sync_parts(s, ps, out);
        part_in *p = ps->order[ps->cur];
        const ms_record *x;
        if (p->part_pending) {
            p->part_pending = false;
            x = p->held;
        } else {
            int rc = ms_reader_next(p->r, &x);
            if (rc < 0)
                return adopt(s, p);
            if (rc == 0) /* not after END, which is held */
                return fail_at(s, MS_ECORRUPT, p, NULL, 0, "read past its END");
            p->info.records++;
            if (x->type == MS_REC_ROUND || x->type == MS_REC_END) {
                p->held = x;
                if (x->type == MS_REC_END) {
                    p->info.bytes = ms_reader_offset(p->r);
                    p->info.ended = true;
                    p->info.totals = x->totals;
                    p->info.digest = x->checksum;
                }
                ps->cur++;
                continue;
            }
        }
        int rc = take(s, ps, p, x);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            *out = &ps->rec;
            return 1;
        }
    }
}

/* ------------------------------------------------------- the rest of ops */

static int parts_expect_eof(msi_source *s)
{
    parts *ps = s->state;
    for (size_t i = 0; i < ps->n; i++)
        if (ms_reader_expect_eof(ps->order[i]->r))
            return adopt(s, ps->order[i]);
    return MS_OK;
}

static uint32_t parts_count(const msi_source *s)
{
    const parts *ps = s->state;
    return ps && ps->opened ? (uint32_t)ps->n : 0;
}

static const ms_part_info *parts_info(msi_source *s, uint32_t i)
{
    parts *ps = s->state;
    if (!ps || !ps->opened || i >= ps->n)
        return NULL;
    part_in *p = ps->order[i];
    if (!p->info.ended) /* after END, what expect_eof() read is not the part's */
        p->info.bytes = ms_reader_offset(p->r);
    return &p->info;
}

static void parts_close(msi_source *s)
{
    parts *ps = s->state;
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++)
        ms_reader_free(ps->in[i].r);
    for (size_t i = 0; i < ps->nregions; i++)
        msi_free(&s->alloc, ps->regions[i]);
    msi_free(&s->alloc, ps->regions);
    msi_free(&s->alloc, ps->rec_regions);
    msi_free(&s->alloc, ps->ov);
    msi_free(&s->alloc, ps->machine);
    msi_free(&s->alloc, ps->description);
    msi_free(&s->alloc, ps->order);
    msi_free(&s->alloc, ps->in);
    msi_free(&s->alloc, ps);
    s->state = NULL;
}

static const msi_source_ops parts_ops = {
    .name = "migstream",
    .title = "libmigstream migration in parts",
    .open = parts_open,
    .next = parts_next,
    .close = parts_close,
    .expect_eof = parts_expect_eof,
    .part_count = parts_count,
    .part_info = parts_info,
};

msi_source *msi_parts_create(const ms_reader_options *opts, const msi_source_channel *inputs,
                             size_t n)
{
    ms_reader_options o;
    ms_reader_options_init(&o);
    if (opts && msi_struct_take(&o, MSI_READER_OPTIONS_END, opts, opts->struct_size))
        ms_reader_options_init(&o); /* the reader over this source refuses them */
    msi_source_io io = {.channels = inputs, .nchannels = n};
    msi_source *s = msi_source_create(&parts_ops, &o.allocator, &io, NULL);
    if (!s)
        return NULL;
    parts *ps = msi_calloc(&s->alloc, 1, sizeof *ps);
    if (!ps) {
        msi_source_destroy(s);
        return NULL;
    }
    s->state = ps;
    ps->src = s;
    ps->opts = o;
    ps->n = n;
    if (ps->opts.max_regions == 0)
        ps->opts.max_regions = 4096;
    if (ps->opts.max_overlays == 0 || ps->opts.max_overlays > 4096)
        ps->opts.max_overlays = ps->opts.max_overlays ? 4096 : 1024;
    ps->in = msi_calloc(&s->alloc, n ? n : 1, sizeof *ps->in);
    ps->order = msi_calloc(&s->alloc, n ? n : 1, sizeof *ps->order);
    ps->ov = msi_calloc(&s->alloc, ps->opts.max_overlays, sizeof *ps->ov);
    if (!ps->in || !ps->order || !ps->ov) {
        msi_source_destroy(s);
        return NULL;
    }
    if (n > MS_MAX_PARTS) {
        msi_source_fail(s, MS_ELIMIT, 0, "%zu inputs: a migration is read in at most %u parts", n,
                        MS_MAX_PARTS);
        return s;
    }
    /* Each part's reader reports its problems through part_problem(), which
     * names the part. */
    for (size_t i = 0; i < n; i++) {
        part_in *p = &ps->in[i];
        ms_reader_options po = o;
        p->ps = ps;
        p->name = p->info.name = inputs[i].name ? inputs[i].name : "an input";
        if (o.on_problem) {
            po.on_problem = part_problem;
            po.problem_ctx = p;
        }
        if (!(p->r = ms_reader_new(&po, inputs[i].read, inputs[i].ctx))) {
            msi_source_destroy(s);
            return NULL;
        }
    }
    return s;
}
