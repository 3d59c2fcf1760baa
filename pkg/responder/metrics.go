package responder

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// Metric names.
const (
	MetricRequests = "falco_phantom_responder_requests_total"
	MetricDuration = "falco_phantom_responder_request_duration_seconds"
)

// Metrics are the responder's Prometheus metrics, in a registry of its own.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests,
			Help: "Action requests by action and outcome code (ok, or the error code answered)."}, []string{"action", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricDuration,
			Help:    "Time from receiving an action request to answering it, by action.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"action"}),
	}
	m.Registry.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe counts one answered request. Labels never take what a caller
// wrote: an action that does not exist is "unknown".
func (m *Metrics) observe(a respond.Action, code string, took time.Duration) {
	action := "unknown"
	if slices.Contains(respond.Actions(), a) {
		action = string(a)
	}
	m.requests.WithLabelValues(action, code).Inc()
	m.duration.WithLabelValues(action).Observe(took.Seconds())
}
