/*
 * Hypervisor overlay pages (FORMAT.md section 7.2, include/migstream/
 * overlay.h): the kinds with their fixed priorities, the parameter rules,
 * the contents each kind rebuilds, and the OVERLAY payload codec.
 *
 * Contents follow the Hyper-V TLFS: the hypercall page holds the vendor's
 * hypercall instruction and RET; the reference TSC page is
 * {u32 sequence, u32 reserved, u64 scale, i64 offset} with
 * time = ((tsc * scale) >> 64) + offset in 100 ns units; the SynIC message
 * and event-flags pages are 16 slots of 256 bytes, one per SINT.
 */
#include <stdio.h>

#include "migstream/overlay.h"
#include "format/payload.h"

enum { OV_GFN = 0, OV_KIND = 1, OV_PARAMS = 2 };
enum { HC_VENDOR = 0 };
enum { TSC_SEQUENCE = 0, TSC_SCALE = 1, TSC_OFFSET = 2, TSC_FREQUENCY = 3 };
enum { SYNIC_VP = 0, SYNIC_SLOTS = 1 };

#define HV_MESSAGE_PAYLOAD_MAX 240u /* HV_MESSAGE: 16-byte header, 240 payload */
#define TSC_REFERENCE_HZ 10000000u  /* 100 ns units */

/* Fixed forever (section 7.2): a new kind gets a new priority; none moves. */
static const struct {
    unsigned kind;
    const char *name;
    unsigned priority;
} kinds[] = {
    {MS_OVERLAY_HYPERCALL, "HYPERCALL", 400},
    {MS_OVERLAY_REFERENCE_TSC, "REFERENCE_TSC", 300},
    {MS_OVERLAY_SYNIC_MESSAGE, "SYNIC_MESSAGE", 200},
    {MS_OVERLAY_SYNIC_EVENT_FLAGS, "SYNIC_EVENT_FLAGS", 100},
};

const char *ms_overlay_kind_name(unsigned kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return NULL;
}

unsigned ms_overlay_priority(unsigned kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].kind == kind)
            return kinds[i].priority;
    return 0;
}

size_t ms_overlay_active(const ms_overlay *set, size_t n)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++)
        if (best == n || ms_overlay_priority(set[i].kind) > ms_overlay_priority(set[best].kind))
            best = i;
    return best;
}

static bool is_synic(unsigned kind)
{
    return kind == MS_OVERLAY_SYNIC_MESSAGE || kind == MS_OVERLAY_SYNIC_EVENT_FLAGS;
}

/* (10^7 << 64) / hz, the TLFS scale; hz > 10^7 keeps it below 2^64. */
static uint64_t tsc_scale(uint64_t hz)
{
#ifdef __SIZEOF_INT128__
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)TSC_REFERENCE_HZ << 64) / hz);
#else
    /* Long division, one bit at a time: the dividend is 10^7 * 2^64. */
    uint64_t q = 0, rem = TSC_REFERENCE_HZ % hz;
    for (int i = 0; i < 64; i++) {
        bool carry = rem >> 63;
        rem <<= 1;
        q <<= 1;
        if (carry || rem >= hz) {
            rem -= hz;
            q |= 1;
        }
    }
    return q;
#endif
}

static const char *problem(const ms_overlay *o)
{
    if (!msi_reserved_zero(o->reserved, sizeof o->reserved / sizeof o->reserved[0]))
        return "reserved words are not zero (a field of a newer version this library does not know)";
    if (o->gfn > MS_MAX_GFN)
        return "frame number is beyond 52 bits";
    switch (o->kind) {
    case MS_OVERLAY_HYPERCALL:
        return o->hypercall.vendor > 2 ? "hypercall vendor is not 0 (stub), 1 (Intel) or 2 (AMD)"
                                       : NULL;
    case MS_OVERLAY_REFERENCE_TSC:
        if (o->tsc.has_frequency && o->tsc.frequency <= TSC_REFERENCE_HZ)
            return "TSC frequency must be above 10 MHz (the scale would not fit 64 bits)";
        return NULL;
    case MS_OVERLAY_SYNIC_MESSAGE:
    case MS_OVERLAY_SYNIC_EVENT_FLAGS:
        for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++) {
            if (!(o->synic.slot_mask & (1u << s)))
                continue;
            if (!o->synic.slot[s])
                return "a SynIC slot marked present has no contents";
            if (o->kind == MS_OVERLAY_SYNIC_MESSAGE &&
                o->synic.slot[s][4] > HV_MESSAGE_PAYLOAD_MAX)
                return "a SynIC message's payload size is above 240 bytes";
        }
        return NULL;
    default:
        return "unknown overlay kind";
    }
}

