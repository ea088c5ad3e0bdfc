package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/state"
)

// SecretsManager resolves secretsmanager:NAME and secretsmanager:NAME#key
// references from AWS Secrets Manager: the secret's current string, or one
// key of it when it is a JSON object.
type SecretsManager struct{ cli *secretsmanager.Client }

var _ secrets.Backend = (*SecretsManager)(nil)

// NewSecretsManager returns the secretsmanager backend for cfg (see Load).
func NewSecretsManager(cfg aws.Config) *SecretsManager {
	return &SecretsManager{cli: secretsmanager.NewFromConfig(cfg)}
}

// Resolve implements Backend with one GetSecretValue call per secret, however
// many keys of it are referenced. It reports every failing reference.
func (s *SecretsManager) Resolve(ctx context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error) {
	bySecret := map[string][]state.SecretRef{} // secret id → refs
	for _, ref := range refs {
		bySecret[ref.Name] = append(bySecret[ref.Name], ref)
	}
	ids := make([]string, 0, len(bySecret))
	for id := range bySecret {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make(map[state.SecretRef]string, len(refs))
	var errs []error
	for _, id := range ids {
		res, err := s.cli.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			errs = append(errs, fmt.Errorf("secret secretsmanager:%s: GetSecretValue: %w", id, err))
			continue
		}
		value := aws.ToString(res.SecretString)
		if res.SecretString == nil {
			value = string(res.SecretBinary)
		}
		var obj map[string]json.RawMessage
		parsed := false
		for _, ref := range bySecret[id] {
			key := ref.Key
			if key == "" {
				out[ref] = value
				continue
			}
			if !parsed {
				parsed = true
				if json.Unmarshal([]byte(value), &obj) != nil {
					obj = nil // the error would quote the value: leave it out
				}
			}
			if obj == nil {
				errs = append(errs, fmt.Errorf("secret %s: the secret is not a JSON object, so it has no key %q; reference it as secretsmanager:%s", ref, key, id))
				continue
			}
			raw, ok := obj[key]
			if !ok {
				errs = append(errs, fmt.Errorf("secret %s: the secret's JSON has no key %q", ref, key))
				continue
			}
			var str string
			if json.Unmarshal(raw, &str) == nil {
				out[ref] = str
			} else {
				out[ref] = string(raw) // a number or boolean, as written
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
