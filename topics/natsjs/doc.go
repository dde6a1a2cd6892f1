// Package natsjs is sagabridge's NATS JetStream transport: Watermill's NATS
// adapter (github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats) in JetStream
// mode, configured for at-least-once delivery with explicit, synchronous
// acks, plus an embedded nats-server for `dev`, tests and single-box runs.
//
// One stream per topic: the stream is named after the topic with the
// characters NATS forbids in stream names replaced by '_', and it captures
// exactly the subject of the same name, so `orders.placed` is stored in the
// stream `orders_placed`. Publishing tracks the Watermill message UUID as
// Nats-Msg-Id, so the broker drops a re-publish of the same id inside the
// stream's duplicate window (two minutes by default).
package natsjs