int ms_overlay_check(const ms_overlay *o, char *why, size_t why_size)
{
    const char *p = o ? problem(o) : "overlay is NULL";
    if (p && why && why_size) {
        const char *name = o ? ms_overlay_kind_name(o->kind) : NULL;
        if (o && name)
            snprintf(why, why_size, "%s overlay at frame 0x%llx: %s", name,
                     (unsigned long long)o->gfn, p);
        else if (o)
            snprintf(why, why_size, "overlay of kind %u at frame 0x%llx: %s", o->kind,
                     (unsigned long long)o->gfn, p);
        else
            snprintf(why, why_size, "%s", p);
    }
    return p ? MS_EINVAL : MS_OK;
}

int ms_overlay_render(const ms_overlay *o, uint8_t *page)
{
    /* Hypercall instruction sequences, each followed by zeros. */
    static const uint8_t stub[] = {0x48, 0xC7, 0xC0, 0x02, 0, 0, 0, 0xC3}; /* mov rax,2; ret */
    static const uint8_t vmcall[] = {0x0F, 0x01, 0xC1, 0xC3};              /* vmcall; ret */
    static const uint8_t vmmcall[] = {0x0F, 0x01, 0xD9, 0xC3};             /* vmmcall; ret */
    if (!o || !page || problem(o))
        return MS_EINVAL;
    memset(page, 0, MS_OVERLAY_PAGE_SIZE);
    switch (o->kind) {
    case MS_OVERLAY_HYPERCALL: {
        const uint8_t *seq = o->hypercall.vendor == 1 ? vmcall
                           : o->hypercall.vendor == 2 ? vmmcall : stub;
        memcpy(page, seq, o->hypercall.vendor ? sizeof vmcall : sizeof stub);
        break;
    }
    case MS_OVERLAY_REFERENCE_TSC:
        msi_put32(page, o->tsc.has_frequency ? 1 : o->tsc.sequence);
        msi_put64(page + 8, o->tsc.has_frequency ? tsc_scale(o->tsc.frequency) : o->tsc.scale);
        msi_put64(page + 16, (uint64_t)o->tsc.offset);
        break;
    default: /* SynIC pages */
        for (unsigned s = 0; s < MS_SYNIC_SLOTS; s++)
            if (o->synic.slot_mask & (1u << s))
                memcpy(page + s * MS_SYNIC_SLOT_SIZE, o->synic.slot[s], MS_SYNIC_SLOT_SIZE);
    }
    return MS_OK;
}

/* ------------------------------------------------------------------ codec */

static int encode_params(msi_buf *b, const ms_overlay *o)
{
    int rc;
    switch (o->kind) {
    case MS_OVERLAY_HYPERCALL:
        rc = msi_cbor_put_map(b, 1);
        rc = rc ? rc : msi_cbor_put_uint(b, HC_VENDOR);
        return rc ? rc : msi_cbor_put_uint(b, o->hypercall.vendor);
    case MS_OVERLAY_REFERENCE_TSC: {
        bool off = o->tsc.offset != 0;
        if (o->tsc.has_frequency) {
            rc = msi_cbor_put_map(b, 1 + off);
        } else {
            rc = msi_cbor_put_map(b, 2 + off);
            rc = rc ? rc : msi_cbor_put_uint(b, TSC_SEQUENCE);
            rc = rc ? rc : msi_cbor_put_uint(b, o->tsc.sequence);
            rc = rc ? rc : msi_cbor_put_uint(b, TSC_SCALE);
            rc = rc ? rc : msi_cbor_put_uint(b, o->tsc.scale);
        }
        if (off) {
            rc = rc ? rc : msi_cbor_put_uint(b, TSC_OFFSET);
            rc = rc ? rc : msi_cbor_put_int(b, o->tsc.offset);
        }
        if (o->tsc.has_frequency) {
            rc = rc ? rc : msi_cbor_put_uint(b, TSC_FREQUENCY);
            rc = rc ? rc : msi_cbor_put_uint(b, o->tsc.frequency);
        }
        return rc;
    }
    default: { /* SynIC */
        unsigned slots = (unsigned)__builtin_popcount(o->synic.slot_mask);
        rc = msi_cbor_put_map(b, 1 + (slots != 0));
        rc = rc ? rc : msi_cbor_put_uint(b, SYNIC_VP);
        rc = rc ? rc : msi_cbor_put_uint(b, o->synic.vp);
        if (slots) {
            rc = rc ? rc : msi_cbor_put_uint(b, SYNIC_SLOTS);
            rc = rc ? rc : msi_cbor_put_map(b, slots);
            for (unsigned s = 0; s < MS_SYNIC_SLOTS && !rc; s++) {
                if (!(o->synic.slot_mask & (1u << s)))
                    continue;
                rc = msi_cbor_put_uint(b, s);
                rc = rc ? rc : msi_cbor_put_bytes(b, o->synic.slot[s], MS_SYNIC_SLOT_SIZE);
            }
        }
        return rc;
    }
    }
}

