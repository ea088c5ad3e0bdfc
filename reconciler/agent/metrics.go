package agent

import (
	"github.com/developer-mesh/reconciler/internal/metrics"
)

// Metrics are the agent's Prometheus metrics, on a registry of their own
// (no global state), with the Go runtime and process collectors.
type Metrics struct {
	Registry *metrics.Registry

	Deployments         *metrics.CounterVec   // env, result
	DeploymentDuration  *metrics.HistogramVec // env
	Rollbacks           *metrics.CounterVec   // env
	DriftRepairs        *metrics.CounterVec   // env
	DriftDetected       *metrics.GaugeVec     // env
	GitFetchDuration    *metrics.HistogramVec // env
	GitFetchErrors      *metrics.CounterVec   // env
	SignatureRefusals   *metrics.CounterVec   // env
	AppliedCommit       *metrics.GaugeVec     // env, commit
	Ready               *metrics.GaugeVec     // env
	WebhookRequests     *metrics.CounterVec   // result
	LastSuccessfulFetch *metrics.GaugeVec     // env
	DeployRequests      *metrics.CounterVec   // env
	StreamsCut          *metrics.CounterVec   // env
	DeployErrors        *metrics.CounterVec   // env
	CrashLooping        *metrics.GaugeVec     // env
	UnhealthySites      *metrics.GaugeVec     // env
}

// NewMetrics makes and registers the metrics.
func NewMetrics() *Metrics {
	env := []string{"env"}
	m := &Metrics{
		Registry: metrics.NewRegistry(),
		Deployments: metrics.NewCounterVec("reconciler_deployments_total",
			"Deploy attempts of a new commit, by result (succeeded, failed, refused, interrupted, transient).", "env", "result"),
		DeploymentDuration: metrics.NewHistogramVec("reconciler_deployment_duration_seconds",
			"Duration of deploy attempts that applied a plan, health-check waits included.",
			[]float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}, env...),
		Rollbacks: metrics.NewCounterVec("reconciler_rollbacks_total",
			"Changes undone before their traffic switch (the new color removed, traffic kept on the live one).", env...),
		DriftRepairs: metrics.NewCounterVec("reconciler_drift_repairs_total",
			"Changes applied to repair drift from the applied commit.", env...),
		DriftDetected: metrics.NewGaugeVec("reconciler_drift_detected",
			"Changes the last drift check found and did not repair (--no-heal).", env...),
		GitFetchDuration: metrics.NewHistogramVec("reconciler_git_fetch_duration_seconds",
			"Duration of git fetches of the desired-state branch.",
			[]float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, env...),
		GitFetchErrors: metrics.NewCounterVec("reconciler_git_fetch_errors_total",
			"Git fetches that failed.", env...),
		SignatureRefusals: metrics.NewCounterVec("reconciler_signature_refusals_total",
			"Commits refused because they are unsigned or not signed by a trusted key.", env...),
		AppliedCommit: metrics.NewGaugeVec("reconciler_applied_commit_info",
			"1 for the commit the host was last converged to.", "env", "commit"),
		Ready: metrics.NewGaugeVec("reconciler_ready",
			"1 when the last fetch, deploy and drift check succeeded (as /readyz).", env...),
		WebhookRequests: metrics.NewCounterVec("reconciler_webhook_requests_total",
			"Webhook requests, by result (accepted, ignored, unauthorized, bad_request).", "result"),
		LastSuccessfulFetch: metrics.NewGaugeVec("reconciler_last_successful_fetch_timestamp_seconds",
			"Unix time of the last successful git fetch.", env...),
		DeployRequests: metrics.NewCounterVec("reconciler_deploy_requests_total",
			"Requests nginx sent to a new color while a bake or canary step watched it.", env...),
		DeployErrors: metrics.NewCounterVec("reconciler_deploy_request_errors_total",
			"Of reconciler_deploy_requests_total, those answered with a 5xx status.", env...),
		StreamsCut: metrics.NewCounterVec("reconciler_deploy_streams_cut_total",
			"Busy connections of old colors (streams, requests in flight) cut at the drain deadline.", env...),
		CrashLooping: metrics.NewGaugeVec("reconciler_crash_looping_containers",
			"Containers of the env that restarted at least 3 times, as last observed.", env...),
		UnhealthySites: metrics.NewGaugeVec("reconciler_unhealthy_sites",
			"Sites of the env that nginx routes otherwise than their markers say, or that answer 5xx while their live container is healthy, as last asked through nginx.", env...),
	}
	m.Registry.MustRegister(m.Deployments, m.DeploymentDuration, m.Rollbacks, m.DriftRepairs, m.DriftDetected,
		m.GitFetchDuration, m.GitFetchErrors, m.SignatureRefusals, m.AppliedCommit, m.Ready, m.WebhookRequests,
		m.LastSuccessfulFetch, m.DeployRequests, m.DeployErrors, m.StreamsCut, m.CrashLooping, m.UnhealthySites,
		metrics.NewGoCollector(), metrics.NewProcessCollector())
	return m
}

// init makes the env's series exist at 0 before the first event, so that
// rate() and alerts see them from the start.
func (m *Metrics) init(env string) {
	for _, r := range []string{resultSucceeded, resultFailed, resultRefused} {
		m.Deployments.WithLabelValues(env, r)
	}
	m.Rollbacks.WithLabelValues(env)
	m.DriftRepairs.WithLabelValues(env)
	m.DriftDetected.WithLabelValues(env)
	m.GitFetchErrors.WithLabelValues(env)
	m.DeployRequests.WithLabelValues(env)
	m.DeployErrors.WithLabelValues(env)
	m.StreamsCut.WithLabelValues(env)
	m.CrashLooping.WithLabelValues(env)
	m.UnhealthySites.WithLabelValues(env)
	m.SignatureRefusals.WithLabelValues(env)
	m.Ready.WithLabelValues(env)
}
