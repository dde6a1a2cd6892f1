package admin

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// State answers, at scrape time, what counters cannot: how deep the
// dead-letter topic is, how far behind the consumers are, whether the
// worker is ready, how old the oldest running saga is. A nil func, or one
// that fails, leaves its metric out of that scrape.
type State struct {
	DLQDepth      func(ctx context.Context) (int64, error)
	ConsumerLag   func(ctx context.Context) (map[string]int64, error)
	Checks        []Check
	OldestRunning func() map[string]time.Duration
	// Sagas are the sagas the config starts: their oldest-running age is
	// exported as 0 while none runs, so the series exists from the start.
	Sagas []string
	// Timeout bounds one scrape's questions (default 2s).
	Timeout time.Duration
}

var (
	dlqDepthDesc = prometheus.NewDesc(Namespace+"_dlq_messages",
		"Messages on the dead-letter topic now.", nil, nil)
	lagDesc = prometheus.NewDesc(Namespace+"_consumer_lag_messages",
		"Messages of a routed topic the worker's consumer group has not acknowledged yet (waiting, in flight, parked): what KEDA scales on.", []string{"topic"}, nil)
	readyDesc = prometheus.NewDesc(Namespace+"_ready",
		"1 when every readiness check passes (what /readyz answers 200 for), else 0.", nil, nil)
	checkDesc = prometheus.NewDesc(Namespace+"_ready_check",
		"1 when the readiness check passes, else 0.", []string{"check"}, nil)
	oldestDesc = prometheus.NewDesc(Namespace+"_oldest_running_saga_seconds",
		"Age of the oldest running instance of each saga this worker has heard of (0: none runs).", []string{"saga"}, nil)
)

type stateCollector struct{ s State }

// WatchState registers the State's gauges.
func (m *Metrics) WatchState(s State) {
	if s.Timeout <= 0 {
		s.Timeout = 2 * time.Second
	}
	m.reg.MustRegister(stateCollector{s})
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dlqDepthDesc, lagDesc, readyDesc, checkDesc, oldestDesc} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.Timeout)
	defer cancel()
	if f := c.s.DLQDepth; f != nil {
		if n, err := f(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(dlqDepthDesc, prometheus.GaugeValue, float64(n))
		}
	}
	if f := c.s.ConsumerLag; f != nil {
		// A topic that failed is left out; the others are still right.
		lag, _ := f(ctx)
		for topic, n := range lag {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(n), topic)
		}
	}
	if len(c.s.Checks) > 0 {
		ready := 1.0
		for _, chk := range c.s.Checks {
			v := 1.0
			if runCheck(ctx, chk) != nil {
				v, ready = 0, 0
			}
			ch <- prometheus.MustNewConstMetric(checkDesc, prometheus.GaugeValue, v, chk.Name)
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready)
	}
	if f := c.s.OldestRunning; f != nil {
		ages := f()
		for _, saga := range c.s.Sagas {
			if _, ok := ages[saga]; !ok {
				ages[saga] = 0
			}
		}
		for saga, age := range ages {
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age.Seconds(), saga)
		}
	}
}
