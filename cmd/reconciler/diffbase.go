package main

import (
	"context"
	"fmt"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// baseNote is printed above a --base plan so that a reader of a PR comment
// knows what was compared.
const baseNote = "Desired state compared with the desired state at %s (%s), as if it had been applied to an empty host;\n" +
	"the host itself was not read. Secrets are compared by their references only: values are never read or shown.\n" +
	"Images listed under pull are the ones the base does not use.\n\n"

// diffBase previews what f.ref changes against base (host.Preview) and,
// for text output, prints what was compared.
func diffBase(ctx context.Context, g *globals, f envFlags, base, output string) (*reconciler.Plan, error) {
	auth, err := f.git.auth(f.repo)
	if err != nil {
		return nil, err
	}
	head, err := gitrepo.OpenAuth(ctx, f.repo, f.ref, auth)
	if err != nil {
		return nil, err
	}
	bc, err := head.Resolve(base)
	if err != nil {
		return nil, fmt.Errorf("--base: %w", err)
	}
	p, err := host.Preview(ctx, source(head), source(bc), f.env)
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf(baseNote, base, state.ShortHash(bc.Hash))
	if output == "json" {
		fmt.Fprint(g.stderr, note)
	} else {
		fmt.Fprint(g.stdout, note)
	}
	return p, nil
}
