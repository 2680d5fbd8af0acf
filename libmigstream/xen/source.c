/*
 * The driver of the Xen module (source.h; docs/XEN.md): the libxl and
 * libxc headers, their records, PAGE_DATA pfns and pages, rounds, and the
 * small queue of records one step hands out. Calls every part below it:
 * input (cursor, errors), records (per-record rules, DEVICE paths and
 * states), rules (the order of libxc records), pages (regions, PAGES
 * records), export (for the source's export op).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/frame.h"
#include "xen/export.h"
#include "xen/input.h"
#include "xen/pages.h"
#include "xen/records.h"
#include "xen/rules.h"
#include "xen/source.h"
#include "xen/types.h"
#include "xen/wire.h"

#define DEF_GUEST (1ull << 40)
#define MAX_GUEST (UINT64_MAX - (MX_PAGE_SIZE - 1)) /* 2^64 - 4096: pfns below 2^52 */
#define DEF_RECORD (16u << 20)
/* A record's DEVICE holds its body and the fields decoded from it, at most
 * about 2.5 times the body (xenstore strings of one byte): 24 MiB keeps the
 * DEVICE within the format's 64 MiB. */
#define MAX_RECORD (24u << 20)
#define DEF_BATCH 65536u
#define MAX_BATCH (1u << 20)
#define READ_CHUNK (64u << 10) /* a body grows by this as it arrives */

const char *mx_options_defaults(ms_xen_import_options *o)
{
    if (!o->max_guest_bytes)
        o->max_guest_bytes = DEF_GUEST;
    if (!o->max_record_size)
        o->max_record_size = DEF_RECORD;
    if (!o->max_batch_pfns)
        o->max_batch_pfns = DEF_BATCH;
    if (o->max_guest_bytes % MX_PAGE_SIZE || o->max_guest_bytes > MAX_GUEST)
        return "max_guest_bytes must be a multiple of 4096, at most 2^64 - 4096";
    if (o->max_record_size > MAX_RECORD)
        return "max_record_size is at most 24 MiB";
    if (o->max_batch_pfns > MAX_BATCH)
        return "max_batch_pfns is at most 1048576";
    return NULL;
}

enum item_kind { IT_INFO, IT_REGIONS, IT_ROUND, IT_PAGES, IT_DEVICE, IT_END };

/* A record waiting to be handed out, and what the Xen stream called the
 * record it came from (for a writer's failure). */
typedef struct item {
    uint8_t kind;
    uint64_t offset;
    ms_round round;
    char what[80];
} item;

#define QUEUE 8

/* The ordinal counters of DEVICE paths with MX_INST_ORDINAL. */
enum {
    ORD_LIBXL = MX_LIBXC_TYPES,
    ORD_OPT_LIBXC = ORD_LIBXL + MX_LIBXL_TYPES,
    ORD_OPT_LIBXL,
    ORD_COUNT,
};

enum step_state {
    ST_LIBXL_HDR,  /* the DEVICE of the libxl header */
    ST_LIBXC_HDR,  /* the DEVICE of the libxc headers read in open() */
    ST_LIBXC_HDRS, /* the libxc headers, after a LIBXC_CONTEXT */
    ST_LIBXL_REC,  /* the next libxl record */
    ST_LIBXC_REC,  /* the next libxc record */
    ST_ENTRY,      /* the next pfn entry of a PAGE_DATA record */
    ST_FINISH,     /* nothing after END, then END */
    ST_DONE,
};

typedef struct mx_src {
    ms_xen_import_options o;
    const ms_allocator *alloc;
    mx_error err;
    mx_in in;
    int state;
    uint64_t max_pfns; /* pfns are below this */

    /* Headers. */
    bool libxl;
    uint8_t libxl_raw[MX_LIBXL_HEADER_SIZE];
    bool have_hdr;
    uint8_t hdr_raw[MX_IHDR_SIZE + MX_DHDR_SIZE];
    uint64_t hdr_off;
    uint32_t version, domain;
    char machine[16];

    /* Where the stream is. */
    bool libxc_started, libxc_ended, in_ckpt;
    uint64_t ckpt_off;
    uint64_t libxc_index, libxl_index;
    mx_rules rules;

    /* The record being read. */
    uint64_t roff;
    char rwhat[80];
    msi_buf body;

    /* The PAGE_DATA record being read: its pfn entries, the blocks of
     * page types it changes (handed out before its first page), its
     * place. */
    msi_buf pfns, types;
    uint64_t *changed;
    size_t nchanged, changed_cap, next_changed;
    bool entry_ready; /* the round of the entry is decided */
    uint32_t count, entry;
    uint64_t page_off;
    char page_what[80];
    /* The PAGE_DATA record of the open PAGES record's first page. */
    uint64_t open_off;
    char open_what[80];

    /* Pages, page types and rounds. */
    mx_pages *pages;
    mx_types *kept;
    bool any_page;
    uint64_t last_pfn;
    int force_round; /* after CHECKPOINT (1) or VERIFY (2) */
    uint64_t round;

    /* Output. */
    item q[QUEUE];
    size_t qh, qn;
    char dev_path[MX_PATH_MAX];
    const char *dev_schema;
    uint32_t dev_instance, dev_version;
    msi_buf dev_state;
    uint32_t ordinal[ORD_COUNT];
    ms_record rec;
    ms_totals totals;
    item last; /* the record handed out last */
    ms_xen_import_stats st;
} mx_src;

