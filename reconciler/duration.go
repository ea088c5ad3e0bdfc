package reconciler

import (
	"fmt"
	"time"
)

// The allowances of steps that have no bound of their own in the plan:
// what Plan.Duration counts for them. They are generous estimates of
// one local operation, not limits the Applier enforces.
const (
	// StartAllowance is a container's create, file copy and start (also a
	// name proxy's).
	StartAllowance = 5 * time.Second
	// NginxAllowance is one write or removal of an nginx file: its test
	// and its reload, each bounded by the nginx adapter's 30s command
	// timeout, then the wait for nginx to serve the new file.
	NginxAllowance = 2*30*time.Second + loadTimeout
	// CloudCallAllowance is one call of a cloud API that does not wait
	// for a resource (a Route 53 health check update).
	CloudCallAllowance = 10 * time.Second
)

// Duration is the worst case of the time Apply takes to carry out p when
// it succeeds: each step counted at the longest it may take (a health
// wait at its startTimeout, a bake and a drain in full, a snapshot at its
// timeout, the migrations job at its timeout, a traffic move at
// RouteTimeout, a container stop at StopTimeout), steps that run together
// at the longest of them. Pulls are not counted: their time depends on
// the registry and the network, and a pull comes before any change. It
// is a pure function of the plan's steps.
func (p *Plan) Duration() time.Duration {
	var d time.Duration
	for _, c := range p.Changes {
		for _, s := range c.Steps {
			d += s.Budget()
		}
	}
	return d
}

// Pulls is the number of images p pulls, which Duration does not count.
func (p *Plan) Pulls() int {
	n := 0
	for _, c := range p.Changes {
		for _, s := range c.Steps {
			if s.Action == ActPull {
				n++
			}
		}
	}
	return n
}

// DurationLine is the line diff and apply print under a plan: its worst
// case, "≤ 9m30s", and what it leaves out; "" for an empty plan.
func (p *Plan) DurationLine() string {
	if p.Empty() {
		return ""
	}
	line := "Duration: ≤ " + FormatDuration(p.Duration()) + " (worst case: every health wait, bake, drain, snapshot and job at its limit)"
	if n := p.Pulls(); n > 0 {
		line += fmt.Sprintf(", plus %d image pull(s)", n)
	}
	return line
}

// FormatDuration is d rounded up to the second, as the duration line
// shows it: "9m30s", "45s", "1h2m0s".
func FormatDuration(d time.Duration) string {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d.String()
}

// Budget is the longest one step may take when it succeeds (see
// Plan.Duration); 0 for a step that only writes a local file or record,
// and for a pull, which Duration does not count.
func (s Step) Budget() time.Duration {
	route := func() time.Duration {
		if s.Site != nil && s.Site.Route != nil {
			return RouteTimeout
		}
		return 0
	}
	switch s.Action {
	case ActMigrate:
		if s.Container != nil {
			return s.Container.Timeout
		}
	case ActStart:
		return StartAllowance
	case ActNameProxy:
		// Started, then asked until it forwards.
		return StartAllowance + ProxyStartTimeout
	case ActWaitHealthy:
		if h := s.Health; h != nil {
			// The last check may start just before the deadline and
			// take its timeout; a failure is followed by one interval.
			return h.StartTimeout + h.Interval + h.Timeout
		}
	case ActSettle:
		if h := s.Health; h != nil {
			return h.StartTimeout + h.Interval
		}
	case ActWriteNginx, ActRemoveNginx:
		return NginxAllowance
	case ActSwitch, ActShift:
		return route()
	case ActName:
		if s.Smoke != nil && len(s.Smoke.Exec) > 0 {
			return RouteTimeout
		}
	case ActRemove, ActStop:
		return route() + StopTimeout
	case ActDrain:
		return route() + s.Drain + StopTimeout
	case ActWatch:
		if s.Watch != nil {
			d := s.Watch.For
			if s.Health != nil {
				d += s.Health.Timeout
			}
			return d
		}
	case ActSnapshot:
		return s.Timeout
	case ActHealthCheck:
		return CloudCallAllowance
	case ActSmoke:
		return smokeTimeout
	case ActTogether:
		var longest time.Duration
		for _, sub := range s.Steps {
			longest = max(longest, sub.Budget())
		}
		return longest
	}
	return 0
}
