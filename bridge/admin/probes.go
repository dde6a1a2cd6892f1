package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// The metrics listener serves /healthz, /readyz and /metrics apart from
// the admin API, as daprd does on its metrics port: kubelet probes and
// Prometheus reach it on the pod's address without the admin token, while
// the admin API (which can terminate workflows) keeps its token. /metrics
// needs a bearer token there only when Config.MetricsToken is set;
// /readyz never shows failure details on it.

// listener is one running http.Server.
type listener struct {
	srv  *http.Server
	addr string
	done chan struct{}
	err  error
}

func serve(handler http.Handler, listen string, log *zap.Logger) (*listener, error) {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	l := &listener{addr: lis.Addr().String(), done: make(chan struct{})}
	l.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(log),
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.err = err
			log.Error("listener stopped", zap.String("addr", l.addr), zap.Error(err))
		}
	}()
	return l, nil
}

func (l *listener) shutdown(ctx context.Context) error {
	if l == nil {
		return nil
	}
	err := l.srv.Shutdown(ctx)
	<-l.done
	return errors.Join(err, l.err)
}

func (s *Server) probeRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { s.ready(w, r, false) })
	if s.cfg.Gatherer != nil {
		h := promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(s.log)})
		mux.Handle("GET /metrics", bearer(s.cfg.MetricsToken, h))
	}
	return mux
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// bearer requires token when it is set.
func bearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sagabridge-metrics"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "missing or wrong bearer token", Kind: KindUnauthorized})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) startMetrics() error {
	if s.cfg.MetricsListen == "" {
		return nil
	}
	h := s.probeRoutes()
	if IsLoopback(s.cfg.MetricsListen) {
		// Token-less on loopback: a rebound page must not read it either.
		// Off loopback the listener is for scrapers and probes, which
		// reach it by any address.
		h = browserGuard(h, allowedHosts(s.cfg.MetricsListen, s.cfg.Hosts))
	}
	l, err := serve(h, s.cfg.MetricsListen, s.log)
	if err != nil {
		return fmt.Errorf("metrics: listen: %w", err)
	}
	s.metrics = l
	s.log.Info("metrics listener", zap.String("addr", l.addr), zap.Bool("token", s.cfg.MetricsToken != ""))
	return nil
}

// MetricsAddr is where the metrics listener listens (after Start), or ""
// when it is not separate from the admin listener.
func (s *Server) MetricsAddr() string {
	if s.metrics == nil {
		return ""
	}
	return s.metrics.addr
}

// MetricsURL is http://MetricsAddr, or the admin URL when the metrics are
// served there.
func (s *Server) MetricsURL() string {
	if s.metrics == nil {
		return s.URL()
	}
	return "http://" + s.metrics.addr
}
