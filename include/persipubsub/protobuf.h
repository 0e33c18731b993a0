/*
 * persipubsub/protobuf.h: send and receive protobuf-c messages.
 *
 * These helpers live in the companion library persipubsub-protobuf, built
 * and installed with persipubsub. Link it with
 *
 *   pkg-config --cflags --libs persipubsub-protobuf
 *
 * or, in CMake, target_link_libraries(app PRIVATE
 * persipubsub::persipubsub-protobuf) after find_package(persipubsub). It
 * brings persipubsub and libprotobuf-c with it.
 *
 * The helpers are written on the public API of persipubsub.h only: a
 * message sent with pps_pub_send_pb() is an ordinary message whose payload
 * is the protobuf encoding, so any subscriber may read it with
 * pps_sub_receive() and protobuf_c_message_unpack() itself, and the other
 * way round. The conventions of persipubsub.h hold here too: negative
 * PPS_E* statuses, one thread at a time per handle, nothing printed, no
 * exit or abort on bad input.
 */
#ifndef PERSIPUBSUB_PROTOBUF_H
#define PERSIPUBSUB_PROTOBUF_H

#include <persipubsub/persipubsub.h>
#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A receive callback for pps_sub_receive_pb().
 *
 * @param msg   the payload unpacked as the type given to
 *              pps_sub_receive_pb(); cast it to that generated type (for
 *              example `const Demo__Reading *`). Owned by the library and
 *              freed as soon as the callback returns: copy what you keep,
 *              and never free it yourself.
 * @param raw   the message as pps_sub_receive() sees it: the packed
 *              payload (zero-copy, valid only during the callback), its id
 *              and its publish time. Use raw->id to drop duplicates.
 * @param user  the pointer given to pps_sub_receive_pb().
 * @return 0 to consume the message; anything else keeps it for redelivery
 *         and pps_sub_receive_pb() returns PPS_ECALLBACK. The callback must
 *         not use the same pps_sub handle.
 */
typedef int (*pps_receive_pb_fn)(const ProtobufCMessage *msg,
                                 const pps_message *raw, void *user);

/**
 * Packs a protobuf-c message and publishes it with pps_pub_send(): one
 * message whose payload is the protobuf encoding of msg.
 *
 * A message whose packed size is at most 4 KiB is packed on the stack,
 * without any heap allocation; a larger one is packed into a temporary
 * heap buffer, freed before the call returns.
 *
 * Thread-safety: as pps_pub_send(), one thread at a time per handle; msg is
 * only read.
 *
 * @param pub  an open publisher.
 * @param msg  the message to send, for example `&reading.base` of an
 *             initialized generated struct. Owned by the caller; only read,
 *             and not used after the call returns. Its pointers must be
 *             valid, as protobuf_c_message_pack() requires.
 * @return PPS_OK (committed; on disk with durability "sync");
 *         PPS_EINVAL (pub or msg is NULL, msg has no valid descriptor, or
 *         protobuf_c_message_check() rejects it, for example a required
 *         field is missing); PPS_ENOMEM (no memory for the buffer of a
 *         large message); PPS_EFULL; PPS_EFORKED; PPS_ESTORAGE; as
 *         pps_pub_send() (detail in pps_last_error()).
 */
PPS_API int pps_pub_send_pb(pps_pub *pub, const ProtobufCMessage *msg);

/**
 * Receives the oldest pending message as pps_sub_receive() does, unpacks
 * its payload as type and hands both to fn. The unpacked message is freed
 * right after fn returns.
 *
 * A payload that does not unpack as type is never dropped: fn is not
 * called, the message stays pending, and every later call returns
 * PPS_EDECODE for it again. Read it with pps_sub_receive() to inspect it,
 * or to consume it and move on. An empty payload unpacks as a message with
 * every field at its default.
 *
 * Thread-safety: as pps_sub_receive(), one thread at a time per handle.
 *
 * @param sub         an open subscriber.
 * @param type        the generated descriptor of the expected message,
 *                    for example `&demo__reading__descriptor`.
 * @param timeout_ms  as pps_sub_receive(): 0 does not wait, negative
 *                    waits forever, positive waits up to that many
 *                    milliseconds.
 * @param fn          the callback; see pps_receive_pb_fn.
 * @param user        passed to fn untouched (may be NULL).
 * @return PPS_OK (fn returned 0: consumed); PPS_ETIMEDOUT (nothing arrived
 *         in time; fn was not called); PPS_ECALLBACK (fn returned non-zero;
 *         kept); PPS_EDECODE (the payload does not unpack as type; fn was
 *         not called and the message was kept; pps_last_error() names its
 *         id); PPS_ENOMEM (no memory to unpack it; kept); PPS_EINVAL (sub,
 *         type or fn is NULL, or type is not a message descriptor);
 *         PPS_EFORKED; PPS_ESTORAGE; as pps_sub_receive().
 */
PPS_API int pps_sub_receive_pb(pps_sub *sub,
                               const ProtobufCMessageDescriptor *type,
                               int timeout_ms, pps_receive_pb_fn fn,
                               void *user);

#ifdef __cplusplus
}
#endif

#endif /* PERSIPUBSUB_PROTOBUF_H */
