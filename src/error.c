/*
 * Status codes and the thread-local detail of the last failure.
 *
 * Every public function calls pps__err_begin() first. The first detail
 * recorded after that wins (the innermost cause), so outer layers may call
 * pps__err() freely on their way out without hiding it. A successful call
 * leaves the previous detail alone.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_text[1024];
static _Thread_local unsigned err_call;  /* bumped by pps__err_begin() */
static _Thread_local unsigned err_owner; /* the call that wrote err_text */

const char *
pps_strerror(int status)
{
    switch (status) {
    case PPS_OK:
        return "success";
#define PPS__STATUS_TEXT(name, value, text)                                    \
    case PPS_##name:                                                           \
        return text;
        PPS_STATUS_MAP(PPS__STATUS_TEXT)
#undef PPS__STATUS_TEXT
    default:
        return "unknown status";
    }
}

const char *
pps_status_name(int status)
{
    switch (status) {
    case PPS_OK:
        return "PPS_OK";
#define PPS__STATUS_NAME(name, value, text)                                    \
    case PPS_##name:                                                           \
        return "PPS_" #name;
        PPS_STATUS_MAP(PPS__STATUS_NAME)
#undef PPS__STATUS_NAME
    default:
        return "PPS_UNKNOWN";
    }
}

const char *
pps_last_error(void)
{
    return err_text;
}

int
pps_error_set(int status, const char *detail)
{
    pps__err_begin();
    return pps__err(status, "%s", detail != NULL ? detail : "");
}

void
pps__err_begin(void)
{
    err_call++;
    if (err_call == err_owner) {
        err_call++; /* after wrap-around, never match a stale owner */
    }
}

int
pps__err(int status, const char *fmt, ...)
{
    if (err_owner == err_call && err_text[0] != '\0') {
        return status;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_text, sizeof(err_text), fmt, ap);
    va_end(ap);
    err_owner = err_call;
    return status;
}

int
pps__err_rc(int rc, const char *what, const char *path)
{
    int status;
    switch (rc) {
    case MDB_MAP_FULL:
    case MDB_DBS_FULL:
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
    case EDQUOT:
        status = PPS_EFULL;
        break;
    case ENOMEM:
        status = PPS_ENOMEM;
        break;
    default:
        status = PPS_ESTORAGE;
        break;
    }
    const char *hint = "";
    if (rc == MDB_MAP_FULL) {
        hint = " (raise max_db_size_bytes, or prune or clear the queue)";
    } else if (rc == MDB_DBS_FULL) {
        hint = " (raise max_db_num)";
    } else if (rc == MDB_READERS_FULL) {
        hint = " (raise max_reader_num)";
    }
    /* mdb_strerror() covers errno values too. */
    if (path != NULL) {
        return pps__err(status, "%s: %s: %s%s", path, what, mdb_strerror(rc),
                        hint);
    }
    return pps__err(status, "%s: %s%s", what, mdb_strerror(rc), hint);
}

int
pps__err_notinit(const char *path, const char *what)
{
    return pps__err(PPS_ENOTINIT, "%s: %s; run persipubsub-ctl init", path,
                    what);
}

int
pps__err_foreign(const char *path, const char *what)
{
    return pps__err(PPS_EFOREIGN,
                    "%s: not a persipubsub queue (%s); left untouched", path,
                    what);
}

int
pps__err_nomem(void)
{
    return pps__err(PPS_ENOMEM, "out of memory");
}
