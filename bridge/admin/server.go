// Package admin is the worker's operations surface: Prometheus metrics
// (Metrics implements bridge.Metrics), an HTTP server with /metrics,
// /healthz and /readyz, and a small JSON API through which the CLI reaches
// the running worker's workflow engine (Client).
//
// The admin package knows nothing of the broker or the engine's wiring:
// readiness checks are callbacks, and workflow operations go through the
// Workflows interface, which *engine.Engine implements.
//
// Endpoints:
//
//	GET    /healthz                        200 while the process serves HTTP
//	GET    /readyz                         200 when every check passes, else 503
//	GET    /metrics                        Prometheus text format
//	GET    /v1/info                        how tools reach this worker's broker and engine
//	GET    /v1/workflows/{id}              engine.Status
//	POST   /v1/workflows/{id}/raise        {"eventName": "...", "payload": <JSON>}
//	POST   /v1/workflows/{id}/terminate    {"reason": "..."}
//	POST   /v1/workflows/{id}/suspend      {"reason": "..."}
//	POST   /v1/workflows/{id}/resume       {"reason": "..."}
//	DELETE /v1/workflows/{id}              purge a finished instance
//	GET    /v1/workflows?saga=&status=…    saga instances, newest first (sagaview.Filter; counts=true adds counts per status)
//	GET    /v1/workflows/{id}/history      an instance's timeline (sagaview.History)
//	GET    /v1/dlq?kind=&route=&topic=…    dead letters (DeadLetterList)
//	GET    /v1/dlq/{ref}                   one dead letter with headers and payload
//	POST   /v1/dlq/replay|purge            {"refs": [...]} or {"all": true}
//	GET    /v1/migration/report?since=1h   the migration report (migrate.Report)
//	GET    /ui/                            the web console (console.go)
//
// On a non-loopback address a bearer token is required (New refuses to
// start without one); when a token is set, every endpoint but /healthz and
// /readyz needs it, and /readyz hides failure details from callers without it.
// Every endpoint refuses a Host it does not answer to and cross-site
// writes (browserGuard), so a web page cannot use the token-less loopback
// API through its user's browser.
//
// Config.MetricsListen adds a second listener with /healthz, /readyz and
// /metrics only, for probes and Prometheus (see probes.go).
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/engine"
)

// DefaultListen is where the admin server listens unless configured.
const DefaultListen = "127.0.0.1:9464"

// TokenEnv names the environment variable holding the bearer token, for the
// worker and the CLI alike; TokenFileEnv names a file holding it.
const (
	TokenEnv     = "SAGABRIDGE_ADMIN_TOKEN"
	TokenFileEnv = "SAGABRIDGE_ADMIN_TOKEN_FILE"
)

// Check is one readiness condition; Run returns nil when it holds.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Workflows is what the admin API does on the workflow engine.
// *engine.Engine implements it.
type Workflows interface {
	Get(ctx context.Context, instanceID string) (engine.Status, error)
	Raise(ctx context.Context, instanceID, eventName string, payload []byte, o engine.RaiseOptions) error
	Terminate(ctx context.Context, instanceID, reason string) error
	Suspend(ctx context.Context, instanceID, reason string) error
	Resume(ctx context.Context, instanceID, reason string) error
	Purge(ctx context.Context, instanceID string) error
}

// Info tells tools how to reach what this worker uses.
type Info struct {
	Version string `json:"version,omitempty"`
	// BrokerKind is nats, embedded or kafka; BrokerURL is where clients
	// connect (for an embedded broker, the in-process server's address),
	// without any user:password part.
	BrokerKind string `json:"brokerKind,omitempty"`
	BrokerURL  string `json:"brokerUrl,omitempty"`
	EngineKind string `json:"engineKind,omitempty"`
	DLQTopic   string `json:"dlqTopic,omitempty"`
	Outcomes   string `json:"outcomesTopic,omitempty"`
}

// Config configures the server.
type Config struct {
	// Listen is host:port; port 0 picks a free one (see Server.Addr).
	Listen string
	// Token is the bearer token. Required when Listen is not a loopback
	// address; enforced whenever set.
	Token string
	// Hosts are further names the server answers to in the Host header
	// (see browserGuard); on a loopback listener the loopback names are
	// always allowed, and any other name is refused.
	Hosts []string
	// Gatherer is what /metrics serves; nil serves nothing there.
	Gatherer prometheus.Gatherer
	// Checks decide /readyz, run concurrently, each within CheckTimeout.
	Checks       []Check
	CheckTimeout time.Duration
	// Workflows serves /v1/workflows; nil answers 404 there.
	Workflows Workflows
	// MetricsListen, when set, is a second listener serving /healthz,
	// /readyz and /metrics only, with no token unless MetricsToken is set.
	MetricsListen string
	MetricsToken  string
	// Sagas serves GET /v1/workflows (list) and /v1/workflows/{id}/history;
	// nil answers 404 there.
	Sagas Sagas
	// DeadLetters serves /v1/dlq; nil answers 404 there. ReplayCheck, when
	// set, may refuse to replay a message (no route would handle it now).
	DeadLetters DeadLetters
	ReplayCheck func(dlqstore.Item) error
	// Migration serves /v1/migration/report; nil answers 404 there.
	Migration MigrationReport
	// Console serves the web console's files under /ui/ (see console.go);
	// nil serves no console.
	Console http.Handler
	// Info is served on /v1/info.
	Info Info
	// OpTimeout bounds one workflow operation (default 15s).
	OpTimeout time.Duration
	Logger    *zap.Logger
}

