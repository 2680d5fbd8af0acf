/*
 * The tools' chores for a migration in parts (see parts.h).
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "parts.h"

bool mst_is_parts(const ms_reader *r)
{
    return ms_reader_part_count(r) > 1;
}

const char *mst_part_prefix(ms_reader *r, const ms_record *rec, char *buf, size_t size)
{
    buf[0] = 0;
    if (!rec || !rec->part || !mst_is_parts(r))
        return buf;
    const ms_part_info *pi = ms_reader_part_info(r, rec->part->index);
    snprintf(buf, size, "part %u (%s), ", rec->part->index, pi && pi->name ? pi->name : "?");
    return buf;
}

/* ------------------------------------------------------ the round check */

#define CHUNK 4096u /* pages whose owner bytes are cleared together */

typedef struct region_map {
    uint32_t id;
    uint64_t pages;
    uint8_t *owner;    /* part + 1 that sent each page in this round, 0: none; NULL: unchecked */
    uint64_t *touched; /* a bit per CHUNK pages: the chunks that hold owners */
} region_map;

typedef struct dev_slot {
    char *path; /* NULL: free */
    uint32_t instance, part;
} dev_slot;

struct mst_round_check {
    region_map *maps;
    size_t nmaps, last;
    uint64_t bytes; /* of the page maps */
    dev_slot *devs; /* open addressing, 2 * MST_ROUND_CHECK_DEVICES slots */
    size_t ndevs;
    bool devs_full;
};

#define DEV_SLOTS (2 * MST_ROUND_CHECK_DEVICES)

mst_round_check *mst_round_check_new(void)
{
    mst_round_check *c = calloc(1, sizeof *c);
    if (c && !(c->devs = calloc(DEV_SLOTS, sizeof *c->devs))) {
        free(c);
        return NULL;
    }
    return c;
}

static void forget_devices(mst_round_check *c)
{
    for (size_t i = 0; i < DEV_SLOTS && c->ndevs; i++)
        if (c->devs[i].path) {
            free(c->devs[i].path);
            c->devs[i].path = NULL;
            c->ndevs--;
        }
}

void mst_round_check_free(mst_round_check *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nmaps; i++) {
        free(c->maps[i].owner);
        free(c->maps[i].touched);
    }
    free(c->maps);
    forget_devices(c);
    free(c->devs);
    free(c);
}

bool mst_round_check_devices_full(const mst_round_check *c)
{
    return c->devs_full;
}

/* The map of @g, made on first use; NULL when memory ran out. A region
 * past the budget gets a map without owners: unchecked. */
static region_map *map_of(mst_round_check *c, const ms_region *g, bool *fresh)
{
    *fresh = false;
    if (c->last < c->nmaps && c->maps[c->last].id == g->id)
        return &c->maps[c->last];
    for (size_t i = 0; i < c->nmaps; i++)
        if (c->maps[i].id == g->id)
            return &c->maps[c->last = i];
    region_map *m = realloc(c->maps, (c->nmaps + 1) * sizeof *m);
    if (!m)
        return NULL;
    c->maps = m;
    m = &c->maps[c->nmaps];
    memset(m, 0, sizeof *m);
    m->id = g->id;
    m->pages = g->size / g->page_size;
    uint64_t words = (m->pages + CHUNK * 64 - 1) / (CHUNK * 64);
    uint64_t need = m->pages + words * 8;
    if (need <= MST_ROUND_CHECK_BUDGET - c->bytes && need <= SIZE_MAX) {
        m->owner = calloc(1, (size_t)m->pages);
        m->touched = calloc((size_t)words, 8);
        if (!m->owner || !m->touched) {
            free(m->owner);
            free(m->touched);
            return NULL;
        }
        c->bytes += need;
    }
    *fresh = true;
    c->last = c->nmaps++;
    return m;
}

static void forget_pages(mst_round_check *c)
{
    for (size_t i = 0; i < c->nmaps; i++) {
        region_map *m = &c->maps[i];
        if (!m->owner)
            continue;
        uint64_t words = (m->pages + CHUNK * 64 - 1) / (CHUNK * 64);
        for (uint64_t w = 0; w < words; w++)
            for (uint64_t bits = m->touched[w]; bits; bits &= bits - 1) {
                uint64_t first = (w * 64 + (uint64_t)__builtin_ctzll(bits)) * CHUNK;
                uint64_t n = m->pages - first < CHUNK ? m->pages - first : CHUNK;
                memset(m->owner + first, 0, (size_t)n);
            }
        memset(m->touched, 0, (size_t)words * 8);
    }
}

static void check_pages(mst_round_check *c, const ms_record *rec, region_map *m, mst_clash_fn clash,
                        void *ctx)
{
    const uint8_t me = (uint8_t)(rec->part->index + 1);
    mst_clash k = {.part = rec->part->index, .region = rec->pages.region};
    bool open = false;
    (void)c;
    for (size_t i = 0; i < rec->pages.extent_count; i++) {
        const ms_extent *x = &rec->pages.extents[i];
        for (uint64_t p = x->first; p < x->first + x->count; p++) {
            uint8_t o = m->owner[p];
            if (o && o != me) {
                if (open && k.other == (uint32_t)(o - 1) && k.last + 1 == p) {
                    k.last = p;
                } else {
                    if (open)
                        clash(ctx, rec, &k);
                    k.other = (uint32_t)(o - 1);
                    k.first = k.last = p;
                    open = true;
                }
            }
            m->owner[p] = me;
            m->touched[p / CHUNK / 64] |= UINT64_C(1) << (p / CHUNK % 64);
        }
    }
    if (open)
        clash(ctx, rec, &k);
}

static int check_device(mst_round_check *c, const ms_record *rec, mst_clash_fn clash, void *ctx)
{
    const ms_device *d = &rec->device;
    size_t i = mst_device_hash(d->path, d->instance) % DEV_SLOTS;
    for (; c->devs[i].path; i = (i + 1) % DEV_SLOTS) {
        dev_slot *s = &c->devs[i];
        if (s->instance != d->instance || strcmp(s->path, d->path) != 0)
            continue;
        if (s->part != rec->part->index) {
            mst_clash k = {.part = rec->part->index,
                           .other = s->part,
                           .path = d->path,
                           .instance = d->instance};
            clash(ctx, rec, &k);
        }
        return 0;
    }
    if (c->ndevs == MST_ROUND_CHECK_DEVICES) {
        c->devs_full = true;
        return 0;
    }
    if (!(c->devs[i].path = strdup(d->path)))
        return -1;
    c->devs[i].instance = d->instance;
    c->devs[i].part = rec->part->index;
    c->ndevs++;
    return 0;
}

int mst_round_check_record(mst_round_check *c, const ms_record *rec, mst_clash_fn clash,
                           mst_untracked_fn untracked, void *ctx)
{
    if (rec->status)
        return 0; /* damaged: reported already, and its contents unset */
    if (rec->type == MS_REC_ROUND) {
        forget_pages(c);
        forget_devices(c);
        return 0;
    }
    if (!rec->part)
        return 0;
    if (rec->type == MS_REC_DEVICE && rec->device.path)
        return check_device(c, rec, clash, ctx);
    if (rec->type != MS_REC_PAGES || !rec->pages.region)
        return 0;
    bool fresh;
    region_map *m = map_of(c, rec->pages.region, &fresh);
    if (!m)
        return -1;
    if (!m->owner) {
        if (fresh)
            untracked(ctx, rec, rec->pages.region);
        return 0;
    }
    check_pages(c, rec, m, clash, ctx);
    return 0;
}
