package budget

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops"
)

// RegisterMetrics registers a collector of d on reg: today's tokens and
// calls (chorus_ai_daily_*_used) and their limits (chorus_ai_daily_*_limit,
// 0 for no limit), read from the ledger at scrape time.
func RegisterMetrics(reg prometheus.Registerer, d *Daily) error {
	if err := reg.Register(newCollector(d)); err != nil {
		return fmt.Errorf("register budget metrics: %w", err)
	}
	return nil
}

type collector struct {
	d                                          *Daily
	tokensUsed, callsUsed, tokensMax, callsMax *prometheus.Desc
}

func newCollector(d *Daily) *collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ops.Namespace, ops.CategoryAI, name), help, nil, nil)
	}
	return &collector{
		d:          d,
		tokensUsed: desc("daily_tokens_used", "AI tokens this agent used today (UTC)."),
		callsUsed:  desc("daily_calls_used", "AI calls this agent made today (UTC)."),
		tokensMax:  desc("daily_tokens_limit", "AI tokens this agent may use per day; 0 means no limit."),
		callsMax:   desc("daily_calls_limit", "AI calls this agent may make per day; 0 means no limit."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tokensUsed
	ch <- c.callsUsed
	ch <- c.tokensMax
	ch <- c.callsMax
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	tokens, calls := c.d.Used()
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(c.tokensUsed, tokens)
	gauge(c.callsUsed, calls)
	gauge(c.tokensMax, c.d.limits.Tokens)
	gauge(c.callsMax, c.d.limits.Calls)
}