int msi_overlays_encode(msi_buf *b, const ms_overlay *o, size_t count)
{
    int rc = msi_cbor_put_array(b, count);
    for (size_t i = 0; i < count && !rc; i++) {
        rc = msi_cbor_put_map(b, 3);
        rc = rc ? rc : msi_cbor_put_uint(b, OV_GFN);
        rc = rc ? rc : msi_cbor_put_uint(b, o[i].gfn);
        rc = rc ? rc : msi_cbor_put_uint(b, OV_KIND);
        rc = rc ? rc : msi_cbor_put_uint(b, o[i].kind);
        rc = rc ? rc : msi_cbor_put_uint(b, OV_PARAMS);
        rc = rc ? rc : encode_params(b, &o[i]);
    }
    return rc;
}


static int unknown_param(msi_cbor_in *in, const char *kind, uint64_t key, msi_perr *e)
{
    /* Parameters decide contents: one a reader does not know could change
     * them, so it is an error, not skipped (section 7.2). */
    return msi_perr_set(e, MS_ECORRUPT, in->pos, "%s overlay: unknown parameter key %llu", kind,
                        (unsigned long long)key);
}

static int decode_params(msi_cbor_in *in, ms_overlay *o, msi_perr *e)
{
    msi_cbor_map m;
    uint64_t key;
    int rc;
    size_t at = in->pos;
    const char *kind = ms_overlay_kind_name(o->kind);
    if ((rc = msi_cbor_map_open(in, &m)))
        return msi_perr_cbor(e, rc, in, "overlay parameters (key 2)");
    while ((rc = msi_cbor_map_key(in, &m, &key)) == 1) {
        switch (o->kind) {
        case MS_OVERLAY_HYPERCALL:
            rc = key == HC_VENDOR ? msi_get_u32(in, &o->hypercall.vendor, "hypercall vendor", e)
                                  : unknown_param(in, kind, key, e);
            break;
        case MS_OVERLAY_REFERENCE_TSC:
            if (key == TSC_SEQUENCE)
                rc = msi_get_u32(in, &o->tsc.sequence, "TSC sequence", e);
            else if (key == TSC_SCALE || key == TSC_FREQUENCY) {
                uint64_t *dst = key == TSC_SCALE ? &o->tsc.scale : &o->tsc.frequency;
                if ((rc = msi_cbor_get_uint(in, dst)))
                    rc = msi_perr_cbor(e, rc, in, "TSC parameter");
                o->tsc.has_frequency |= key == TSC_FREQUENCY;
            } else if (key == TSC_OFFSET) {
                if ((rc = msi_cbor_get_int(in, &o->tsc.offset)))
                    rc = msi_perr_cbor(e, rc, in, "TSC offset");
            } else {
                rc = unknown_param(in, kind, key, e);
            }
            break;
        default: /* SynIC */
            if (key == SYNIC_VP) {
                rc = msi_get_u32(in, &o->synic.vp, "SynIC vp", e);
            } else if (key == SYNIC_SLOTS) {
                msi_cbor_map sm;
                uint64_t s;
                if ((rc = msi_cbor_map_open(in, &sm)))
                    return msi_perr_cbor(e, rc, in, "SynIC slots");
                while ((rc = msi_cbor_map_key(in, &sm, &s)) == 1) {
                    const uint8_t *b;
                    size_t len, sat = in->pos;
                    if (s >= MS_SYNIC_SLOTS)
                        return msi_perr_set(e, MS_ECORRUPT, sat, "SynIC slot %llu is beyond "
                                            "SINT 15", (unsigned long long)s);
                    if ((rc = msi_cbor_get_bytes(in, &b, &len)))
                        return msi_perr_cbor(e, rc, in, "SynIC slot");
                    if (len != MS_SYNIC_SLOT_SIZE)
                        return msi_perr_set(e, MS_ECORRUPT, sat, "SynIC slot %llu holds %zu "
                                            "bytes, not 256", (unsigned long long)s, len);
                    o->synic.slot[s] = b;
                    o->synic.slot_mask |= (uint16_t)(1u << s);
                }
                if (rc < 0)
                    return msi_perr_cbor(e, rc, in, "SynIC slots");
                rc = 0;
            } else {
                rc = unknown_param(in, kind, key, e);
            }
        }
        if (rc)
            return rc;
    }
    if (rc < 0)
        return msi_perr_cbor(e, rc, in, "overlay parameters");
    /* Required parameters per kind. */
    const char *missing = NULL;
    if (o->kind == MS_OVERLAY_HYPERCALL && !(m.seen & (1u << HC_VENDOR)))
        missing = "vendor (key 0)";
    else if (o->kind == MS_OVERLAY_REFERENCE_TSC) {
        bool explicit_ = (m.seen & (1u << TSC_SEQUENCE)) && (m.seen & (1u << TSC_SCALE));
        bool any_explicit = m.seen & ((1u << TSC_SEQUENCE) | (1u << TSC_SCALE));
        if (o->tsc.has_frequency ? any_explicit : !explicit_)
            missing = "either frequency (key 3) or both sequence (key 0) and scale (key 1)";
    } else if (is_synic(o->kind) && !(m.seen & (1u << SYNIC_VP)))
        missing = "vp (key 0)";
    if (missing)
        return msi_perr_set(e, MS_ECORRUPT, at, "%s overlay parameters need %s", kind, missing);
    return MS_OK;
}