/* ------------------------------------------------------------- output */

static item *push(mx_src *d, uint8_t kind, uint64_t off, const char *what)
{
    /* A step queues three records at most (sealed PAGES, REGIONS and ROUND
     * or a DEVICE), and only runs once the queue is empty. */
    assert(d->qn < QUEUE);
    item *it = &d->q[(d->qh + d->qn++) % QUEUE];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->offset = off;
    snprintf(it->what, sizeof it->what, "%s", what);
    return it;
}

/* The open PAGES record goes out before whatever comes next. */
static void seal_pages(mx_src *d)
{
    if (mx_pages_seal(d->pages))
        push(d, IT_PAGES, d->open_off, d->open_what);
}

/* Queues the DEVICE in d->dev_*, whose state is in d->dev_state. */
static void push_device(mx_src *d, uint64_t off, const char *what)
{
    seal_pages(d);
    push(d, IT_DEVICE, off, what);
}

static int next_ordinal(mx_src *d, int which, uint32_t *out)
{
    if (d->ordinal[which] == UINT32_MAX)
        return mx_fail(&d->err, MS_ELIMIT, d->roff, d->rwhat,
                       "more than 2^32 - 1 records of one kind (the DEVICE instance counts them)");
    *out = d->ordinal[which]++;
    return 0;
}

/* The DEVICE of the record just read (its body in d->body). */
static int record_device(mx_src *d, mx_side side, uint32_t type, const mx_rec_info *ri)
{
    uint32_t ordinal = 0;
    int which = !ri ? (side == MX_SIDE_LIBXL ? ORD_OPT_LIBXL : ORD_OPT_LIBXC)
                    : (int)type + (side == MX_SIDE_LIBXL ? ORD_LIBXL : 0);
    if ((!ri || ri->inst == MX_INST_ORDINAL) && next_ordinal(d, which, &ordinal))
        return d->err.status;
    const uint8_t *p = d->body.data;
    uint32_t len = (uint32_t)d->body.len;
    mx_rec_device(side, type, ri, p, len, ordinal, d->dev_path, &d->dev_schema, &d->dev_instance);
    d->dev_version = side == MX_SIDE_LIBXL ? MX_LIBXL_VERSION : d->version;
    d->dev_state.len = 0;
    int rc = mx_rec_state(&d->dev_state, side, type, ri, p, len);
    if (rc)
        return mx_fail(&d->err, rc, d->roff, d->rwhat, "out of memory encoding its DEVICE state");
    push_device(d, d->roff, d->rwhat);
    return 0;
}

/* ------------------------------------------------------------- headers */

static int read_libxl_header(mx_src *d)
{
    const char *what = "libxl header";
    int rc = mx_in_read(&d->in, d->libxl_raw, MX_LIBXL_HEADER_SIZE, 0, what);
    if (rc)
        return rc;
    uint32_t version = mx_be32(d->libxl_raw + 8), opt = mx_be32(d->libxl_raw + 12);
    if (version != MX_LIBXL_VERSION)
        return mx_fail(&d->err, MS_EVERSION, 8, what,
                       "version %u (the libxl format read is version 2)", version);
    if (opt & MX_LIBXL_OPT_BIG_ENDIAN)
        return mx_fail(&d->err, MS_EFEATURE, 12, what,
                       "a big-endian stream (options bit 0); Xen's restore refuses it too");
    d->libxl = true;
    d->st.libxl = true;
    return 0;
}

/* The image and domain headers, at @off. */
static int read_libxc_headers(mx_src *d, uint64_t off)
{
    const char *what = "libxc image header";
    uint8_t *h = d->hdr_raw, *dh = d->hdr_raw + MX_IHDR_SIZE;
    int rc = mx_in_read(&d->in, h, sizeof d->hdr_raw, off, what);
    if (rc)
        return rc;
    if (mx_be64(h) != MX_IHDR_MARKER)
        return mx_fail(&d->err, MS_EMAGIC, off, what,
                       "marker 0x%016llx is not 0xffffffffffffffff (a stream of Xen 4.5 or older, "
                       "whose first bytes are not all ones, is converted by Xen's "
                       "convert-legacy-stream)",
                       (unsigned long long)mx_be64(h));
    if (mx_be32(h + 8) != MX_IHDR_ID)
        return mx_fail(&d->err, MS_EMAGIC, off + 8, what, "id 0x%08x is not 0x58454e46 (\"XENF\")",
                       mx_be32(h + 8));
    uint32_t version = mx_be32(h + 12);
    if (version != 2 && version != 3)
        return mx_fail(&d->err, MS_EVERSION, off + 12, what,
                       "version %u (versions 2 and 3 of the libxc format are read)", version);
    /* Bits 1-15 and the reserved fields are ignored, as the spec says a
     * restore must. */
    if (mx_be16(h + 16) & MX_IHDR_OPT_BIG_ENDIAN)
        return mx_fail(&d->err, MS_EFEATURE, off + 16, what,
                       "a big-endian stream (options bit 0); Xen's restore refuses it too");
    what = "libxc domain header";
    uint32_t type = msi_get32(dh);
    unsigned shift = msi_get16(dh + 4);
    if (!mx_domain_name(type))
        return mx_fail(&d->err, MS_EFEATURE, off + 24, what,
                       "domain type 0x%x (x86 PV 0x1 and x86 HVM 0x2 are read)", type);
    if (shift != MX_PAGE_SHIFT)
        return mx_fail(&d->err, MS_EFEATURE, off + 28, what,
                       "page_shift %u: pages of 4096 bytes (page_shift 12) are read", shift);
    d->have_hdr = true;
    d->hdr_off = off;
    d->version = version;
    d->domain = type;
    d->libxc_started = true;
    d->st.version = version;
    d->st.domain_type = type;
    d->st.xen_major = msi_get32(dh + 8);
    d->st.xen_minor = msi_get32(dh + 12);
    snprintf(d->machine, sizeof d->machine, "%s", mx_domain_name(type));
    mx_rules_init(&d->rules, version, type);
    return 0;
}

