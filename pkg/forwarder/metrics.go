package forwarder

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric names, shared with the status command that reads them.
const (
	MetricReceived     = "falco_phantom_events_received_total"
	MetricDelivered    = "falco_phantom_events_delivered_total"
	MetricRetried      = "falco_phantom_events_retried_total"
	MetricDeadLettered = "falco_phantom_events_dead_lettered_total"
	MetricDeadHeld     = "falco_phantom_dead_letters_held"
	MetricPhantomErrs  = "falco_phantom_phantom_errors_total"
	MetricPhantomUp    = "falco_phantom_phantom_up"
	MetricCases        = "falco_phantom_cases_created_total"
	MetricRequests     = "falco_phantom_phantom_requests_total"
	MetricLatency      = "falco_phantom_delivery_latency_seconds"
	MetricEventAge     = "falco_phantom_event_age_seconds"
	MetricInFlight     = "falco_phantom_phantom_requests_in_flight"
	MetricLimit        = "falco_phantom_phantom_concurrency_limit"
)

// Metrics are the forwarder's Prometheus metrics, in a registry of its own.
type Metrics struct {
	Registry        *prometheus.Registry
	received        prometheus.Counter
	delivered       *prometheus.CounterVec
	retried         prometheus.Counter
	deadLettered    *prometheus.CounterVec
	deadLettersHeld prometheus.Gauge
	phantomErrs     *prometheus.CounterVec
	phantomUp       prometheus.Gauge
	cases           prometheus.Counter
	requests        *prometheus.CounterVec
	latency         prometheus.Histogram
	eventAge        prometheus.Histogram
	// inFlight and concurrencyLimit follow the requests to SOAR.
	inFlight         prometheus.Gauge
	concurrencyLimit prometheus.Gauge
}

// NewMetrics creates the metrics. Labels never carry event content, so an
// attacker cannot blow up their number.
func NewMetrics() *Metrics {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricReceived,
			Help: "Events received from NATS (or HTTP in function mode)."}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDelivered,
			Help: "Events stored in SOAR; outcome=existing when SOAR already had them (redelivery)."}, []string{"outcome"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRetried,
			Help: "Event delivery attempts that failed and were retried."}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeadLettered,
			Help: "Events that can never be delivered, kept on the dead-letter subject, by reason."}, []string{"reason"}),
		deadLettersHeld: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricDeadHeld,
			Help: "Events to be kept as dead letters that the dead-letter stream has not taken yet (held unacknowledged, retried)."}),
		phantomErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPhantomErrs,
			Help: "Failed SOAR requests by kind (transient, auth, config, rejected, not_found)."}, []string{"kind"}),
		phantomUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricPhantomUp,
			Help: "1 when the last SOAR request succeeded, 0 when it failed."}),
		cases: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricCases,
			Help: "SOAR containers (cases) created."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests,
			Help: "SOAR write requests sent, by operation."}, []string{"op"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricLatency,
			Help: "Time from receiving an event to SOAR holding it.", Buckets: buckets}),
		eventAge: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricEventAge,
			Help: "Time from the Falco event to SOAR holding it.", Buckets: buckets}),
	}
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricInFlight,
		Help: "Requests to SOAR in flight now."})
	m.concurrencyLimit = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLimit,
		Help: "How many requests to SOAR may be in flight at once now: it grows while SOAR answers and halves when SOAR pushes back (429, 503, timeouts)."})
	m.Registry.MustRegister(m.inFlight, m.concurrencyLimit)
	m.Registry.MustRegister(m.received, m.delivered, m.retried, m.deadLettered, m.deadLettersHeld, m.phantomErrs, m.phantomUp,
		m.cases, m.requests, m.latency, m.eventAge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{"new", "existing"} {
		m.delivered.WithLabelValues(o)
	}
	for _, r := range DeadLetterReasons() {
		m.deadLettered.WithLabelValues(r)
	}
	return m
}
