package bridge

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	"go.uber.org/zap"
)

// wmLogger sends Watermill's logs to zap. A handler error that only means
// "parked, retry later" is expected traffic, so it is logged at debug.
type wmLogger struct {
	l      *zap.Logger
	fields watermill.LogFields
}

func (w wmLogger) zf(fields watermill.LogFields) []zap.Field {
	all := w.fields.Add(fields)
	out := make([]zap.Field, 0, len(all))
	for k, v := range all {
		out = append(out, zap.Any(k, v))
	}
	return out
}

func (w wmLogger) Error(msg string, err error, fields watermill.LogFields) {
	if errors.Is(err, errRetryLater) {
		w.l.Debug(msg, append(w.zf(fields), zap.Error(err))...)
		return
	}
	w.l.Error(msg, append(w.zf(fields), zap.Error(err))...)
}
func (w wmLogger) Info(msg string, fields watermill.LogFields)  { w.l.Debug(msg, w.zf(fields)...) }
func (w wmLogger) Debug(msg string, fields watermill.LogFields) { w.l.Debug(msg, w.zf(fields)...) }
func (w wmLogger) Trace(msg string, fields watermill.LogFields) {}
func (w wmLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return wmLogger{l: w.l, fields: w.fields.Add(fields)}
}
