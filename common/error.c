#include "error.h"

#include <uv.h>

const char *reint_strerror(int code)
{
    switch ((enum reint_error)code) {
    case REINT_OK:
        return "success";
    case REINT_ENOMEM:
        return "out of memory";
    case REINT_EDB:
        return "the store failed";
    case REINT_EIO:
        return "a file could not be read or written";
    case REINT_EINVAL:
        return "invalid value";
    case REINT_ENOTFOUND:
        return "not found";
    case REINT_EEXIST:
        return "already exists";
    case REINT_ETOOBIG:
        return "above the size limit";
    case REINT_EMALFORMED:
        return "malformed encoding";
    case REINT_ERANGE:
        return "out of range";
    case REINT_ETOOLONG:
        return "field or line too long";
    case REINT_EQUOTE:
        return "unterminated quote";
    case REINT_EKEY:
        return "unknown or unreadable key";
    case REINT_ESIGNATURE:
        return "signature does not verify";
    case REINT_EREPLAY:
        return "serial not above the last one held";
    case REINT_EQUEUE:
        return "queue full";
    case REINT_ESTOP:
        return "stopping";
    case REINT_EFAULT:
        return "test fault injected";
    case REINT_EVERSION:
        return "protocol version not supported";
    case REINT_EPROTO:
        return "protocol error";
    case REINT_EFORBIDDEN:
        return "forbidden";
    case REINT_ESTALE:
        return "changed since it was read";
    }
    if (code < 0 && code > -20000)
        return uv_strerror(code);
    return "unknown error";
}
