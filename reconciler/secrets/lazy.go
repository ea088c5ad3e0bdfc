package secrets

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/developer-mesh/reconciler/state"
)

// OnDemand resolves references like Resolver, with the AWS backends
// (ssm:, secretsmanager:) made, and the AWS configuration loaded through
// Config, only when some reference needs them: an env with env: and file:
// secrets only never touches AWS.
type OnDemand struct {
	Config func(ctx context.Context) (aws.Config, error)
	// Guard limits env: and file: (see Resolver).
	Guard Guard
}

// Resolve implements host.Secrets.
func (o OnDemand) Resolve(ctx context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error) {
	r := &Resolver{Backends: map[string]Backend{}, Guard: o.Guard}
	var ssm, sm bool
	for _, ref := range refs {
		ssm = ssm || ref.Scheme == state.SchemeSSM
		sm = sm || ref.Scheme == state.SchemeSecretsManager
	}
	if ssm || sm {
		cfg, err := o.Config(ctx)
		if err != nil {
			return nil, err
		}
		if ssm {
			r.Backends[state.SchemeSSM] = NewSSM(cfg)
		}
		if sm {
			r.Backends[state.SchemeSecretsManager] = NewSecretsManager(cfg)
		}
	}
	return r.Resolve(ctx, refs)
}

// UsesAWS reports whether any of refs is resolved through AWS.
func UsesAWS(refs []state.SecretRef) bool {
	for _, ref := range refs {
		if ref.Scheme == state.SchemeSSM || ref.Scheme == state.SchemeSecretsManager {
			return true
		}
	}
	return false
}