static int header_device(mx_src *d)
{
    d->dev_state.len = 0;
    if (mx_header_state(&d->dev_state, d->hdr_raw))
        return mx_fail(&d->err, MS_ENOMEM, d->hdr_off, "libxc image header", "out of memory");
    snprintf(d->dev_path, sizeof d->dev_path, "%s", MX_PATH_HEADER);
    d->dev_schema = "LIBXC_HEADER";
    d->dev_instance = 0;
    d->dev_version = d->version;
    push_device(d, d->hdr_off, "libxc image header");
    d->state = ST_LIBXC_REC;
    return 0;
}

/* ------------------------------------------------------------- records */

/* Reads a record header at the cursor: type and body length. */
static int record_header(mx_src *d, mx_side side, uint32_t *type, uint32_t *len)
{
    uint8_t h[MX_RHDR_SIZE];
    d->roff = mx_in_offset(&d->in);
    uint64_t *index = side == MX_SIDE_LIBXL ? &d->libxl_index : &d->libxc_index;
    snprintf(d->rwhat, sizeof d->rwhat, "%s record %llu", side == MX_SIDE_LIBXL ? "libxl" : "libxc",
             (unsigned long long)*index);
    int rc = mx_in_read(&d->in, h, sizeof h, d->roff, d->rwhat);
    if (rc)
        return rc;
    *type = msi_get32(h);
    *len = msi_get32(h + 4);
    const mx_rec_info *ri = mx_rec_lookup(side, *type);
    if (ri)
        snprintf(d->rwhat, sizeof d->rwhat, "%s record %llu (%s)",
                 side == MX_SIDE_LIBXL ? "libxl" : "libxc", (unsigned long long)*index, ri->name);
    else
        snprintf(d->rwhat, sizeof d->rwhat, "%s record %llu (type 0x%08x)",
                 side == MX_SIDE_LIBXL ? "libxl" : "libxc", (unsigned long long)*index, *type);
    ++*index;
    d->st.records++;
    if (!ri && !(*type & MX_REC_OPTIONAL))
        return mx_fail(&d->err, MS_EUNKNOWN, d->roff, d->rwhat,
                       "a mandatory record type (bit 31 clear) that this importer does not know: "
                       "a restore must fail on it");
    return 0;
}

/* Reads a body of @len bytes into d->body, the buffer growing as the bytes
 * arrive, and skips its padding (ignored, as a restore must). */
static int read_body(mx_src *d, uint32_t len)
{
    if (len > d->o.max_record_size)
        return mx_fail(&d->err, MS_ELIMIT, d->roff, d->rwhat,
                       "a body of %u bytes exceeds max_record_size (%u)", len,
                       d->o.max_record_size);
    d->body.len = 0;
    uint32_t left = len;
    while (left) {
        uint32_t k = left < READ_CHUNK ? left : READ_CHUNK;
        uint8_t *p = msi_buf_grow(&d->body, k);
        if (!p)
            return mx_fail(&d->err, MS_ENOMEM, d->roff, d->rwhat, "out of memory");
        int rc = mx_in_read(&d->in, p, k, d->roff, d->rwhat);
        if (rc)
            return rc;
        left -= k;
    }
    return mx_in_skip(&d->in, mx_padded(len) - len, d->roff, d->rwhat);
}

static int check_record(mx_src *d, const mx_rec_info *ri)
{
    char why[256];
    const char *bad = mx_rec_check(ri, d->version, d->domain, d->body.data, (uint32_t)d->body.len,
                                   why, sizeof why);
    if (bad)
        return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat, "%s", bad);
    if (ri->side == MX_SIDE_LIBXC && (bad = mx_rules_next(&d->rules, ri->type, d->body.data,
                                                          (uint32_t)d->body.len, why, sizeof why)))
        return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat, "%s", bad);
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* PAGE_DATA: u32 count, u32 reserved, count pfn entries, then a page for
 * every entry whose type has data. The entries are read and checked whole
 * here; the pages follow one step at a time (ST_ENTRY). */
