package kafka

import (
	"sort"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"
)

// HeaderUUID is the record header that carries the Watermill message UUID.
const HeaderUUID = "_watermill_message_uuid"

// Metadata keys the subscriber adds to every consumed message so callers can
// log where it came from. The publisher strips them: they describe one
// consumed record and would be wrong on any other.
const (
	MetadataTopic     = "kafka_topic"
	MetadataPartition = "kafka_partition"
	MetadataOffset    = "kafka_offset"
	// MetadataTimestamp is the record timestamp, RFC 3339 with nanoseconds, UTC.
	MetadataTimestamp = "kafka_timestamp"
)

// isStripped reports metadata keys that never become headers.
func isStripped(key string) bool {
	switch key {
	case HeaderUUID, MetadataTopic, MetadataPartition, MetadataOffset, MetadataTimestamp:
		return true
	}
	return false
}

// toRecord turns a Watermill message into a kafka-go record for topic. The
// metadata becomes headers verbatim (sorted by key so identical messages give
// identical records), the UUID rides in HeaderUUID, and the key comes from
// the keyField metadata (empty = nil key, which the balancer spreads).
func toRecord(topic string, msg *message.Message, keyField string) kafka.Message {
	keys := make([]string, 0, len(msg.Metadata))
	for k := range msg.Metadata {
		if !isStripped(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)

	headers := make([]kafka.Header, 0, len(keys)+1)
	headers = append(headers, kafka.Header{Key: HeaderUUID, Value: []byte(msg.UUID)})
	for _, k := range keys {
		headers = append(headers, kafka.Header{Key: k, Value: []byte(msg.Metadata[k])})
	}

	var key []byte
	if v := msg.Metadata.Get(keyField); v != "" {
		key = []byte(v)
	}
	return kafka.Message{Topic: topic, Key: key, Value: msg.Payload, Headers: headers}
}

// fromRecord returns the UUID and metadata a record maps to (the payload is
// r.Value). See the package doc for the rules.
func fromRecord(r kafka.Message, keyField string) (string, message.Metadata) {
	md := make(message.Metadata, len(r.Headers)+4)
	var uuid string
	for _, h := range r.Headers {
		if h.Key == HeaderUUID {
			uuid = string(h.Value)
			continue
		}
		md[h.Key] = string(h.Value)
	}
	if uuid == "" {
		uuid = r.Topic + "-" + strconv.Itoa(r.Partition) + "-" + strconv.FormatInt(r.Offset, 10)
	}
	if keyField != "" && len(r.Key) > 0 {
		if _, ok := md[keyField]; !ok {
			md[keyField] = string(r.Key)
		}
	}
	md[MetadataTopic] = r.Topic
	md[MetadataPartition] = strconv.Itoa(r.Partition)
	md[MetadataOffset] = strconv.FormatInt(r.Offset, 10)
	if !r.Time.IsZero() {
		md[MetadataTimestamp] = r.Time.UTC().Format(time.RFC3339Nano)
	}
	return uuid, md
}
