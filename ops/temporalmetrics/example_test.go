package temporalmetrics_test

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"chorus/ops/temporalmetrics"
)

func ExampleNew() {
	reg := prometheus.NewRegistry()
	h, err := temporalmetrics.New(reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	opts := client.Options{HostPort: "127.0.0.1:7233", MetricsHandler: h}
	// client.Dial(opts) would now report the SDK's metrics on reg; here the
	// SDK's first counter is emitted by hand.
	opts.MetricsHandler.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(1)
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		fmt.Println(mf.GetName(), mf.GetMetric()[0].GetCounter().GetValue())
	}
	// Output:
	// temporal_request_total 1
}
