package kafka

import (
	"fmt"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
)

// captureLogger records every log line, with fields and errors, as text.
type captureLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *captureLogger) add(level, msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s %s err=%v fields=%+v", level, msg, err, fields))
}

func (l *captureLogger) Error(msg string, err error, f watermill.LogFields) {
	l.add("ERROR", msg, err, f)
}
func (l *captureLogger) Info(msg string, f watermill.LogFields)  { l.add("INFO", msg, nil, f) }
func (l *captureLogger) Debug(msg string, f watermill.LogFields) { l.add("DEBUG", msg, nil, f) }
func (l *captureLogger) Trace(msg string, f watermill.LogFields) { l.add("TRACE", msg, nil, f) }
func (l *captureLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return &withLogger{base: l, fields: f}
}

// Text returns everything logged so far.
func (l *captureLogger) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *captureLogger) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			return true
		}
	}
	return false
}

type withLogger struct {
	base   *captureLogger
	fields watermill.LogFields
}

func (w *withLogger) Error(msg string, err error, f watermill.LogFields) {
	w.base.Error(msg, err, w.fields.Add(f))
}
func (w *withLogger) Info(msg string, f watermill.LogFields)  { w.base.Info(msg, w.fields.Add(f)) }
func (w *withLogger) Debug(msg string, f watermill.LogFields) { w.base.Debug(msg, w.fields.Add(f)) }
func (w *withLogger) Trace(msg string, f watermill.LogFields) { w.base.Trace(msg, w.fields.Add(f)) }
func (w *withLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return &withLogger{base: w.base, fields: w.fields.Add(f)}
}
