package kafka

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/segmentio/kafka-go"
)

// kafkaGoLoggers routes kafka-go's internal logging into the Watermill
// logger: its chatty progress lines at Trace, its error lines at Error (they
// include failed commits and rebalance trouble, which operators need).
func kafkaGoLoggers(l watermill.LoggerAdapter) (info, errs kafka.Logger) {
	info = kafka.LoggerFunc(func(format string, args ...any) {
		l.Trace("kafka-go: "+fmt.Sprintf(format, args...), nil)
	})
	errs = kafka.LoggerFunc(func(format string, args ...any) {
		l.Error("kafka-go", fmt.Errorf(format, args...), nil)
	})
	return info, errs
}

func orNop(l watermill.LoggerAdapter) watermill.LoggerAdapter {
	if l == nil {
		return watermill.NopLogger{}
	}
	return l
}
