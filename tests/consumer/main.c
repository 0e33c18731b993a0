/* A program built against an installed persipubsub. */
#include <persipubsub/persipubsub.h>

#include <stdio.h>
#include <string.h>

int
main(void)
{
    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, "/nonexistent/config.json");
    if (rc != PPS_ECONFIG || cfg != NULL ||
        strstr(pps_last_error(), "/nonexistent/config.json") == NULL) {
        fprintf(stderr, "unexpected: %s %s\n", pps_status_name(rc),
                pps_last_error());
        return 1;
    }
    printf("linked persipubsub %s\n", pps_version());
    return 0;
}
