package embedded

import (
	"context"
	"fmt"
	"strings"

	"github.com/dapr/durabletask-go/backend"
	"go.uber.org/zap"
)

// zapLogger adapts zap to durabletask's backend.Logger. durabletask logs
// every work item at Debug and connection changes at Info, so the levels map
// one to one.
type zapLogger struct{ s *zap.SugaredLogger }

func (l zapLogger) Debug(v ...any)                 { l.s.Debug(v...) }
func (l zapLogger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }
func (l zapLogger) Info(v ...any)                  { l.s.Info(v...) }
func (l zapLogger) Infof(format string, v ...any)  { l.s.Infof(format, v...) }
func (l zapLogger) Warn(v ...any)                  { l.warn(fmt.Sprint(v...)) }

// Warn and Warnf demote the notices durabletask prints while stopping (work in
// flight is abandoned and runs again at the next start: "cancel…", and
// "failed before receiving orchestration/activity result", which the
// executor logs only when its context ends), and the notice of a timer
// that fires after its orchestration completed: every wait with a timeout
// leaves one, and nothing is lost.
func (l zapLogger) Warnf(format string, v ...any) { l.warn(fmt.Sprintf(format, v...)) }

func (l zapLogger) warn(msg string) {
	if strings.Contains(msg, "cancel") || strings.Contains(msg, "failed before receiving") ||
		strings.Contains(msg, "orchestration already completed; dropping work item") {
		l.s.Debug(msg)
		return
	}
	l.s.Warn(msg)
}
func (l zapLogger) Error(v ...any) { l.error(fmt.Sprint(v...)) }

// Error and Errorf demote the errors durabletask logs while it is being stopped: the
// work items it could not abandon are released at the next start.
func (l zapLogger) Errorf(format string, v ...any) { l.error(fmt.Sprintf(format, v...)) }

func (l zapLogger) error(msg string) {
	if strings.Contains(msg, context.Canceled.Error()) {
		l.s.Debug(msg)
		return
	}
	l.s.Error(msg)
}

// NewLogger adapts a zap logger to durabletask's logger, for the hub and
// for the workflow worker and client that talk to it or to daprd.
func NewLogger(log *zap.Logger) backend.Logger { return zapLogger{log.Sugar()} }
