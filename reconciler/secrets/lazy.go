package secrets

import (
	"context"
	"fmt"
	"slices"

	"github.com/developer-mesh/reconciler/state"
)

// AWS resolves the ssm: and secretsmanager: references of refs all at
// once (awscloud.Loader.Secrets): the values by reference, and by scheme
// the error of that scheme's references, which names references, never a
// value; err is the failure of the whole call (no AWS configuration).
type AWS func(ctx context.Context, refs []state.SecretRef) (values map[state.SecretRef]string, errs map[string]error, err error)

// OnDemand resolves references like Resolver, asking AWS, once per
// Resolve and only when some reference needs it: an env with env: and
// file: secrets only never touches AWS.
type OnDemand struct {
	AWS AWS
	// Guard limits env: and file: (see Resolver).
	Guard Guard
}

// Resolve implements host.Secrets.
func (o OnDemand) Resolve(ctx context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error) {
	r := &Resolver{Backends: map[string]Backend{}, Guard: o.Guard}
	var remote []state.SecretRef
	for _, ref := range refs {
		if viaAWS(ref) {
			remote = append(remote, ref)
		}
	}
	if len(remote) > 0 {
		values, errs, err := o.AWS(ctx, remote)
		if err != nil {
			return nil, err
		}
		for _, ref := range remote {
			r.Backends[ref.Scheme] = fetched{values: values, err: errs[ref.Scheme]}
		}
	}
	return r.Resolve(ctx, refs)
}

// fetched is a Backend that answers from values resolved before, or
// with the error of its scheme.
type fetched struct {
	values map[state.SecretRef]string
	err    error
}

func (f fetched) Resolve(_ context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := make(map[state.SecretRef]string, len(refs))
	for _, ref := range refs {
		v, ok := f.values[ref]
		if !ok {
			return nil, fmt.Errorf("secrets %s: no value and no error from AWS", refList(refs))
		}
		out[ref] = v
	}
	return out, nil
}

// UsesAWS reports whether any of refs is resolved through AWS.
func UsesAWS(refs []state.SecretRef) bool { return slices.ContainsFunc(refs, viaAWS) }

// viaAWS reports whether ref is resolved through AWS.
func viaAWS(ref state.SecretRef) bool {
	return ref.Scheme == state.SchemeSSM || ref.Scheme == state.SchemeSecretsManager
}