static int page_data(mx_src *d, uint32_t len)
{
    char why[256];
    const char *bad;
    if (len < 16)
        return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                       "a body of %u bytes; PAGE_DATA holds its count, a reserved word and at "
                       "least one pfn (16 bytes)",
                       len);
    if ((bad = mx_rules_next(&d->rules, MX_PAGE_DATA, NULL, len, why, sizeof why)))
        return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat, "%s", bad);
    uint8_t h[8];
    int rc = mx_in_read(&d->in, h, 8, d->roff, d->rwhat);
    if (rc)
        return rc;
    uint32_t count = msi_get32(h);
    if (count == 0)
        return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                       "count 0 (a PAGE_DATA record describes at least one page)");
    if (count > d->o.max_batch_pfns)
        return mx_fail(&d->err, MS_ELIMIT, d->roff, d->rwhat,
                       "count %u exceeds max_batch_pfns (%u)", count, d->o.max_batch_pfns);
    if (8 + 8 * (uint64_t)count > len)
        return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                       "count %u needs %llu bytes of pfns, the body holds %u", count,
                       (unsigned long long)(8 * (uint64_t)count), len);
    d->pfns.len = 0;
    for (uint64_t left = 8 * (uint64_t)count; left;) {
        size_t k = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
        uint8_t *p = msi_buf_grow(&d->pfns, k);
        if (!p)
            return mx_fail(&d->err, MS_ENOMEM, d->roff, d->rwhat, "out of memory");
        if ((rc = mx_in_read(&d->in, p, k, d->roff, d->rwhat)))
            return rc;
        left -= k;
    }
    /* An HVM guest's pfns map to one region, declared with the first page. */
    if (d->domain == MS_XEN_DOMAIN_HVM && mx_pages_end(d->pages) == 0 &&
        mx_pages_add_region(d->pages, 0, d->max_pfns))
        return mx_fail(&d->err, MS_ENOMEM, d->roff, d->rwhat, "out of memory");
    if (d->changed_cap < count) {
        uint64_t *n = msi_realloc(d->alloc, d->changed, (size_t)count * sizeof *n);
        if (!n)
            return mx_fail(&d->err, MS_ENOMEM, d->roff, d->rwhat, "out of memory");
        d->changed = n;
        d->changed_cap = count;
    }
    uint64_t with_data = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = msi_get64(d->pfns.data + 8 * (size_t)i);
        unsigned t = (unsigned)(e >> MX_TYPE_SHIFT);
        uint64_t pfn = e & MX_PFN_MASK, idx;
        uint32_t rid;
        /* Bits 52-59 are reserved: ignored, as a restore must. */
        if (!mx_page_type_known(t))
            return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                           "pfn[%u] 0x%llx has page type 0x%x, which is reserved (a restore "
                           "refuses unknown page types)",
                           i, (unsigned long long)pfn, t);
        if (!mx_pages_locate(d->pages, pfn, &rid, &idx)) {
            if (d->domain == MS_XEN_DOMAIN_HVM || pfn >= d->max_pfns)
                return mx_fail(&d->err, MS_ELIMIT, d->roff, d->rwhat,
                               "pfn[%u] 0x%llx lies beyond max_guest_bytes (%llu: pfns below "
                               "0x%llx)",
                               i, (unsigned long long)pfn, (unsigned long long)d->o.max_guest_bytes,
                               (unsigned long long)d->max_pfns);
            return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                           "pfn[%u] 0x%llx lies beyond the guest's last pfn 0x%llx "
                           "(X86_PV_P2M_FRAMES)",
                           i, (unsigned long long)pfn,
                           (unsigned long long)(mx_pages_end(d->pages) - 1));
        }
        with_data += mx_page_type_has_data(t) ? 1 : 0;
    }
    uint64_t want = 8 + 8 * (uint64_t)count + MX_PAGE_SIZE * with_data;
    if (len != want)
        return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                       "count %u with %llu pages of data needs a body of %llu bytes, not %u", count,
                       (unsigned long long)with_data, (unsigned long long)want, len);
    /* Each entry's type replaces its pfn's, in entry order (a pfn twice
     * takes the later one's, as Xen's restore sets them); the blocks whose
     * types changed go out before the record's first page. */
    d->nchanged = d->next_changed = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = msi_get64(d->pfns.data + 8 * (size_t)i);
        unsigned t = (unsigned)(e >> MX_TYPE_SHIFT);
        uint64_t pfn = e & MX_PFN_MASK;
        if (mx_types_kept(t) && pfn >= MX_TYPES_PFN_LIMIT)
            return mx_fail(&d->err, MS_ELIMIT, d->roff, d->rwhat,
                           "pfn[%u] 0x%llx has page type 0x%x, and types are kept for pfns below "
                           "2^44 only",
                           i, (unsigned long long)pfn, t);
        int set = mx_types_set(d->kept, pfn, t);
        if (set < 0)
            return mx_fail(&d->err, set, d->roff, d->rwhat,
                           set == MS_ELIMIT ? "more than %u pfns with page types kept at once"
                                            : "out of memory keeping page types (%u at most)",
                           MX_TYPES_MAX);
        if (set == 1 && (!d->nchanged || d->changed[d->nchanged - 1] != pfn >> MX_TYPES_SHIFT))
            d->changed[d->nchanged++] = pfn >> MX_TYPES_SHIFT;
    }
    if (d->nchanged > 1) {
        qsort(d->changed, d->nchanged, sizeof *d->changed, compare_u64);
        size_t k = 1;
        for (size_t i = 1; i < d->nchanged; i++)
            if (d->changed[i] != d->changed[k - 1])
                d->changed[k++] = d->changed[i];
        d->nchanged = k;
    }
    for (uint32_t i = 0; i < count; i++)
        d->st.pages[msi_get64(d->pfns.data + 8 * (size_t)i) >> MX_TYPE_SHIFT]++;
    d->st.page_data++;
    d->count = count;
    d->entry = 0;
    d->page_off = d->roff;
    snprintf(d->page_what, sizeof d->page_what, "%s", d->rwhat);
    d->state = ST_ENTRY;
    return 0;
}