int msi_overlays_decode(const uint8_t *p, size_t n, size_t max, const ms_allocator *a,
                        ms_overlay **outp, size_t *cap, size_t *count, msi_perr *e)
{
    msi_cbor_in in;
    msi_cbor_tok t;
    int rc;
    msi_cbor_in_init(&in, p, n);
    if ((rc = msi_cbor_next(&in, &t)))
        return msi_perr_cbor(e, rc, &in, "OVERLAY");
    if (t.kind != MSI_CBOR_ARRAY)
        return msi_perr_set(e, MS_ECBOR, 0, "OVERLAY payload is not a CBOR array");
    if (t.u == 0)
        return msi_perr_set(e, MS_ECORRUPT, 0, "OVERLAY record holds no overlay");
    /* The codec has checked the count against the bytes present; the limit
     * bounds the allocation below. */
    if (t.u > max)
        return msi_perr_set(e, MS_ELIMIT, 0, "OVERLAY holds %llu overlays; the overlay limit "
                            "leaves room for %zu more", (unsigned long long)t.u, max);
    if (t.u > *cap) {
        ms_overlay *grown = msi_realloc(a, *outp, (size_t)t.u * sizeof *grown);
        if (!grown)
            return msi_perr_set(e, MS_ENOMEM, 0, "out of memory for %llu overlays",
                                (unsigned long long)t.u);
        *outp = grown;
        *cap = (size_t)t.u;
    }
    ms_overlay *out = *outp;
    for (size_t i = 0; i < t.u; i++) {
        ms_overlay *o = &out[i];
        msi_cbor_map m;
        uint64_t key;
        size_t at = in.pos;
        memset(o, 0, sizeof *o);
        if ((rc = msi_cbor_map_open(&in, &m)))
            return msi_perr_cbor(e, rc, &in, "overlay");
        while ((rc = msi_cbor_map_key(&in, &m, &key)) == 1) {
            size_t kat = in.pos;
            uint64_t v;
            if (key == OV_PARAMS) {
                if (!(m.seen & (1u << OV_KIND)))
                    break; /* reported below as a missing kind */
                if ((rc = decode_params(&in, o, e)))
                    return rc;
                continue;
            }
            if (key > OV_PARAMS) { /* a later minor's key: ignored (FORMAT.md section 11.2) */
                if ((rc = msi_skip_unknown(&in, e, (int64_t)i, key,
                                           "overlay unknown key")))
                    return rc;
                continue;
            }
            if ((rc = msi_cbor_get_uint(&in, &v)))
                return msi_perr_cbor(e, rc, &in, "overlay field");
            if (key == OV_GFN) {
                o->gfn = v;
            } else {
                if (!ms_overlay_kind_name(v > UINT32_MAX ? 0 : (unsigned)v))
                    return msi_perr_set(e, MS_ECORRUPT, kat, "overlay %zu: unknown kind %llu", i,
                                        (unsigned long long)v);
                o->kind = (uint32_t)v;
            }
        }
        if (rc < 0)
            return msi_perr_cbor(e, rc, &in, "overlay");
        if ((m.seen & 7) != 7)
            return msi_perr_set(e, MS_ECORRUPT, at, "overlay %zu lacks a required key (gfn 0, "
                                "kind 1, params 2)", i);
        const char *why = problem(o);
        if (why)
            return msi_perr_set(e, MS_ECORRUPT, at, "overlay %zu (%s at frame 0x%llx): %s", i,
                                ms_overlay_kind_name(o->kind), (unsigned long long)o->gfn, why);
    }
    if (in.pos != in.len)
        return msi_perr_set(e, MS_ECORRUPT, in.pos, "OVERLAY: %zu trailing bytes after the CBOR "
                            "item", in.len - in.pos);
    *count = (size_t)t.u;
    return MS_OK;
}
