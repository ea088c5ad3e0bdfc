package host

import (
	"errors"
	"fmt"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/textfile"
)

// ResponseTimes returns the 95th percentile response time an access log
// holds for requests in [from, to), 0 when it holds none
// (nginx.ResponseTimes).
type ResponseTimes func(path string, from, to time.Time) (time.Duration, error)

// DefaultP95Window is how far before a deploy RecordApply looks for the
// "before" response times.
const DefaultP95Window = 10 * time.Minute

// RecordOptions say what RecordApply keeps besides the history record.
type RecordOptions struct {
	// MetricsFile, when set, is replaced with the deploy's metrics in the
	// Prometheus text format (package textfile).
	MetricsFile string
	// ResponseTimes reads the p95 of the deploy's watched sites; nil
	// records none.
	ResponseTimes ResponseTimes
	// P95Window is the window before the deploy; DefaultP95Window when 0.
	P95Window time.Duration
}

// RecordApply records a deploy attempt of reconciler apply the way the
// agent records its own: one record with trigger "apply" appended to the
// env's history (statedir.Dir.HistoryPath), then the metrics file. pl is
// nil when the plan failed (deployErr is then the plan's error); start is
// when the attempt began, and it ends now. An attempt that found nothing to
// change is not a deploy: the caller does not record it. The error is
// about the recording only; the record is returned either way.
func (h *Host) RecordApply(env string, src Source, pl *Planned, start time.Time, res Result, deployErr error, o RecordOptions) (history.Record, error) {
	rec := history.Record{Env: env, Commit: src.Hash, Author: src.Author, Message: src.Message, Trigger: history.TriggerApply,
		Start: start.UTC(), End: time.Now().UTC(), Result: history.Succeeded,
		Requests: res.Traffic.Requests, Errors: res.Traffic.Errors, StreamsCut: res.StreamsCut}
	if deployErr != nil {
		rec.Result, rec.Error = history.Failed, deployErr.Error()
		rec.RolledBack = errors.Is(deployErr, reconciler.ErrRolledBack)
	}
	var errs []error
	if pl != nil {
		rec.Steps = pl.Plan.Lines()
		if o.ResponseTimes != nil {
			var err error
			if rec.P95Before, rec.P95After, err = p95(pl.Plan, rec.Start, rec.End, o); err != nil {
				errs = append(errs, err)
			}
		}
	}
	path := h.Dir.HistoryPath(env)
	st, err := history.Open(path)
	if err != nil {
		return rec, errors.Join(append(errs, err)...)
	}
	err = st.Append(rec)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rec, errors.Join(append(errs, err)...)
	}
	if o.MetricsFile != "" {
		all, _, err := history.Read(path)
		if err == nil {
			err = textfile.Write(o.MetricsFile, env, rec, all)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rec, errors.Join(errs...)
}

// p95 reads the response times of the access logs p's watches read: in
// the window before start, and from start to end. With several sites, the
// highest p95 of each window is kept: the slowest site is the one to see.
func p95(p *reconciler.Plan, start, end time.Time, o RecordOptions) (before, after time.Duration, err error) {
	window := o.P95Window
	if window == 0 {
		window = DefaultP95Window
	}
	seen := map[string]bool{}
	for _, c := range p.Changes {
		for _, s := range reconciler.Flatten(c.Steps) {
			if s.Watch == nil || s.Watch.LogPath == "" || seen[s.Watch.LogPath] {
				continue
			}
			path := s.Watch.LogPath
			seen[path] = true
			b, err := o.ResponseTimes(path, start.Add(-window), start)
			if err != nil {
				return before, after, fmt.Errorf("p95 response time: %w", err)
			}
			a, err := o.ResponseTimes(path, start, end)
			if err != nil {
				return before, after, fmt.Errorf("p95 response time: %w", err)
			}
			before, after = max(before, b), max(after, a)
		}
	}
	return before, after, nil
}