/* The regions not declared yet go out with the next REGIONS record, which
 * takes them when it is handed out. */
static void push_regions(mx_src *d, uint64_t off, const char *what)
{
    push(d, IT_REGIONS, off, what);
}

/* One pfn entry of the PAGE_DATA record being read, with its page. */
static int page_entry(mx_src *d)
{
    uint64_t e = msi_get64(d->pfns.data + 8 * (size_t)d->entry);
    unsigned t = (unsigned)(e >> MX_TYPE_SHIFT);
    uint64_t pfn = e & MX_PFN_MASK, idx;
    uint32_t rid = 0;
    mx_pages_locate(d->pages, pfn, &rid, &idx); /* checked with the entries */
    if (d->entry_ready) {
        /* The round is decided: the blocks of page types come next. */
    } else if (!d->any_page) {
        if (d->domain == MS_XEN_DOMAIN_HVM)
            push_regions(d, d->page_off, d->page_what);
        d->any_page = true;
        item *it = push(d, IT_ROUND, d->page_off, d->page_what);
        it->round = (ms_round){.number = 0, .tracker = MS_TRACKER_NONE};
        d->st.rounds++;
    } else if (d->force_round || pfn <= d->last_pfn) {
        /* Xen's saver sends each iteration in ascending pfn order: a pfn
         * not above the last one starts the next. After VERIFY, the saver
         * sends all of memory again; after CHECKPOINT, the next
         * checkpoint's dirty pages. */
        seal_pages(d);
        item *it = push(d, IT_ROUND, d->page_off, d->page_what);
        bool full = d->force_round == 2;
        it->round = (ms_round){.number = ++d->round,
                               .tracker = full ? MS_TRACKER_NONE : MS_TRACKER_BITMAP,
                               .granularity = full ? 0 : MX_PAGE_SIZE};
        d->st.rounds++;
    }
    d->force_round = 0;
    d->entry_ready = true;
    if (d->entry == 0 && d->next_changed < d->nchanged) {
        /* One block of page types a step, as it stands after this record. */
        uint64_t block = d->changed[d->next_changed++];
        size_t n;
        const uint64_t *types = mx_types_block(d->kept, block, &n);
        d->types.len = 0;
        uint8_t *w = n ? msi_buf_grow(&d->types, 8 * n) : NULL;
        if (n && !w)
            return mx_fail(&d->err, MS_ENOMEM, d->page_off, d->page_what, "out of memory");
        for (size_t i = 0; i < n; i++)
            msi_put64(w + 8 * i, types[i]);
        d->dev_state.len = 0;
        if (mx_page_types_state(&d->dev_state, d->types.data, n))
            return mx_fail(&d->err, MS_ENOMEM, d->page_off, d->page_what, "out of memory");
        snprintf(d->dev_path, sizeof d->dev_path, "%s", MX_PATH_PAGE_TYPES);
        d->dev_schema = "PAGE_DATA";
        d->dev_instance = (uint32_t)block;
        d->dev_version = d->version;
        push_device(d, d->page_off, d->page_what);
        return 0;
    }
    d->entry_ready = false;
    uint8_t state = mx_page_type_has_data(t) ? MS_PAGE_DATA
                    : t == MX_PT_XALLOC      ? MS_PAGE_ZERO
                                             : MS_PAGE_DISCARDED;
    uint8_t *data = NULL;
    bool first = mx_pages_empty(d->pages);
    int rc = mx_pages_add(d->pages, rid, idx, state, &data);
    if (rc < 0)
        return mx_fail(&d->err, rc == MS_ENOMEM ? MS_ENOMEM : MS_ESTATE, d->page_off, d->page_what,
                       "%s", rc == MS_ENOMEM ? "out of memory" : "page queue");
    if (rc == 1)
        push(d, IT_PAGES, d->open_off, d->open_what);
    if (rc == 1 || first) {
        d->open_off = d->page_off;
        memcpy(d->open_what, d->page_what, sizeof d->open_what);
    }
    if (data && (rc = mx_in_read(&d->in, data, MX_PAGE_SIZE, d->page_off, d->page_what)))
        return rc;
    d->last_pfn = pfn;
    if (++d->entry == d->count)
        d->state = ST_LIBXC_REC;
    return 0;
}

