package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
)

// previewKey is the hash key of the in-memory host of a preview. It only
// has to be the same on both sides: no hash leaves the process.
var previewKey = []byte("reconciler diff --base")

// previewNamesDir is where the in-memory host of a preview keeps the name
// markers of the base's plan. It never reaches the plan that is printed.
const previewNamesDir = "/diff-base/names"

// Preview plans env's desired state at head against the host that an
// apply of base would leave (diff --base): what a pull request changes,
// made without the host and without secrets. The base's plan is applied to
// an in-memory host (every container starts and passes its checks at
// once); secrets are compared by their references only. A base without
// the env file is an empty host.
func Preview(ctx context.Context, head, base Source, env string) (*reconciler.Plan, error) {
	e, err := state.Load(head.FS, env)
	if err != nil {
		return nil, err
	}
	d, err := state.Resolve(e, head.FS, head.Hash, placeholderSecrets(e))
	if err != nil {
		return nil, err
	}
	o := &state.Observed{ImageIDs: map[string]string{}}
	if _, err := fs.Stat(base.FS, state.EnvPath(env)); err == nil {
		if o, err = appliedHost(ctx, base, env, d); err != nil {
			return nil, fmt.Errorf("--base %s: %w", state.ShortHash(base.Hash), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--base %s: %w", state.ShortHash(base.Hash), err)
	}
	return reconciler.Diff(d, o, previewKey)
}

// appliedHost is the host that base's plan, made against an empty host,
// leaves behind, observed for the desired state d (its images, its nginx
// confDir), with the base's name markers. Image IDs are stand-ins derived
// from the reference, the same on both sides.
func appliedHost(ctx context.Context, base Source, env string, d *state.Desired) (*state.Observed, error) {
	be, err := state.Load(base.FS, env)
	if err != nil {
		return nil, err
	}
	bd, err := state.Resolve(be, base.FS, base.Hash, placeholderSecrets(be))
	if err != nil {
		return nil, err
	}
	bd.NamesDir = previewNamesDir // name steps need a directory
	bp, err := reconciler.Diff(bd, &state.Observed{}, previewKey)
	if err != nil {
		return nil, err
	}
	h := memhost.New()
	hp, _ := bp.SplitRecords() // the in-memory host has no Route 53
	if _, err := h.Applier(memhost.NewClock(time.Unix(0, 0))).Apply(ctx, hp); err != nil {
		return nil, err
	}
	od := *d
	od.NamesDir = bd.NamesDir
	o, err := h.Observed(ctx, &od)
	if err != nil {
		return nil, err
	}
	o.DNS = appliedRecords(bd, d)
	return o, nil
}

// appliedRecords is Route 53 as an apply of bd leaves it, read for d:
// bd's record sets, owned, each site check's id a stand-in named after
// its service (the same on both sides, shown only where it changes).
func appliedRecords(bd, d *state.Desired) *state.ObservedDNS {
	if len(bd.Records) == 0 && len(d.Records) == 0 {
		return nil
	}
	dns := &state.ObservedDNS{SiteChecks: map[string]string{}}
	for _, c := range append(slices.Clone(bd.SiteChecks), d.SiteChecks...) {
		dns.SiteChecks[c.Service] = "(site check of " + c.Service + ")"
	}
	for _, r := range bd.Records {
		if r.HealthCheckService != "" {
			r.HealthCheckID = dns.SiteChecks[r.HealthCheckService]
		}
		r.HealthCheckService, r.File, r.Field = "", "", ""
		dns.Records = append(dns.Records, r)
		dns.Owned = append(dns.Owned, r.RecordKey)
	}
	return dns
}

// placeholderSecrets gives every secret reference of e a stand-in value
// derived from the reference itself: a changed reference shows as a
// changed secret, and no value is ever read.
func placeholderSecrets(e *state.Env) map[state.SecretRef]string {
	vals := map[state.SecretRef]string{}
	for _, ref := range e.SecretRefs() {
		vals[ref] = "reference:" + ref.String()
	}
	return vals
}
