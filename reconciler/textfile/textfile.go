// Package textfile writes the deploy metrics of reconciler apply in the
// Prometheus text format, for node_exporter's textfile collector
// (--collector.textfile.directory): the file is replaced atomically, so the
// collector never reads half of it, and its name should end in .prom.
//
// apply is a process that ends, so the metrics are gauges of the last
// deploy and counters recounted from the env's history (records of trigger
// apply), which survive between runs. The agent exports its own deploys on
// /metrics (reconciler/agent); the two sets do not overlap.
package textfile

import (
	"fmt"

	"github.com/developer-mesh/reconciler/internal/atomicfile"
	"github.com/developer-mesh/reconciler/internal/metrics"
	"github.com/developer-mesh/reconciler/reconciler/history"
)

// Metric names of the file.
const (
	DeploymentsTotal  = "reconciler_apply_deployments_total"
	RollbacksTotal    = "reconciler_apply_rollbacks_total"
	LastTimestamp     = "reconciler_apply_last_deploy_timestamp_seconds"
	LastDuration      = "reconciler_apply_last_deploy_duration_seconds"
	LastSuccess       = "reconciler_apply_last_deploy_success"
	LastRolledBack    = "reconciler_apply_last_deploy_rolled_back"
	LastRequests      = "reconciler_apply_last_deploy_requests"
	LastStreamsCut    = "reconciler_apply_last_deploy_streams_cut"
	LastRequestErrors = "reconciler_apply_last_deploy_request_errors"
	LastP95           = "reconciler_apply_last_deploy_p95_response_seconds"
)

const (
	resultsOfCounters  = "succeeded, failed, refused"
	p95WindowLabel     = "window"
	envLabel, resLabel = "env", "result"
)

// Render returns the metrics of env: last is the deploy just recorded,
// all is env's whole history (last included).
func Render(env string, last history.Record, all []history.Record) []byte {
	reg := metrics.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := metrics.NewGaugeVec(name, help, envLabel)
		g.WithLabelValues(env).Set(v)
		reg.MustRegister(g)
	}
	deployments := metrics.NewCounterVec(DeploymentsTotal,
		"Deploys run by reconciler apply, by result ("+resultsOfCounters+"), counted from the history.", envLabel, resLabel)
	rollbacks := metrics.NewCounterVec(RollbacksTotal,
		"Deploys run by reconciler apply whose failed change was undone, counted from the history.", envLabel)
	for _, r := range []string{history.Succeeded, history.Failed, history.Refused} {
		deployments.WithLabelValues(env, r) // present at 0, so that increase() sees the first one
	}
	rollbacks.WithLabelValues(env)
	for _, r := range all {
		if r.Trigger != history.TriggerApply || r.Env != env {
			continue
		}
		deployments.WithLabelValues(env, r.Result).Inc()
		if r.RolledBack {
			rollbacks.WithLabelValues(env).Inc()
		}
	}
	reg.MustRegister(deployments, rollbacks)

	gauge(LastTimestamp, "Unix time the last deploy of reconciler apply ended.", float64(last.End.UnixMilli())/1000)
	gauge(LastDuration, "Duration of the last deploy of reconciler apply, health-check waits and bake included.", last.End.Sub(last.Start).Seconds())
	gauge(LastSuccess, "1 when the last deploy of reconciler apply succeeded, else 0.", b2f(last.Result == history.Succeeded))
	gauge(LastRolledBack, "1 when the last deploy of reconciler apply was rolled back, else 0.", b2f(last.RolledBack))
	gauge(LastRequests, "Requests nginx sent to the new colors while the last deploy watched them (bake, canary steps).", float64(last.Requests))
	gauge(LastRequestErrors, "Of "+LastRequests+", those answered with a 5xx status.", float64(last.Errors))
	gauge(LastStreamsCut, "Busy connections of old colors (streams, requests in flight) the last deploy's drains cut at their deadline.", float64(last.StreamsCut))
	p95 := metrics.NewGaugeVec(LastP95,
		"95th percentile response time in the access logs of the last deploy's watched sites, before the deploy and during it; absent when no request was logged.",
		envLabel, p95WindowLabel)
	if last.P95Before > 0 {
		p95.WithLabelValues(env, "before").Set(last.P95Before.Seconds())
	}
	if last.P95After > 0 {
		p95.WithLabelValues(env, "after").Set(last.P95After.Seconds())
	}
	reg.MustRegister(p95)

	return reg.AppendText(nil)
}

// Write renders the metrics of env and replaces the file at path with them
// atomically (mode 0644: node_exporter runs as another user).
func Write(path, env string, last history.Record, all []history.Record) error {
	if err := atomicfile.Write(path, Render(env, last, all), 0o644); err != nil {
		return fmt.Errorf("write metrics file: %w", err)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
