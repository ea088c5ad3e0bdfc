package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// baseKey is the hash key of the synthetic host of diff --base. It only has
// to be the same on both sides: no hash leaves the process.
var baseKey = []byte("reconciler diff --base")

// baseNote is printed above a --base plan so that a reader of a PR comment
// knows what was compared.
const baseNote = "Desired state compared with the desired state at %s (%s), as if it had been applied to an empty host;\n" +
	"the host itself was not read. Secrets are compared by their references only: values are never read or shown.\n" +
	"Images listed under pull are the ones the base does not use.\n\n"

// planBase plans the desired state of f at f.ref against the host as an
// apply of the base commit would leave it: a preview of what a PR changes,
// made without access to the host or to its secrets.
func planBase(ctx context.Context, f envFlags, base string) (*reconciler.Plan, *gitrepo.Commit, error) {
	head, e, err := loadEnv(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	d, err := state.Resolve(e, head.FS, head.Hash, placeholderSecrets(e))
	if err != nil {
		return nil, nil, err
	}
	bc, err := head.Resolve(base)
	if err != nil {
		return nil, nil, fmt.Errorf("--base: %w", err)
	}
	o := &state.Observed{ImageIDs: map[string]string{}}
	if _, err := fs.Stat(bc.FS, state.EnvPath(f.env)); err == nil {
		be, err := state.Load(bc.FS, f.env)
		if err != nil {
			return nil, nil, fmt.Errorf("--base %s: %w", base, err)
		}
		bd, err := state.Resolve(be, bc.FS, bc.Hash, placeholderSecrets(be))
		if err != nil {
			return nil, nil, fmt.Errorf("--base %s: %w", base, err)
		}
		bd.NamesDir = baseNamesDir // name steps need a directory
		bp, err := reconciler.Diff(bd, &state.Observed{}, baseKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--base %s: %w", base, err)
		}
		o, err = appliedHost(ctx, bd, d, bp)
		if err != nil {
			return nil, nil, fmt.Errorf("--base %s: %w", base, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("--base %s: %w", base, err)
	}
	p, err := reconciler.Diff(d, o, baseKey)
	if err != nil {
		return nil, nil, err
	}
	return p, bc, nil
}

// placeholderSecrets gives every secret reference of e a stand-in value
// derived from the reference itself: a changed reference shows as a changed
// secret, and no value is ever read.
func placeholderSecrets(e *state.Env) map[string]string {
	vals := map[string]string{}
	for _, ref := range e.SecretRefs() {
		vals[ref] = "reference:" + ref
	}
	return vals
}

// baseNamesDir is where the in-memory host of diff --base keeps the name
// markers of the base plan. It never reaches the plan that is printed.
const baseNamesDir = "/diff-base/names"

// appliedHost is the host that bd's plan p, made against an empty host,
// leaves behind, observed for the desired state d: p is applied to an
// in-memory host (every container starts and passes its checks at once).
// Image IDs are stand-ins derived from the reference, the same on both
// sides.
func appliedHost(ctx context.Context, bd, d *state.Desired, p *reconciler.Plan) (*state.Observed, error) {
	h := memhost.New()
	if _, err := h.Applier(memhost.NewClock(time.Unix(0, 0))).Apply(ctx, p); err != nil {
		return nil, err
	}
	// Observed as for d (its images, its nginx confDir), with the base's
	// name markers; d itself keeps no names directory, as before.
	od := *d
	od.NamesDir = bd.NamesDir
	return h.Observed(ctx, &od)
}

// diffBase runs planBase and, for text output, prints what was compared.
func diffBase(ctx context.Context, g *globals, f envFlags, base, output string) (*reconciler.Plan, error) {
	p, bc, err := planBase(ctx, f, base)
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf(baseNote, base, bc.Hash[:12])
	if output == "json" {
		fmt.Fprint(g.stderr, note)
	} else {
		fmt.Fprint(g.stdout, note)
	}
	return p, nil
}
