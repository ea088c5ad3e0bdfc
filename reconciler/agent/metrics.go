package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the agent's Prometheus metrics, on a registry of their own
// (no global state), with the Go runtime and process collectors.
type Metrics struct {
	Registry *prometheus.Registry

	Deployments         *prometheus.CounterVec   // env, result
	DeploymentDuration  *prometheus.HistogramVec // env
	Rollbacks           *prometheus.CounterVec   // env
	DriftRepairs        *prometheus.CounterVec   // env
	DriftDetected       *prometheus.GaugeVec     // env
	GitFetchDuration    *prometheus.HistogramVec // env
	GitFetchErrors      *prometheus.CounterVec   // env
	SignatureRefusals   *prometheus.CounterVec   // env
	AppliedCommit       *prometheus.GaugeVec     // env, commit
	Ready               *prometheus.GaugeVec     // env
	WebhookRequests     *prometheus.CounterVec   // result
	LastSuccessfulFetch *prometheus.GaugeVec     // env
	DeployRequests      *prometheus.CounterVec   // env
	StreamsCut          *prometheus.CounterVec   // env
	DeployErrors        *prometheus.CounterVec   // env
	CrashLooping        *prometheus.GaugeVec     // env
	UnhealthySites      *prometheus.GaugeVec     // env
}

// NewMetrics makes and registers the metrics.
func NewMetrics() *Metrics {
	env := []string{"env"}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Deployments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_deployments_total",
			Help: "Deploy attempts of a new commit, by result (succeeded, failed, refused, interrupted, transient)."}, []string{"env", "result"}),
		DeploymentDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "reconciler_deployment_duration_seconds",
			Help:    "Duration of deploy attempts that applied a plan, health-check waits included.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}}, env),
		Rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_rollbacks_total",
			Help: "Changes undone before their traffic switch (the new color removed, traffic kept on the live one)."}, env),
		DriftRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_drift_repairs_total",
			Help: "Changes applied to repair drift from the applied commit."}, env),
		DriftDetected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconciler_drift_detected",
			Help: "Changes the last drift check found and did not repair (--no-heal)."}, env),
		GitFetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "reconciler_git_fetch_duration_seconds",
			Help:    "Duration of git fetches of the desired-state branch.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, env),
		GitFetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_git_fetch_errors_total",
			Help: "Git fetches that failed."}, env),
		SignatureRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_signature_refusals_total",
			Help: "Commits refused because they are unsigned or not signed by a trusted key."}, env),
		AppliedCommit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconciler_applied_commit_info",
			Help: "1 for the commit the host was last converged to."}, []string{"env", "commit"}),
		Ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconciler_ready",
			Help: "1 when the last fetch, deploy and drift check succeeded (as /readyz)."}, env),
		WebhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_webhook_requests_total",
			Help: "Webhook requests, by result (accepted, ignored, unauthorized, bad_request)."}, []string{"result"}),
		LastSuccessfulFetch: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconciler_last_successful_fetch_timestamp_seconds",
			Help: "Unix time of the last successful git fetch."}, env),
		DeployRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_deploy_requests_total",
			Help: "Requests nginx sent to a new color while a bake or canary step watched it."}, env),
		DeployErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_deploy_request_errors_total",
			Help: "Of reconciler_deploy_requests_total, those answered with a 5xx status."}, env),
		StreamsCut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconciler_deploy_streams_cut_total",
			Help: "Busy connections of old colors (streams, requests in flight) cut at the drain deadline."}, env),
		CrashLooping: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconciler_crash_looping_containers",
			Help: "Containers of the env that restarted at least 3 times, as last observed."}, env),
		UnhealthySites: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconciler_unhealthy_sites",
			Help: "Sites of the env that nginx routes otherwise than their markers say, or that answer 5xx while their live container is healthy, as last asked through nginx."}, env),
	}
	m.Registry.MustRegister(m.Deployments, m.DeploymentDuration, m.Rollbacks, m.DriftRepairs, m.DriftDetected,
		m.GitFetchDuration, m.GitFetchErrors, m.SignatureRefusals, m.AppliedCommit, m.Ready, m.WebhookRequests,
		m.LastSuccessfulFetch, m.DeployRequests, m.DeployErrors, m.StreamsCut, m.CrashLooping, m.UnhealthySites,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
