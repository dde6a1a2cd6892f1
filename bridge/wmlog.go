package bridge

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.uber.org/zap"
)

// wmLogger sends Watermill's logs to zap. A handler error that only means
// "parked, retry later" is expected traffic, so it is logged at debug. A
// broker that cannot be reached is expected trouble too: its errors are
// logged at warn, the first of each kind at once and then one line per
// repeatEvery with how many were held back, not one per retry of every
// reader.
type wmLogger struct {
	l       *zap.Logger
	fields  watermill.LogFields
	repeats *repeatLimiter
}

func newWMLogger(l *zap.Logger) wmLogger {
	return wmLogger{l: l, repeats: newRepeatLimiter(repeatEvery, time.Now)}
}

// repeatEvery is how often a repeated connection error is logged.
const repeatEvery = 30 * time.Second

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
	if w.repeats != nil && IsConnectionError(err) {
		ok, held := w.repeats.allow(w.l.Name() + "\x00" + msg)
		if !ok {
			return
		}
		f := append(w.zf(fields), zap.Error(err))
		if held > 0 {
			f = append(f, zap.Int("repeated", held))
		}
		w.l.Warn(msg, f...)
		return
	}
	w.l.Error(msg, append(w.zf(fields), zap.Error(err))...)
}
func (w wmLogger) Info(msg string, fields watermill.LogFields)  { w.l.Debug(msg, w.zf(fields)...) }
func (w wmLogger) Debug(msg string, fields watermill.LogFields) { w.l.Debug(msg, w.zf(fields)...) }
func (w wmLogger) Trace(msg string, fields watermill.LogFields) {}
func (w wmLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return wmLogger{l: w.l, fields: w.fields.Add(fields), repeats: w.repeats}
}

// IsConnectionError reports whether err says a server could not be
// reached or dropped the connection: expected while a broker or engine is
// down, and retried by whoever logs it.
func IsConnectionError(err error) bool {
	if err == nil {
		return false
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	// Some clients (kafka-go's loggers) format the cause into text.
	s := err.Error()
	for _, sign := range []string{"connection refused", "failed to dial", "i/o timeout", "no such host",
		"connection reset", "broken pipe", "network is unreachable", "Unable to establish connection"} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// repeatLimiter lets the first message of a kind through, then one per
// interval, saying how many it held back meanwhile. Kinds are log
// messages, a small fixed set; the map is bounded all the same.
type repeatLimiter struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	kinds map[string]*repeat
}

type repeat struct {
	last time.Time
	held int
}

const maxRepeatKinds = 1024

func newRepeatLimiter(every time.Duration, now func() time.Time) *repeatLimiter {
	return &repeatLimiter{every: every, now: now, kinds: map[string]*repeat{}}
}

// allow says whether to log this one and how many were held back since
// the last one logged.
func (l *repeatLimiter) allow(kind string) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.kinds[kind]
	if r == nil {
		if len(l.kinds) >= maxRepeatKinds {
			clear(l.kinds)
		}
		l.kinds[kind] = &repeat{last: now}
		return true, 0
	}
	if now.Sub(r.last) < l.every {
		r.held++
		return false, 0
	}
	held, r.held, r.last = r.held, 0, now
	return true, held
}
