/*
 * Status names and the library version (common.h): the error model every
 * layer shares.
 */
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
