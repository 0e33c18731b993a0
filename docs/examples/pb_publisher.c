/*
 * A protobuf publisher: sends COUNT demo.Reading messages (demo.proto) as
 * component PUB_ID, one every INTERVAL_MS milliseconds.
 *
 *   pps-example-pb-publisher CONFIG PUB_ID COUNT [INTERVAL_MS]
 *
 * Build it on its own with:
 *
 *   protoc-c --c_out=. demo.proto
 *   cc -std=c11 -o pb_publisher pb_publisher.c demo.pb-c.c \
 *       $(pkg-config --cflags --libs persipubsub-protobuf)
 */
#define _POSIX_C_SOURCE 200809L

#include "demo.pb-c.h"

#include <persipubsub/protobuf.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Fills a Reading on the stack and sends it. */
static int
send_reading(pps_pub *pub, uint64_t seq)
{
    Demo__Sensor sensor = DEMO__SENSOR__INIT;
    sensor.id = "t-101";
    sensor.kind = DEMO__SENSOR__KIND__TEMPERATURE;
    sensor.location = "boiler room";

    double values[] = {20.0 + (double)(seq % 5), 20.25, 20.5};
    char *tags[] = {"calibrated", "celsius"};
    uint8_t frame[] = {0x02, 0x41, 0xa0, 0x03};

    Demo__Reading reading = DEMO__READING__INIT;
    reading.seq = seq;
    reading.taken_ns = now_ns();
    reading.sensor = &sensor;
    reading.n_values = sizeof(values) / sizeof(values[0]);
    reading.values = values;
    reading.n_tags = sizeof(tags) / sizeof(tags[0]);
    reading.tags = tags;
    reading.raw.len = sizeof(frame);
    reading.raw.data = frame;
    reading.quality = DEMO__QUALITY__GOOD;

    /* Packed on the stack and sent: on disk when it returns. */
    return pps_pub_send_pb(pub, &reading.base);
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG PUB_ID COUNT [INTERVAL_MS]\n",
                argv[0]);
        return 2;
    }
    long count = strtol(argv[3], NULL, 10);
    long interval_ms = argc > 4 ? strtol(argv[4], NULL, 10) : 0;

    pps_config *cfg = NULL;
    pps_pub *pub = NULL;
    int rc = pps_config_load(&cfg, argv[1]);
    if (rc == PPS_OK) {
        rc = pps_pub_open(&pub, cfg, argv[2]);
    }
    for (long i = 0; rc == PPS_OK && i < count; i++) {
        rc = send_reading(pub, (uint64_t)i);
        if (rc == PPS_OK) {
            printf("[%s] sent reading %ld\n", argv[2], i);
            fflush(stdout);
        }
        if (interval_ms > 0) {
            struct timespec ts = {interval_ms / 1000,
                                  (interval_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != PPS_OK) {
        fprintf(stderr, "pb_publisher: %s: %s\n", pps_strerror(rc),
                pps_last_error());
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    return rc == PPS_OK ? 0 : 1;
}