// Server is the admin HTTP server.
type Server struct {
	cfg      Config
	log      *zap.Logger
	handler  http.Handler
	srv      *http.Server
	addr     string
	draining atomic.Bool
	done     chan struct{}
	serveErr error
	mu       sync.Mutex
	metrics  *listener
}

// IsLoopback reports whether a listen address only accepts local
// connections. An empty host (":9464") means every interface.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New validates the config and builds the handler; Start listens.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("admin: listen %q: %w", cfg.Listen, err)
	}
	if cfg.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("metrics: listen %q: %w", cfg.MetricsListen, err)
		}
	}
	if cfg.Token == "" && !IsLoopback(cfg.Listen) {
		return nil, fmt.Errorf("admin: listen %q is not a loopback address: a bearer token is required (%s or %s)",
			cfg.Listen, TokenFileEnv, TokenEnv)
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 2 * time.Second
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Info.BrokerURL = RedactURL(cfg.Info.BrokerURL)
	s := &Server{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	s.handler = browserGuard(s.routes(), allowedHosts(cfg.Listen, cfg.Hosts))
	return s, nil
}

// RedactURL drops the user:password part of each comma-separated URL.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { s.ready(w, r, s.authorized(r)) })
	if s.cfg.Gatherer != nil {
		mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog: zap.NewStdLog(s.log), EnableOpenMetrics: false,
		})))
	}
	mux.Handle("GET /v1/info", s.auth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.cfg.Info)
	})))
	if s.cfg.Sagas != nil {
		mux.Handle("GET /v1/workflows", s.auth(s.call(s.listWorkflows)))
		mux.Handle("GET /v1/workflows/{id}/history", s.auth(s.op(s.workflowHistory)))
	}
	if s.cfg.DeadLetters != nil {
		mux.Handle("GET /v1/dlq", s.auth(s.call(s.listDeadLetters)))
		mux.Handle("GET /v1/dlq/{ref...}", s.auth(s.call(s.getDeadLetter)))
		mux.Handle("POST /v1/dlq/{op}", s.auth(s.call(s.dlqAction)))
	}
	if s.cfg.Migration != nil {
		mux.Handle("GET /v1/migration/report", s.auth(s.call(s.migrationReport)))
	}
	if s.cfg.Console != nil {
		s.mountConsole(mux)
	}
	if s.cfg.Workflows != nil {
		mux.Handle("GET /v1/workflows/{id}", s.auth(s.op(s.getWorkflow)))
		mux.Handle("POST /v1/workflows/{id}/{op}", s.auth(s.op(s.controlWorkflow)))
		mux.Handle("DELETE /v1/workflows/{id}", s.auth(s.op(s.purgeWorkflow)))
	}
	return mux
}

// Handler is the HTTP handler, for tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin: listen: %w", err)
	}
	s.addr = lis.Addr().String()
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
			s.log.Error("admin server stopped", zap.Error(err))
		}
	}()
	s.log.Info("admin server listening", zap.String("addr", s.addr), zap.Bool("token", s.cfg.Token != ""))
	if err := s.startMetrics(); err != nil {
		_ = s.srv.Close()
		<-s.done
		return err
	}
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() string { return s.addr }

// URL is http://Addr.
func (s *Server) URL() string { return "http://" + s.addr }

// SetDraining makes /readyz answer 503 from now on: the worker is shutting
// down and takes no new work.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Shutdown stops accepting connections and waits for requests in progress
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetDraining()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	mErr := s.metrics.shutdown(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.serveErr, mErr)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
	}
	// The console's session (see console.go); a write needs its header too.
	return s.cfg.Console != nil && s.sessionOK(r) && (!writes(r.Method) || r.Header.Get(ConsoleHeader) != "")
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sagabridge"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "missing or wrong bearer token", Kind: KindUnauthorized})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// ready answers /readyz; detail shows why a check fails.
func (s *Server) ready(w http.ResponseWriter, r *http.Request, detail bool) {
	res := Readiness{Ready: true, Checks: map[string]string{}}
	if s.draining.Load() {
		res.Ready = false
		res.Checks["shutdown"] = "shutting down"
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(s.cfg.Checks))
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
	defer cancel()
	for _, c := range s.cfg.Checks {
		go func() { results <- result{c.Name, runCheck(ctx, c)} }()
	}
	for range s.cfg.Checks {
		got := <-results
		switch {
		case got.err == nil:
			res.Checks[got.name] = "ok"
		case detail:
			res.Ready = false
			res.Checks[got.name] = got.err.Error()
		default:
			res.Ready = false
			res.Checks[got.name] = "failing"
		}
	}
	code := http.StatusOK
	if !res.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

// runCheck turns a panic or an overrun into a failure.
func runCheck(ctx context.Context, c Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err = <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer: %w", ctx.Err())
	}
}

