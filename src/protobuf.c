/*
 * protobuf-c helpers (persipubsub/protobuf.h), built as the companion
 * library persipubsub-protobuf.
 *
 * Written on the public API alone, as any user could: a protobuf message is
 * an ordinary persipubsub message whose payload is its encoding. The core
 * library thus stays free of a protobuf-c dependency, and programs that do
 * not use protobuf do not link it.
 *
 * Sending packs small messages into a stack buffer (no heap allocation on
 * the common path). Receiving unpacks inside the zero-copy callback of
 * pps_sub_receive(), straight from the memory map, and frees the unpacked
 * message when the user's callback returns. A payload that does not unpack
 * is refused by the inner callback, so pps_sub_receive() keeps it (it
 * answers PPS_ECALLBACK) and this layer turns that into PPS_EDECODE: never
 * dropped, as for any refused message.
 */
#include <persipubsub/protobuf.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Packed messages up to this size never touch the heap. */
#define STACK_PACK_BYTES 4096

/* What the inner callback tells pps_sub_receive(); any non-zero value keeps
 * the message. Distinct values only help debugging: the outcome is also
 * recorded in the context. */
enum { ACCEPT = 0, USER_REFUSED = 1, NOT_DECODED = 2, NO_MEMORY = 3 };

static bool
is_message_descriptor(const ProtobufCMessageDescriptor *d)
{
    return d != NULL && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

int
pps_pub_send_pb(pps_pub *pub, const ProtobufCMessage *msg)
{
    if (pub == NULL) {
        return pps_error_set(PPS_EINVAL, "pps_pub_send_pb: pub is NULL");
    }
    /* protobuf-c asserts on a bad descriptor; check it first, then the
     * message (required fields, NULL pointers) so that packing cannot
     * crash on the caller's input. */
    if (msg == NULL || !is_message_descriptor(msg->descriptor)) {
        return pps_error_set(PPS_EINVAL, msg == NULL
                                             ? "pps_pub_send_pb: msg is NULL"
                                             : "pps_pub_send_pb: msg has no "
                                               "valid message descriptor");
    }
    if (!protobuf_c_message_check(msg)) {
        char text[256];
        snprintf(text, sizeof(text),
                 "pps_pub_send_pb: %s is not valid (a required field is "
                 "missing or a pointer is NULL); nothing was sent",
                 msg->descriptor->name);
        return pps_error_set(PPS_EINVAL, text);
    }
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t stack[STACK_PACK_BYTES];
    uint8_t *buf = stack;
    if (len > sizeof(stack)) {
        buf = malloc(len);
        if (buf == NULL) {
            return pps_error_set(PPS_ENOMEM, "pps_pub_send_pb: out of memory");
        }
    }
    size_t packed = protobuf_c_message_pack(msg, buf);
    int status = packed == len
                     ? pps_pub_send(pub, buf, len)
                     : pps_error_set(PPS_EINVAL, "pps_pub_send_pb: packing "
                                                 "gave an unexpected size");
    if (buf != stack) {
        free(buf);
    }
    return status;
}

struct receive_ctx {
    const ProtobufCMessageDescriptor *type;
    pps_receive_pb_fn fn;
    void *user;
    ProtobufCAllocator allocator; /* malloc/free, noting a failure */
    bool out_of_memory;           /* an allocation of the unpack failed */
    int outcome;                  /* what the inner callback answered */
    uint64_t id;                  /* the message it was handed */
    size_t len;
};

/* protobuf-c reports a failed allocation and a malformed payload alike
 * (NULL); this allocator tells them apart. */
static void *
unpack_alloc(void *data, size_t size)
{
    void *p = malloc(size);
    if (p == NULL) {
        ((struct receive_ctx *)data)->out_of_memory = true;
    }
    return p;
}

static void
unpack_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static int
on_raw(const pps_message *raw, void *user)
{
    struct receive_ctx *ctx = user;
    ctx->out_of_memory = false;
    ctx->id = raw->id;
    ctx->len = raw->len;
    ProtobufCMessage *msg = protobuf_c_message_unpack(
        ctx->type, &ctx->allocator, raw->len, raw->data);
    if (msg == NULL) {
        ctx->outcome = ctx->out_of_memory ? NO_MEMORY : NOT_DECODED;
        return ctx->outcome;
    }
    int rc = ctx->fn(msg, raw, ctx->user);
    protobuf_c_message_free_unpacked(msg, &ctx->allocator);
    ctx->outcome = rc == 0 ? ACCEPT : USER_REFUSED;
    return ctx->outcome;
}

int
pps_sub_receive_pb(pps_sub *sub, const ProtobufCMessageDescriptor *type,
                   int timeout_ms, pps_receive_pb_fn fn, void *user)
{
    if (sub == NULL || fn == NULL || !is_message_descriptor(type)) {
        return pps_error_set(PPS_EINVAL,
                             sub == NULL ? "pps_sub_receive_pb: sub is NULL"
                             : fn == NULL
                                 ? "pps_sub_receive_pb: fn is NULL"
                                 : "pps_sub_receive_pb: type is not a "
                                   "message descriptor");
    }
    struct receive_ctx ctx = {
        .type = type,
        .fn = fn,
        .user = user,
        .allocator = {unpack_alloc, unpack_free, NULL},
        .outcome = ACCEPT,
    };
    ctx.allocator.allocator_data = &ctx;
    int status = pps_sub_receive(sub, timeout_ms, on_raw, &ctx);
    if (status == PPS_ECALLBACK) {
        /* The core kept the message; say why it was refused. */
        char text[512];
        if (ctx.outcome == NOT_DECODED) {
            snprintf(text, sizeof(text),
                     "message %llu (%zu bytes) does not unpack as %s; it was "
                     "kept",
                     (unsigned long long)ctx.id, ctx.len, type->name);
            status = pps_error_set(PPS_EDECODE, text);
        } else if (ctx.outcome == NO_MEMORY) {
            snprintf(text, sizeof(text),
                     "message %llu: out of memory unpacking %s; it was kept",
                     (unsigned long long)ctx.id, type->name);
            status = pps_error_set(PPS_ENOMEM, text);
        }
    }
    return status;
}
