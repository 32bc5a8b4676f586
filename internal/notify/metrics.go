package notify

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
	routed   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_attempts_total", Help: "Delivery attempts by channel type and outcome (success, retry, failed, rate_limited).",
		}, []string{"channel_type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_delivery_attempt_seconds", Help: "Time one delivery attempt took, by channel type.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"channel_type"}),
		routed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_deliveries_enqueued_total", Help: "Deliveries enqueued by routing events to channels.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.duration, m.routed)
	}
	return m
}