static int libxc_record(mx_src *d)
{
    uint32_t type, len;
    int rc = record_header(d, MX_SIDE_LIBXC, &type, &len);
    if (rc)
        return rc;
    if (type == MX_PAGE_DATA)
        return page_data(d, len);
    if ((rc = read_body(d, len)))
        return rc;
    const mx_rec_info *ri = mx_rec_lookup(MX_SIDE_LIBXC, type);
    if (!ri) {
        d->st.optional++;
        return record_device(d, MX_SIDE_LIBXC, type, NULL);
    }
    if ((rc = check_record(d, ri)))
        return rc;
    switch (type) {
    case MX_END:
        d->libxc_ended = true;
        d->state = d->libxl ? ST_LIBXL_REC : ST_FINISH;
        return 0;
    case MX_CHECKPOINT:
        d->st.checkpoints++;
        d->force_round = 1;
        /* libxc hands the stream to libxl, whose records run to
         * CHECKPOINT_END. */
        if (d->libxl) {
            d->in_ckpt = true;
            d->ckpt_off = d->roff;
            d->state = ST_LIBXL_REC;
        }
        break;
    case MX_VERIFY:
        d->force_round = 2;
        break;
    case MX_X86_PV_P2M_FRAMES: {
        uint64_t end = (uint64_t)msi_get32(d->body.data + 4) + 1, have = mx_pages_end(d->pages);
        if (end > d->max_pfns)
            return mx_fail(&d->err, MS_ELIMIT, d->roff, d->rwhat,
                           "p2m_end_pfn 0x%llx lies beyond max_guest_bytes (%llu: pfns below "
                           "0x%llx)",
                           (unsigned long long)(end - 1), (unsigned long long)d->o.max_guest_bytes,
                           (unsigned long long)d->max_pfns);
        /* The p2m may grow during a live migration: the new pfns get a
         * region of their own. */
        if (end > have) {
            if (mx_pages_add_region(d->pages, have, end - have))
                return mx_fail(&d->err, MS_ENOMEM, d->roff, d->rwhat, "out of memory");
            seal_pages(d);
            push_regions(d, d->roff, d->rwhat);
        }
        break;
    }
    default:
        break;
    }
    return record_device(d, MX_SIDE_LIBXC, type, ri);
}

static int libxl_record(mx_src *d)
{
    uint32_t type, len;
    int rc = record_header(d, MX_SIDE_LIBXL, &type, &len);
    if (rc || (rc = read_body(d, len)))
        return rc;
    const mx_rec_info *ri = mx_rec_lookup(MX_SIDE_LIBXL, type);
    if (!ri) {
        d->st.optional++;
        return record_device(d, MX_SIDE_LIBXL, type, NULL);
    }
    if ((rc = check_record(d, ri)))
        return rc;
    switch (type) {
    case MX_XL_END:
        if (d->in_ckpt)
            return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                           "END inside a checkpoint (after the libxc CHECKPOINT at offset %llu, "
                           "before CHECKPOINT_END)",
                           (unsigned long long)d->ckpt_off);
        if (!d->libxc_started)
            return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                           "END without a LIBXC_CONTEXT: the stream holds no domain");
        d->state = ST_FINISH;
        return 0;
    case MX_XL_LIBXC_CONTEXT:
        if (d->libxc_started)
            return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                           "a second LIBXC_CONTEXT (the libxc stream is handed over once)");
        d->libxc_started = true;
        d->state = ST_LIBXC_HDRS;
        return 0;
    case MX_XL_CHECKPOINT_END:
        if (!d->in_ckpt)
            return mx_fail(&d->err, MS_ECORRUPT, d->roff, d->rwhat,
                           "CHECKPOINT_END outside a checkpoint (no libxc CHECKPOINT before it)");
        d->in_ckpt = false;
        d->state = ST_LIBXC_REC;
        break;
    default:
        break;
    }
    return record_device(d, MX_SIDE_LIBXL, type, ri);
}

static int finish(mx_src *d)
{
    bool end;
    uint64_t off = mx_in_offset(&d->in);
    int rc = mx_in_at_end(&d->in, &end, off, "END");
    if (rc)
        return rc;
    if (!end)
        return mx_fail(&d->err, MS_ECORRUPT, off, "the stream", "bytes follow the %s END record",
                       d->libxl ? "libxl" : "libxc");
    seal_pages(d);
    push(d, IT_END, off, "END");
    d->state = ST_DONE;
    return 0;
}

