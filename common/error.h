/* The project's error codes: one enumeration for every module, returned as negative ints
 * (libuv's convention). The range is disjoint from libuv's (negative errno values and
 * -3000..-4095) and from SQLite's result codes (positive), so that a code passed up through
 * any layer still says what it is. reint_strerror() names each, and libuv's too. */
#ifndef COMMON_ERROR_H
#define COMMON_ERROR_H

enum reint_error {
    REINT_OK = 0,
    REINT_ENOMEM = -20001,     /* out of memory */
    REINT_EDB = -20002,        /* the store (SQLite or PostgreSQL) failed; the cause was logged */
    REINT_EIO = -20003,        /* a file could not be opened, read or written */
    REINT_EINVAL = -20004,     /* a value was refused; the accompanying message names it */
    REINT_ENOTFOUND = -20005,  /* no such item */
    REINT_EEXIST = -20006,     /* the item exists already */
    REINT_ETOOBIG = -20007,    /* above a size limit */
    REINT_EMALFORMED = -20008, /* not a valid encoding (protobuf, JSON, hex) */
    REINT_ERANGE = -20009,     /* outside a table's range (a BS date, a config value) */
    REINT_ETOOLONG = -20010,   /* a CSV field or line above its limit */
    REINT_EQUOTE = -20011,     /* a CSV quote that does not close */
    REINT_EKEY = -20012,       /* an unknown key id, or a key that cannot be read */
    REINT_ESIGNATURE = -20013, /* a signature that does not verify */
    REINT_EREPLAY = -20014,    /* a serial not above the last one held */
    REINT_EQUEUE = -20015,     /* a bounded queue is full; retry later */
    REINT_ESTOP = -20016,      /* the component is stopping */
    REINT_EFAULT = -20017,     /* a test fault hook fired (test builds and runs only) */
    REINT_EVERSION = -20018,   /* a protocol version this peer does not serve */
    REINT_EPROTO = -20019,     /* the peer broke the protocol */
    REINT_EFORBIDDEN = -20020, /* an identity that may not do this */
    REINT_ESTALE = -20021,     /* the item changed since the caller read it */
};

/* A sentence naming code: one of the above, a libuv code, or 0. Never NULL; static. */
const char *reint_strerror(int code);

#endif
