/*
 * The library's version, as built (PPS_VERSION_STRING comes from CMake's
 * project version; the header's PPS_VERSION_* macros are the API's).
 */
#include "internal.h"

const char *
pps_version(void)
{
    return PPS_VERSION_STRING;
}
