package state

// checkRelease checks the env's release order: a known one, and no
// canary service in an atomic release (its traffic moves in steps, not
// together with the others).
func (c *checker) checkRelease(e *Env) {
	if !c.ok("release") {
		return
	}
	switch e.Release {
	case ReleasePerService:
	case ReleaseAtomic:
		for _, name := range SortedKeys(e.Services) {
			s := e.Services[name]
			if s.ContainerPort > 0 && s.Deploy.Strategy == Canary {
				c.errf("services."+name+".deploy.strategy", "canary cannot be part of release %q, where every changed service's traffic moves at once; use strategy %q for it, or release %q", ReleaseAtomic, BlueGreen, ReleasePerService)
			}
		}
	default:
		c.errf("release", "want %q (the default: one service after the other) or %q (all changed services switch, bake and roll back together), got %s", ReleasePerService, ReleaseAtomic, quote(e.Release))
	}
}

// checkGates checks the bounds of a watch: maxLatency, its percentile and
// the request count it waits for.
func (c *checker) checkGates(dp string, d Deploy) {
	if c.ok(dp+".maxLatency") && d.MaxLatency.D() < 0 {
		c.errf(dp+".maxLatency", "want a duration of 0s (no latency gate) or more such as \"200ms\", got %s", d.MaxLatency.D())
	}
	if c.ok(dp+".latencyPercentile") && (d.LatencyPercentile < 1 || d.LatencyPercentile > 100) {
		c.errf(dp+".latencyPercentile", "want a percentile from 1 to 100 such as 95, got %d", d.LatencyPercentile)
	}
	if c.ok(dp+".minRequests") && d.MinRequests < 1 {
		c.errf(dp+".minRequests", "want a number of requests, 1 or more, such as 20, got %d", d.MinRequests)
	}
	if d.MaxLatency.D() > 0 && d.Bake.D() == 0 && d.Strategy != Canary && c.ok(dp+".maxLatency", dp+".bake") {
		c.errf(dp+".maxLatency", "is judged during a bake or canary step, and this service has neither: set deploy.bake (such as \"5m\") or leave maxLatency out")
	}
}
