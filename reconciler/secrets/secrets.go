// Package secrets resolves the secret references of an env file
// (env:VAR, file:/path) to their values. Values are returned to the caller
// only; they never reach a log or an error.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ErrUnsupported is returned for a reference whose backend is not
// configured on this host.
var ErrUnsupported = errors.New("secret backend not available")

// Backend resolves the references of one scheme ("ssm", "secretsmanager").
type Backend interface {
	// Resolve returns a value for every ref (full references, scheme
	// included) or an error that names the failing references, never a value.
	Resolve(ctx context.Context, refs []string) (map[string]string, error)
}

// Resolver resolves references by scheme: env: and file: itself, the
// others through Backends.
type Resolver struct {
	// LookupEnv reads the reconciler's own environment; os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// Backends by scheme, e.g. "ssm".
	Backends map[string]Backend
}

// Resolve returns refs' values keyed by reference. It reports every
// reference it could not resolve.
func (r *Resolver) Resolve(ctx context.Context, refs []string) (map[string]string, error) {
	lookup := r.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	out := make(map[string]string, len(refs))
	byScheme := map[string][]string{}
	var errs []error
	for _, ref := range refs {
		scheme, rest, _ := strings.Cut(ref, ":")
		switch scheme {
		case "env":
			v, ok := lookup(rest)
			if !ok {
				errs = append(errs, fmt.Errorf("secret %s: environment variable %s is not set", ref, rest))
				continue
			}
			out[ref] = v
		case "file":
			b, err := os.ReadFile(rest)
			if err != nil {
				errs = append(errs, fmt.Errorf("secret %s: %w", ref, pathErr(err)))
				continue
			}
			out[ref] = strings.TrimRight(string(b), "\r\n")
		default:
			byScheme[scheme] = append(byScheme[scheme], ref)
		}
	}
	schemes := make([]string, 0, len(byScheme))
	for scheme := range byScheme {
		schemes = append(schemes, scheme)
	}
	// Sorted, so that the same missing references read the same each time.
	sort.Strings(schemes)
	for _, scheme := range schemes {
		rs := byScheme[scheme]
		b, ok := r.Backends[scheme]
		if !ok {
			errs = append(errs, fmt.Errorf("secrets %s: %w: %s", strings.Join(rs, ", "), ErrUnsupported, scheme))
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
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
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
