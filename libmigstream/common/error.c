/*
 * Status names and the library version (common.h): the error model every
 * layer shares; the text helpers every message and every JSON input from
 * elsewhere go through (ms_escape_text, msi_vformat, ms_json_values).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "migstream/common.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *ms_version_string(void)
{
    return STR(MS_VERSION_MAJOR) "." STR(MS_VERSION_MINOR) "." STR(MS_VERSION_PATCH);
}

const char *ms_strerror(int status)
{
    switch (status) {
    case MS_OK: return "MS_OK: success";
    case MS_ENOMEM: return "MS_ENOMEM: out of memory";
    case MS_EINVAL: return "MS_EINVAL: invalid argument";
    case MS_EIO: return "MS_EIO: input/output error";
    case MS_ETRUNCATED: return "MS_ETRUNCATED: stream truncated";
    case MS_EMAGIC: return "MS_EMAGIC: not a libmigstream stream";
    case MS_EVERSION: return "MS_EVERSION: unsupported format version";
    case MS_EFEATURE: return "MS_EFEATURE: unsupported required feature";
    case MS_ECHECKSUM: return "MS_ECHECKSUM: checksum mismatch";
    case MS_ECORRUPT: return "MS_ECORRUPT: malformed stream";
    case MS_EUNKNOWN: return "MS_EUNKNOWN: unknown must-understand record";
    case MS_ELIMIT: return "MS_ELIMIT: size or count beyond a limit";
    case MS_ESTATE: return "MS_ESTATE: call not valid in this state";
    case MS_ECBOR: return "MS_ECBOR: malformed CBOR";
    case MS_ECOMPRESS: return "MS_ECOMPRESS: compressed data could not be decoded";
    case MS_EAGAIN: return "MS_EAGAIN: would block (wait until ready, then repeat the call)";
    default: return "unknown status";
    }
}

void msi_io_cause(char *buf, size_t size, long long ret, int err)
{
    if (ret == -1 && err)
        snprintf(buf, size, "returned -1, errno %d (%s)", err, strerror(err));
    else if (ret < 0 && ret > -4096 && err && err != -ret)
        snprintf(buf, size, "returned %lld (%s), errno %d (%s)", ret, strerror((int)-ret), err,
                 strerror(err));
    else if (ret < 0 && ret > -4096)
        snprintf(buf, size, "returned %lld (%s)", ret, strerror((int)-ret));
    else if (err)
        snprintf(buf, size, "returned %lld, errno %d (%s)", ret, err, strerror(err));
    else
        snprintf(buf, size, "returned %lld", ret);
}

/* Bytes of the well-formed UTF-8 sequence at @p (1 to 4), or 0 when it is
 * none (a stray continuation, an overlong form, a surrogate, past
 * U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n)
        return 0;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    return n;
}

size_t ms_escape_text(char *dst, size_t size, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t out = 0, end = 0; /* end: where the NUL goes, once full */
    bool full = size == 0;
    while (*p) {
        size_t n = utf8_seq(p);
        /* C1 controls: U+0080..U+009F, 0xc2 0x80..0x9f. */
        bool escape = n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)) ||
                      (n == 2 && p[0] == 0xc2 && p[1] <= 0x9f);
        size_t take = n ? n : 1, len = escape ? 4 * take : take;
        if (!full && out + len < size) {
            for (size_t k = 0; k < take; k++) {
                if (escape) {
                    dst[out + 4 * k] = '\\';
                    dst[out + 4 * k + 1] = 'x';
                    dst[out + 4 * k + 2] = hex[p[k] >> 4];
                    dst[out + 4 * k + 3] = hex[p[k] & 15];
                } else {
                    dst[out + k] = (char)p[k];
                }
            }
        } else if (!full) {
            full = true; /* nothing more is written: not part of an escape */
            end = out;
        }
        out += len;
        p += take;
    }
    if (size)
        dst[full ? end : out] = 0;
    return out;
}

void msi_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    char raw[2048];
    if (!size)
        return;
    vsnprintf(raw, sizeof raw < size ? sizeof raw : size, fmt, ap);
    ms_escape_text(buf, size, raw);
}

size_t ms_json_values(const void *text, size_t size)
{
    const uint8_t *p = text;
    size_t v = 1;
    bool in_string = false;
    for (size_t i = 0; p && i < size; i++) {
        if (in_string) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_string = false;
        } else if (p[i] == '"') {
            in_string = true;
        } else {
            v += p[i] == ',' || p[i] == ':' || p[i] == '[' || p[i] == '{';
        }
    }
    return v;
}
