// Package secrets resolves the secret references of an env file
// (env:VAR, file:/path) to their values. Values are returned to the caller
// only; they never reach a log or an error.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/developer-mesh/reconciler/state"
)

// ErrUnsupported is returned for a reference whose backend is not
// configured on this host.
var ErrUnsupported = errors.New("secret backend not available")

// Backend resolves the references of one scheme (state.SchemeSSM,
// state.SchemeSecretsManager).
type Backend interface {
	// Resolve returns a value for every ref, keyed by it, or an error that
	// names the failing references, never a value.
	Resolve(ctx context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error)
}

// Resolver resolves references by scheme: env: and file: itself, the
// others through Backends.
type Resolver struct {
	// LookupEnv reads the reconciler's own environment; os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// Backends by scheme, e.g. state.SchemeSSM.
	Backends map[string]Backend
	// Guard limits what env: and file: may read on this host.
	Guard
}

// Guard keeps an env file (anyone who can merge to the desired-state
// branch) from reading the host's own secrets through env: and file:.
type Guard struct {
	// DenyDirs are directories no file: reference may read from (the state
	// dir, which holds the hash key and the mirror's credentials), links
	// resolved.
	DenyDirs []string
	// AllowEnv, when not empty, are the only variables env: may read;
	// else any but the ones DeniedEnv refuses.
	AllowEnv []string
}

// DeniedEnv reports whether env: may not read name whatever AllowEnv says:
// reconciler's own variables (RECONCILER_GIT_TOKEN,
// RECONCILER_WEBHOOK_SECRET, ...) and the AWS credentials of the host.
func DeniedEnv(name string) bool {
	return strings.HasPrefix(name, "RECONCILER_") || name == "AWS_SECRET_ACCESS_KEY" || name == "AWS_SESSION_TOKEN"
}

// checkEnv says why env: may not read name; nil when it may.
func (g Guard) checkEnv(name string) error {
	if DeniedEnv(name) {
		return fmt.Errorf("environment variable %s is reconciler's own or the host's AWS credential; an env file may not read it", name)
	}
	if len(g.AllowEnv) > 0 && !slices.Contains(g.AllowEnv, name) {
		return fmt.Errorf("environment variable %s is not in --secret-env-allow (%s)", name, strings.Join(g.AllowEnv, ","))
	}
	return nil
}

// checkFile says why file: may not read path; nil when it may.
func (g Guard) checkFile(path string) error {
	real := filepath.Clean(path)
	if r, err := filepath.EvalSymlinks(real); err == nil {
		real = r
	}
	for _, d := range g.DenyDirs {
		if d == "" {
			continue
		}
		dir, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			dir = r
		}
		if rel, err := filepath.Rel(dir, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return fmt.Errorf("%s is inside reconciler's state dir %s (its hash key, locks and mirrors); an env file may not read it", path, d)
		}
	}
	return nil
}

// Resolve returns refs' values keyed by reference. It reports every
// reference it could not resolve, one error each (a backend's may name
// several), joined in the order of their text whatever the order of refs.
func (r *Resolver) Resolve(ctx context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error) {
	lookup := r.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	refs = slices.Clone(refs)
	slices.SortFunc(refs, func(a, b state.SecretRef) int { return strings.Compare(a.String(), b.String()) })
	out := make(map[state.SecretRef]string, len(refs))
	byScheme := map[string][]state.SecretRef{}
	var errs []error
	for _, ref := range refs {
		switch ref.Scheme {
		case state.SchemeEnv:
			if err := r.checkEnv(ref.Name); err != nil {
				errs = append(errs, fmt.Errorf("secret %s: %w", ref, err))
				continue
			}
			v, ok := lookup(ref.Name)
			if !ok {
				errs = append(errs, fmt.Errorf("secret %s: environment variable %s is not set", ref, ref.Name))
				continue
			}
			out[ref] = v
		case state.SchemeFile:
			if err := r.checkFile(ref.Name); err != nil {
				errs = append(errs, fmt.Errorf("secret %s: %w", ref, err))
				continue
			}
			b, err := os.ReadFile(ref.Name)
			if err != nil {
				errs = append(errs, fmt.Errorf("secret %s: %w", ref, pathErr(err)))
				continue
			}
			out[ref] = strings.TrimRight(string(b), "\r\n")
		default:
			byScheme[ref.Scheme] = append(byScheme[ref.Scheme], ref)
		}
	}
	for _, scheme := range state.SortedKeys(byScheme) {
		rs := byScheme[scheme]
		b, ok := r.Backends[scheme]
		if !ok {
			errs = append(errs, fmt.Errorf("secrets %s: %w: %s", refList(rs), ErrUnsupported, scheme))
			continue
		}
		vals, err := b.Resolve(ctx, rs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for k, v := range vals {
			out[k] = v
		}
	}
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// refList is refs as written, comma-separated.
func refList(refs []state.SecretRef) string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return strings.Join(out, ", ")
}

// pathErr keeps the operation and path of a file error but drops anything
// that could echo content.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return err
}
