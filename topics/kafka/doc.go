// Package kafka is a Watermill Pub/Sub on github.com/segmentio/kafka-go.
//
// Watermill ships a Sarama adapter; sagabridge uses kafka-go instead (pure Go,
// one client for readers, writers and admin calls) and needs delivery
// semantics it can reason about when it bridges legacy events into workflow
// starts. This package gives those semantics:
//
//   - At-least-once. An offset is committed only after Watermill acked the
//     message and every earlier message of the same partition was acked too
//     (the contiguous acked prefix, see ackTracker). Commits are explicit
//     (kafka-go CommitInterval 0, no auto commit) and run in a background
//     loop so that delivery does not wait for a commit round trip. A crash
//     between an ack and its commit redelivers the message; nothing is ever
//     committed before it was acked.
//   - Order. By default one Subscribe call delivers one message at a time
//     (send, wait for Ack or Nack, then the next), which is the Watermill
//     contract and keeps per-partition order. SubscriberConfig.Concurrency
//     above 1 hands out up to that many at once, never two with the same
//     record key: each key keeps its partition order, different keys
//     overlap, and a record whose key is in flight waits in a queue while
//     records of other keys go on. Queued records take no Concurrency
//     place (SubscriberConfig.MaxBacklog bounds them), and a keyed record
//     waiting to be resent gives its place back, so one busy key does not
//     hold up the others. Nack redelivers the same message after
//     SubscriberConfig.NackResendSleep (doubling up to NackResendMax);
//     nothing after it of its key is delivered, and nothing after it in
//     its partition is committed, before its redelivery is acked. Order
//     across partitions is not defined.
//   - Shutdown. Close, or cancelling the Subscribe context, stops fetching,
//     waits up to SubscriberConfig.CloseTimeout for the in-flight messages'
//     Ack or Nack, commits what was acked, then closes the kafka-go reader
//     (which leaves the group). Messages prefetched but not delivered are not
//     committed and are redelivered to whoever owns the partition next.
//   - Rebalances are kafka-go's: a Reader with a GroupID rejoins on its own.
//     A commit that fails across a rebalance is logged and retried; if the
//     partition moved, its new owner starts from the last committed offset
//     and redelivers, it never skips.
//   - Consumer groups. SubscriberConfig.ConsumerGroup names the group shared
//     by every Subscribe call and every replica. When it is empty each
//     Subscribe call gets its own unique, throwaway group
//     ("<ClientID>-ephemeral-<uuid>"), so every subscription sees the whole
//     topic from StartOffset: a broadcast, not a work queue. Such groups
//     commit nothing (nobody could resume them), so the broker drops them
//     once they are empty.
//   - Duplicates. kafka-go has no "partitions revoked" hook: while a group
//     rebalances, a member keeps handing out what it had prefetched but
//     cannot commit it, and the next generation restarts each partition at
//     its last committed offset. A rebalance therefore redelivers roughly
//     a heartbeat interval's worth of messages; consumers must be
//     idempotent (sagabridge dedupes on workflow instance IDs).
//
// Messages map to Kafka records as follows. The payload is the record value.
// Metadata becomes record headers verbatim, both ways (so CloudEvents binary
// mode ce_* headers pass through untouched); when a record carries the same
// header twice, the last one wins. The Watermill UUID travels in the
// HeaderUUID header and is not part of the metadata on read; a record without
// it (from a non-Watermill producer) gets the UUID "<topic>-<partition>-<offset>",
// stable across redeliveries. The record key is taken from the metadata field
// named by KeyMetadataField (default "partition_key"; empty value = nil key)
// and partitioned with the Java client's murmur2 hash, so keyed events land
// on the same partitions as the legacy Java producers put them. On read, a
// record key is copied into that metadata field when no header already set
// it, so a consumed message republished elsewhere keeps its key.
//
// On read the subscriber adds MetadataTopic, MetadataPartition,
// MetadataOffset and MetadataTimestamp so callers can log where a message came
// from. The publisher strips these keys (and HeaderUUID) from the metadata
// before writing headers, so forwarding a consumed message never echoes a
// stale position back into Kafka.
//
// Secrets: SASL passwords are of type Secret, which prints as [REDACTED] in
// every fmt verb, in JSON/YAML/text marshalling and in slog. Nothing in this
// package logs a config.
package kafka
