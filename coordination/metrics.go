package coordination

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the driver's counters (category tasks: sessions are about
// tasks). A nil registerer gives working metrics that nobody scrapes.
type metrics struct {
	alerts *prometheus.CounterVec
	opened prometheus.Counter
	closes *prometheus.CounterVec
	plans  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, open func() float64) (*metrics, error) {
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chorus_tasks_dependency_alerts_total",
			Help: "Dependency alerts published by this node, by rule."}, []string{"rule"}),
		opened: prometheus.NewCounter(prometheus.CounterOpts{Name: "chorus_tasks_coordination_sessions_opened_total",
			Help: "Coordination sessions opened by this node."}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chorus_tasks_coordination_sessions_closed_total",
			Help: "Coordination sessions seen closing on this node, by state (resolved, escalated)."}, []string{"state"}),
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chorus_tasks_coordination_plans_total",
			Help: "Coordination plans proposed by this node, by source (model, template)."}, []string{"source"}),
	}
	if reg == nil {
		return m, nil
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chorus_tasks_coordination_sessions_open",
		Help: "Coordination sessions open on this node, read at scrape time."}, open)
	for _, c := range []prometheus.Collector{m.alerts, m.opened, m.closes, m.plans, gauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register coordination metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) alert(rule string) { m.alerts.WithLabelValues(rule).Inc() }

func (m *metrics) closed(s State) { m.closes.WithLabelValues(string(s)).Inc() }

func (m *metrics) plan(template bool) {
	source := "model"
	if template {
		source = "template"
	}
	m.plans.WithLabelValues(source).Inc()
}
