/* The version (src/version.c): the string and the macros agree. */
#include "persipubsub/persipubsub.h"

#include <criterion/criterion.h>
#include <stdio.h>

Test(version, string_and_macros_agree, .timeout = 10)
{
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", PPS_VERSION_MAJOR,
             PPS_VERSION_MINOR, PPS_VERSION_PATCH);
    cr_assert_str_eq(pps_version(), want);
    cr_assert_eq(PPS_VERSION_NUMBER, PPS_VERSION_MAJOR * 10000 +
                                         PPS_VERSION_MINOR * 100 +
                                         PPS_VERSION_PATCH);
}
