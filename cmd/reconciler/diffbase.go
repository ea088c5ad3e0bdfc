package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
	"github.com/developer-mesh/reconciler/templates"
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
	head, err := gitrepo.Open(ctx, f.repo, f.ref)
	if err != nil {
		return nil, nil, err
	}
	e, err := state.Load(head.FS, f.env)
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
		bp, err := reconciler.Diff(bd, &state.Observed{}, baseKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--base %s: %w", base, err)
		}
		o, err = appliedHost(bp, baseKey)
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
func placeholderSecrets(e *state.Env) map[state.SecretRef]string {
	vals := map[state.SecretRef]string{}
	for _, ref := range e.SecretRefs() {
		vals[ref] = "reference:" + ref.String()
	}
	return vals
}

// appliedHost is the host that p, planned against an empty host, leaves
// behind: every started container running, every nginx file written, the
// traffic on the colors p switched to, the migrations recorded. Image IDs
// are stand-ins derived from the reference, the same on both sides.
func appliedHost(p *reconciler.Plan, key []byte) (*state.Observed, error) {
	o := &state.Observed{ImageIDs: map[string]string{}}
	live := map[string]state.Color{}
	for _, c := range p.Changes {
		for _, s := range c.Steps {
			switch s.Action {
			case reconciler.ActPull:
				o.ImageIDs[s.Image] = fakeImageID(s.Image)
			case reconciler.ActStart:
				cs := s.Container
				sum := cs.Spec.Summarize(key)
				var nets map[string][]string
				if cs.EnvNetwork != "" {
					nets = map[string][]string{cs.EnvNetwork: slices.Sorted(slices.Values(cs.Aliases))}
				}
				o.Containers = append(o.Containers, state.Container{
					ID: cs.Name, Name: cs.Name,
					Service: cs.Labels[state.LabelService], Color: state.Color(cs.Labels[state.LabelColor]),
					Commit: p.Commit, SpecHash: sum.Hash(), Spec: sum,
					ImageID: fakeImageID(cs.Spec.Image), State: "running",
					HostPort: cs.HostPort, Memory: cs.Spec.Memory, Networks: nets,
				})
			case reconciler.ActWriteNginx:
				_, service, blue, green, hdrLive, ok := templates.ParseHeader(s.Site.Content)
				if !ok {
					return nil, fmt.Errorf("nginx file %s has no reconciler header", s.Site.Path)
				}
				o.Sites = append(o.Sites, state.Site{
					Service: service, Path: s.Site.Path, Content: s.Site.Content,
					Live: hdrLive, BluePort: blue, GreenPort: green,
				})
			case reconciler.ActName:
				if o.Names == nil {
					o.Names = map[string]state.Color{}
				}
				o.Names[s.Service] = s.Color
			case reconciler.ActNameProxy:
				np := s.NameProxy
				o.NameProxies = append(o.NameProxies, state.NameProxy{Name: np.Name, Service: np.Service, Port: np.Port, Network: np.Network, State: "running"})
			case reconciler.ActSwitch:
				live[s.Service] = s.Color
			case reconciler.ActRecord:
				o.LastMigration = s.Hash
			}
		}
	}
	sort.Slice(o.Containers, func(i, j int) bool { return o.Containers[i].Name < o.Containers[j].Name })
	sort.Slice(o.Sites, func(i, j int) bool { return o.Sites[i].Service < o.Sites[j].Service })
	for i := range o.Sites {
		if c, ok := live[o.Sites[i].Service]; ok {
			o.Sites[i].Live = c
		} else if o.Sites[i].Live == "" {
			o.Sites[i].Live = state.Blue // no marker file: nginx sends to blue
		}
	}
	return o, nil
}

func fakeImageID(ref string) string {
	d := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(d[:])
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