/* Does one step; the records it queues are handed out before the next. */
static int step(mx_src *d)
{
    switch (d->state) {
    case ST_LIBXL_HDR:
        d->dev_state.len = 0;
        if (mx_libxl_header_state(&d->dev_state, d->libxl_raw))
            return mx_fail(&d->err, MS_ENOMEM, 0, "libxl header", "out of memory");
        snprintf(d->dev_path, sizeof d->dev_path, "%s", MX_PATH_LIBXL_HEADER);
        d->dev_schema = "LIBXL_HEADER";
        d->dev_instance = 0;
        d->dev_version = MX_LIBXL_VERSION;
        push_device(d, 0, "libxl header");
        d->state = d->have_hdr ? ST_LIBXC_HDR : ST_LIBXL_REC;
        return 0;
    case ST_LIBXC_HDR:
        return header_device(d);
    case ST_LIBXC_HDRS: {
        int rc = read_libxc_headers(d, mx_in_offset(&d->in));
        return rc ? rc : header_device(d);
    }
    case ST_LIBXL_REC:
        return libxl_record(d);
    case ST_LIBXC_REC:
        return libxc_record(d);
    case ST_ENTRY:
        return page_entry(d);
    case ST_FINISH:
        return finish(d);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------- the ops */

static int bid(const uint8_t *head, size_t len)
{
    if (len >= 8 && mx_be64(head) == MX_LIBXL_IDENT)
        return len < 12 || mx_be32(head + 8) == MX_LIBXL_VERSION ? 100 : 10;
    if (len >= 8 && mx_be64(head) == MX_IHDR_MARKER) {
        if (len < 12)
            return 50;
        if (mx_be32(head + 8) != MX_IHDR_ID)
            return 0;
        uint32_t v = len >= 16 ? mx_be32(head + 12) : 3;
        return v == 2 || v == 3 ? 100 : 10;
    }
    /* xl's save file: Xen's, but its header is not read (open says so). */
    if (len >= MX_XL_MAGIC_LEN && memcmp(head, MX_XL_MAGIC, MX_XL_MAGIC_LEN) == 0)
        return 10;
    return 0;
}

static int sync_error(msi_source *s, mx_src *d)
{
    return msi_source_fail(s, d->err.status ? d->err.status : MS_ENOMEM, d->err.offset, "%s",
                           d->err.msg);
}

static int open_stream(msi_source *s, mx_src *d)
{
    if (!s->io.read)
        return mx_fail(&d->err, MS_EINVAL, 0, "input", "no read callback");
    if (mx_in_open(&d->in, d->alloc, s->io.read, s->io.read_ctx, &d->err) ||
        !(d->pages = mx_pages_new(d->alloc)) || !(d->kept = mx_types_new(d->alloc)))
        return mx_fail(&d->err, MS_ENOMEM, 0, "input", "out of memory");
    int rc = mx_in_fill(&d->in, MX_XL_MAGIC_LEN, 0, "stream header");
    if (rc)
        return rc;
    const uint8_t *h = mx_in_peek(&d->in);
    size_t n = mx_in_avail(&d->in);
    if (n >= MX_XL_MAGIC_LEN && memcmp(h, MX_XL_MAGIC, MX_XL_MAGIC_LEN) == 0)
        return mx_fail(&d->err, MS_EMAGIC, 0, "stream header",
                       "an `xl save` file: xl's own header (\"Xen saved domain, xl format\") and "
                       "the domain's configuration come before the libxl stream, which is what "
                       "is read");
    if (n >= 8 && mx_be64(h) == MX_LIBXL_IDENT) {
        if ((rc = read_libxl_header(d)))
            return rc;
        /* libxl sends LIBXC_CONTEXT first: its headers name the guest. */
        if ((rc = mx_in_fill(&d->in, MX_RHDR_SIZE, MX_LIBXL_HEADER_SIZE, "libxl record 0")))
            return rc;
        h = mx_in_peek(&d->in);
        if (mx_in_avail(&d->in) >= MX_RHDR_SIZE && msi_get32(h) == MX_XL_LIBXC_CONTEXT &&
            msi_get32(h + 4) == 0) {
            d->in.pos += MX_RHDR_SIZE;
            d->libxl_index = 1;
            d->st.records++;
            if ((rc = read_libxc_headers(d, MX_LIBXL_HEADER_SIZE + MX_RHDR_SIZE)))
                return rc;
        }
        d->state = ST_LIBXL_HDR;
    } else if (n >= 8 && mx_be64(h) == MX_IHDR_MARKER) {
        if ((rc = read_libxc_headers(d, 0)))
            return rc;
        d->state = ST_LIBXC_HDR;
    } else if (n < 8) {
        return mx_fail(&d->err, MS_ETRUNCATED, 0, "stream header",
                       "the stream ends after %zu bytes, before a libxl or libxc header", n);
    } else {
        return mx_fail(&d->err, MS_EMAGIC, 0, "stream header",
                       "neither a libxl stream (\"LibxlFmt\") nor a libxc one (eight 0xff bytes, "
                       "\"XENF\")");
    }
    s->header.major = MS_FORMAT_MAJOR;
    s->header.page_size = MX_PAGE_SIZE;
    s->header.required_features = MS_FEATURE_DISCARDED;
    /* The version a libmigstream stream of the same contents would carry
     * (FORMAT.md section 11.2), not the newest this library knows. */
    s->header.minor = msi_minor_for(s->header.required_features);
    snprintf(s->header.writer_name, sizeof s->header.writer_name, "xen");
    if (d->have_hdr) {
        snprintf(s->header.writer_version, sizeof s->header.writer_version, "%u.%u",
                 d->st.xen_major, d->st.xen_minor);
        s->info.machine = d->machine;
        /* INFO comes first, before the DEVICE of the header at offset 0. */
        push(d, IT_INFO, 0, "libxc domain header");
    }
    return 0;
}

static int src_open(msi_source *s)
{
    mx_src *d = msi_calloc(&s->alloc, 1, sizeof *d);
    if (!d)
        return msi_source_fail(s, MS_ENOMEM, 0, "input at offset 0: out of memory");
    s->state = d;
    d->alloc = &s->alloc;
    ms_xen_import_options_init(&d->o);
    if (s->options) { /* the caller's, by common.h's "Growing structs" */
        const ms_xen_import_options *o = s->options;
        const char *why = msi_struct_take(&d->o, MSI_STRUCT_END(ms_xen_import_options, allocator),
                                          o, o->struct_size);
        if (why)
            return msi_source_fail(s, MS_EINVAL, 0, "invalid Xen options: %s", why);
        d->o.struct_size = sizeof d->o;
    }
    d->o.writer = NULL;
    const char *why = mx_options_defaults(&d->o);
    if (why)
        return msi_source_fail(s, MS_EINVAL, 0, "invalid import options: %s", why);
    d->max_pfns = d->o.max_guest_bytes / MX_PAGE_SIZE;
    msi_buf_init(&d->body, d->alloc);
    msi_buf_init(&d->pfns, d->alloc);
    msi_buf_init(&d->types, d->alloc);
    msi_buf_init(&d->dev_state, d->alloc);
    return open_stream(s, d) ? sync_error(s, d) : 0;
}

/* Fills d->rec from the oldest queued record: 1, 0 when it turned out to
 * hold nothing (REGIONS without new regions), or MS_ENOMEM. */
static int hand_out(mx_src *d, const item *it)
{
    ms_record *rec = &d->rec;
    memset(rec, 0, sizeof *rec);
    rec->offset = it->offset;
    switch (it->kind) {
    case IT_INFO:
        rec->type = MS_REC_INFO;
        rec->info.machine = d->machine;
        break;
    case IT_REGIONS:
        rec->type = MS_REC_REGIONS;
        rec->flags = MS_RECORD_MUST_UNDERSTAND;
        if (mx_pages_new_regions(d->pages, &rec->regions, &rec->region_count))
            return MS_ENOMEM;
        if (!rec->region_count)
            return 0;
        break;
    case IT_ROUND:
        rec->type = MS_REC_ROUND;
        rec->round = it->round;
        d->totals.rounds++;
        break;
    case IT_PAGES:
        mx_pages_take(d->pages, rec, d->totals.pages);
        break;
    case IT_DEVICE:
        rec->type = MS_REC_DEVICE;
        rec->flags = MS_RECORD_MUST_UNDERSTAND;
        rec->device = (ms_device){.path = d->dev_path,
                                  .instance = d->dev_instance,
                                  .schema = d->dev_schema,
                                  .version = d->dev_version,
                                  .state = d->dev_state.data,
                                  .state_size = d->dev_state.len};
        d->totals.devices++;
        d->st.devices++;
        break;
    default:
        rec->type = MS_REC_END;
        rec->flags = MS_RECORD_MUST_UNDERSTAND;
        d->totals.bytes = mx_in_offset(&d->in);
        rec->totals = d->totals;
        break;
    }
    return 1;
}

static int src_next(msi_source *s, const ms_record **out)
{
    mx_src *d = s->state;
    for (;;) {
        while (d->qn) {
            item *it = &d->q[d->qh];
            d->qh = (d->qh + 1) % QUEUE;
            d->qn--;
            int got = hand_out(d, it);
            if (got < 0) {
                mx_fail(&d->err, got, it->offset, it->what, "out of memory");
                return sync_error(s, d);
            }
            if (!got)
                continue;
            d->last = *it;
            d->rec.index = d->totals.records++;
            d->rec.known = true;
            *out = &d->rec;
            return 1;
        }
        if (d->state == ST_DONE)
            return 0;
        int rc = step(d);
        if (rc < 0 || d->err.status)
            return sync_error(s, d);
    }
}

static void src_close(msi_source *s)
{
    mx_src *d = s->state;
    if (!d)
        return;
    mx_pages_free(d->pages);
    msi_buf_free(&d->body);
    msi_buf_free(&d->pfns);
    msi_buf_free(&d->types);
    msi_buf_free(&d->dev_state);
    msi_free(d->alloc, d->changed);
    mx_types_free(d->kept);
    mx_in_close(&d->in, d->alloc);
    msi_free(d->alloc, d);
    s->state = NULL;
}

/* The exporter with its default options. */
static int src_export(ms_read_fn in, void *in_ctx, ms_write_fn out, void *out_ctx, char *err,
                      size_t err_size)
{
    return mx_export(NULL, in, in_ctx, out, out_ctx, NULL, err, err_size);
}

const msi_source_ops mx_source_ops = {
    .name = "xen",
    .title = "Xen migration stream v2",
    .bid = bid,
    .open = src_open,
    .next = src_next,
    .close = src_close,
    .export = src_export,
};

/* ------------------------------------------------------ for the importer */

uint64_t mx_source_offset(const msi_source *s)
{
    const mx_src *d = s->state;
    return d && d->in.buf ? mx_in_offset(&d->in) : 0;
}

void mx_source_stats(const msi_source *s, ms_xen_import_stats *out)
{
    const mx_src *d = s->state;
    memset(out, 0, sizeof *out);
    if (!d)
        return;
    *out = d->st;
    out->bytes_read = d->in.buf ? mx_in_offset(&d->in) : 0;
}

int mx_source_writer_failed(msi_source *s, const msi_copy_stop *stop, ms_writer *w, int rc)
{
    mx_src *d = s->state;
    int st = ms_writer_status(w) ? ms_writer_status(w) : rc;
    const char *msg = ms_writer_errmsg(w);
    const ms_record *rec = stop->rec;
    if (rec && rec->type == MS_REC_PAGES) {
        /* The page: extents counted as msi_source_copy() counts them. */
        uint64_t first = 0, pfn = 0;
        const ms_pages *p = &rec->pages;
        for (size_t i = 0; i < p->extent_count; i++) {
            if (stop->item < first + p->extents[i].count) {
                pfn = p->region->gpa / MX_PAGE_SIZE + p->extents[i].first + (stop->item - first);
                break;
            }
            first += p->extents[i].count;
        }
        mx_fail(&d->err, st, d->last.offset, d->last.what, "pfn 0x%llx: writing the output: %s",
                (unsigned long long)pfn, msg);
    } else if (rec && rec->type == MS_REC_DEVICE) {
        mx_fail(&d->err, st, d->last.offset, d->last.what,
                "device '%s' instance %u: writing the output: %s", rec->device.path,
                rec->device.instance, msg);
        d->st.devices--;
    } else {
        mx_fail(&d->err, st, d->last.offset, d->last.what, "writing the output: %s", msg);
    }
    return sync_error(s, d);
}
