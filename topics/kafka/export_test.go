package kafka

// CaptureLogger lets the external tests collect every log line.
type CaptureLogger = captureLogger
