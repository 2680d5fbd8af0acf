/*
 * The order of a libxc stream's records (rules.h). The spec's words
 * (libxc-migration-stream.pandoc revision 3, sections 5 and 6.1) decide;
 * Xen's restore refuses the same streams (a PAGE_DATA before
 * STATIC_DATA_END, a second X86_PV_INFO, an X86_PV_P2M_FRAMES whose length
 * does not match its pfn range).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "xen/rules.h"

void mx_rules_init(mx_rules *r, uint32_t version, uint32_t domain)
{
    memset(r, 0, sizeof *r);
    r->version = version;
    r->domain = domain;
}

/* Memory and register content: after STATIC_DATA_END in version 3. */
static bool content(uint32_t type)
{
    switch (type) {
    case MX_PAGE_DATA:
    case MX_X86_PV_P2M_FRAMES:
    case MX_X86_PV_VCPU_BASIC:
    case MX_X86_PV_VCPU_EXTENDED:
    case MX_X86_PV_VCPU_XSAVE:
    case MX_X86_PV_VCPU_MSRS:
    case MX_SHARED_INFO:
    case MX_X86_TSC_INFO:
    case MX_HVM_CONTEXT:
    case MX_HVM_PARAMS:
        return true;
    default:
        return false;
    }
}

bool mx_rules_need_static_end(const mx_rules *r, uint32_t type)
{
    return r->version >= 3 && !r->static_end && content(type);
}

__attribute__((format(printf, 3, 4))) static const char *say(char *why, size_t size,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(why, size, fmt, ap);
    va_end(ap);
    return why;
}

const char *mx_rules_next(mx_rules *r, uint32_t type, const uint8_t *p, uint32_t len, char *why,
                          size_t size)
{
    if (mx_rules_need_static_end(r, type))
        return say(why, size,
                   "memory and register content before STATIC_DATA_END (a version 3 "
                   "stream sends it ahead of them)");
    bool pv = r->domain == MS_XEN_DOMAIN_PV;
    switch (type) {
    case MX_STATIC_DATA_END:
        if (r->static_end)
            return say(why, size, "a second STATIC_DATA_END");
        r->static_end = true;
        break;
    case MX_X86_CPUID_POLICY:
    case MX_X86_MSR_POLICY:
        if (r->static_end)
            return say(why, size,
                       "a CPU policy after STATIC_DATA_END, which ends the static "
                       "data");
        break;
    case MX_X86_PV_INFO:
        if (r->pv_info)
            return say(why, size, "a second X86_PV_INFO");
        r->pv_info = true;
        r->width = p[0];
        break;
    case MX_X86_PV_P2M_FRAMES: {
        if (!r->pv_info)
            return say(why, size,
                       "X86_PV_P2M_FRAMES before X86_PV_INFO, which gives the guest "
                       "width it needs");
        /* One p2m frame holds 4096 / width entries. */
        uint32_t fpp = MX_PAGE_SIZE / r->width, start = msi_get32(p), end = msi_get32(p + 4);
        uint64_t frames = (uint64_t)(end / fpp) + 1 - start / fpp;
        if (len != 8 + 8 * frames)
            return say(why, size,
                       "pfns 0x%x to 0x%x need %llu p2m frames (%llu bytes), the body "
                       "holds %u bytes",
                       start, end, (unsigned long long)frames, (unsigned long long)(8 + 8 * frames),
                       len);
        r->p2m = true;
        break;
    }
    case MX_PAGE_DATA:
        if (pv && !r->p2m)
            return say(why, size, "PAGE_DATA before X86_PV_P2M_FRAMES in a PV stream");
        r->pages = true;
        break;
    case MX_X86_PV_VCPU_BASIC:
    case MX_X86_PV_VCPU_EXTENDED:
    case MX_X86_PV_VCPU_XSAVE:
    case MX_X86_PV_VCPU_MSRS:
        if (!r->pages)
            return say(why, size,
                       "a vCPU record before any PAGE_DATA (a PV stream sends them "
                       "after its memory)");
        break;
    case MX_SHARED_INFO:
        if (!r->pv_info)
            return say(why, size, "SHARED_INFO before X86_PV_INFO");
        break;
    case MX_HVM_PARAMS:
        r->params = true;
        break;
    case MX_HVM_CONTEXT:
        if (!r->params)
            return say(why, size,
                       "HVM_CONTEXT before any HVM_PARAMS (they must precede it: "
                       "some parameters decide what the context may hold)");
        break;
    default:
        break;
    }
    return NULL;
}
