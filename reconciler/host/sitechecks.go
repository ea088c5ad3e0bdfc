package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/developer-mesh/reconciler/state"
)

// SiteChecks keeps the external health check of each public site
// (awscloud.Route53).
type SiteChecks interface {
	// EnsureHealthCheck creates the site's check when missing or updates it
	// to c, and returns its id and "created", "updated" or "unchanged".
	EnsureHealthCheck(ctx context.Context, c state.SiteHealthCheck) (id, action string, err error)
}

// SyncSiteChecks makes the Route 53 health check of every public site of e
// (route53.healthChecks; state.Env.SiteHealthChecks) match the env, and
// returns one line per site: "route53 mcp-server: mcp.dev-mesh.io HTTPS:443/health created (ID)".
// It does nothing for an env without route53.healthChecks. Every site is
// tried; the error joins the failures. The sites are served already when
// it runs (after a deploy, or with nothing to deploy), so a failure here is
// a warning, never a rollback.
func (h *Host) SyncSiteChecks(ctx context.Context, e *state.Env, cloud Cloud) ([]string, error) {
	want := e.SiteHealthChecks()
	if len(want) == 0 {
		return nil, nil
	}
	if cloud == nil {
		return nil, errors.New("route53.healthChecks is set and no AWS access is configured")
	}
	sc, err := cloud.SiteChecks(ctx)
	if err != nil {
		return nil, fmt.Errorf("route53 health checks: %w", err)
	}
	var lines []string
	var errs []error
	for _, c := range want {
		id, action, err := sc.EnsureHealthCheck(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("route53 %s: %w", c.Service, err))
			continue
		}
		lines = append(lines, fmt.Sprintf("route53 %s: %s %s:%d%s %s (%s)", c.Service, c.FQDN, c.Type, c.Port, c.Path, action, id))
	}
	return lines, errors.Join(errs...)
}