// Error kinds of the JSON API; Client maps them back to errors.
const (
	KindNotFound     = "not_found"
	KindFinished     = "finished"
	KindUnavailable  = "unavailable"
	KindBadRequest   = "bad_request"
	KindUnauthorized = "unauthorized"
	KindForbidden    = "forbidden"
	KindInternal     = "internal"
)

type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

// maxBody bounds a request body: an event payload plus a little.
const maxBody = 2 << 20

// op runs one workflow operation with a timeout and maps engine errors.
func (s *Server) op(f func(ctx context.Context, r *http.Request, id string) (any, error)) http.Handler {
	return s.call(func(ctx context.Context, r *http.Request) (any, error) {
		id := r.PathValue("id")
		if id == "" {
			return nil, badRequest{errors.New("instance ID is empty")}
		}
		out, err := f(ctx, r, id)
		if err != nil && errors.Is(err, engine.ErrNotFound) {
			// The engine's own words are a gRPC status; the caller
			// only needs to know the instance is not there.
			return nil, notFound{fmt.Errorf("workflow instance %s not found", id)}
		}
		return out, err
	})
}

// call runs one operation with a timeout and maps its errors.
func (s *Server) call(f func(ctx context.Context, r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.OpTimeout)
		defer cancel()
		out, err := f(ctx, r)
		if err != nil {
			code, kind := errorCode(err)
			if code >= 500 {
				s.log.Warn("admin operation failed", zap.String("path", r.URL.Path), zap.Error(err))
			}
			writeJSON(w, code, apiError{Error: err.Error(), Kind: kind})
			return
		}
		if r.Method != http.MethodGet {
			s.log.Info("admin operation", zap.String("method", r.Method), zap.String("path", r.URL.Path))
		}
		if out == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// decodeBody reads a JSON body into v; an empty body leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest{fmt.Errorf("request body: %w", err)}
	}
	return nil
}

type badRequest struct{ error }

type notFound struct{ error }

func errorCode(err error) (int, string) {
	var br badRequest
	var nf notFound
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, KindBadRequest
	case errors.As(err, &nf), errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound, KindNotFound
	case errors.Is(err, engine.ErrFinished):
		return http.StatusConflict, KindFinished
	case errors.Is(err, engine.ErrUnavailable):
		return http.StatusServiceUnavailable, KindUnavailable
	default:
		return http.StatusInternalServerError, KindInternal
	}
}

func (s *Server) getWorkflow(ctx context.Context, _ *http.Request, id string) (any, error) {
	st, err := s.cfg.Workflows.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	// The embedded hub answers an unknown ID with an empty status rather
	// than an error.
	if st.InstanceID == "" {
		return nil, fmt.Errorf("workflow instance %s: %w", id, engine.ErrNotFound)
	}
	out := WorkflowDetail{Status: st}
	// A saga keeps where it is in its custom status, as JSON.
	if cs := strings.TrimSpace(st.CustomStatus); strings.HasPrefix(cs, "{") && json.Valid([]byte(cs)) {
		out.Progress = json.RawMessage(cs)
	}
	return out, nil
}

// WorkflowDetail is the answer of GET /v1/workflows/{id}.
type WorkflowDetail struct {
	engine.Status
	// Progress is where a saga is, from the instance's custom status.
	Progress json.RawMessage `json:"progress,omitempty"`
}

// ControlRequest is the body of the POST operations.
type ControlRequest struct {
	EventName string          `json:"eventName,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Reason    string          `json:"reason,omitempty"`
}

func (s *Server) controlWorkflow(ctx context.Context, r *http.Request, id string) (any, error) {
	var req ControlRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	wf := s.cfg.Workflows
	switch op := r.PathValue("op"); op {
	case "raise":
		if req.EventName == "" {
			return nil, badRequest{errors.New("raise needs an eventName")}
		}
		var payload []byte
		if len(req.Payload) > 0 {
			payload = req.Payload
		}
		return nil, wf.Raise(ctx, id, req.EventName, payload, engine.RaiseOptions{ReportFinished: true})
	case "terminate":
		return nil, wf.Terminate(ctx, id, req.Reason)
	case "suspend":
		return nil, wf.Suspend(ctx, id, req.Reason)
	case "resume":
		return nil, wf.Resume(ctx, id, req.Reason)
	default:
		return nil, badRequest{fmt.Errorf("unknown operation %q (raise, terminate, suspend, resume)", op)}
	}
}

func (s *Server) purgeWorkflow(ctx context.Context, _ *http.Request, id string) (any, error) {
	return nil, s.cfg.Workflows.Purge(ctx, id)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
