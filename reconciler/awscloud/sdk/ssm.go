package sdk

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/state"
)

// ssmBatch is the most names one GetParameters call takes.
const ssmBatch = 10

// SSM resolves ssm:/name references from AWS Systems Manager Parameter
// Store. SecureString parameters are decrypted.
type SSM struct{ cli *ssm.Client }

var _ secrets.Backend = (*SSM)(nil)

// NewSSM returns the ssm backend for cfg (see Load).
func NewSSM(cfg aws.Config) *SSM { return &SSM{cli: ssm.NewFromConfig(cfg)} }

// Resolve implements Backend with GetParameters calls of up to ten names,
// WithDecryption. Parameters that do not exist are reported together, by
// reference.
func (s *SSM) Resolve(ctx context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error) {
	byName := make(map[string]state.SecretRef, len(refs))
	for _, ref := range refs {
		byName[ref.Name] = ref
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[state.SecretRef]string, len(refs))
	var missing []string
	for i := 0; i < len(names); i += ssmBatch {
		batch := names[i:min(i+ssmBatch, len(names))]
		res, err := s.cli.GetParameters(ctx, &ssm.GetParametersInput{Names: batch, WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("secrets %s: SSM GetParameters: %w", ssmRefs(batch), err)
		}
		for _, p := range res.Parameters {
			ref, ok := byName[aws.ToString(p.Name)]
			if !ok {
				continue // a name we did not ask for; never expected
			}
			out[ref] = aws.ToString(p.Value)
		}
		missing = append(missing, res.InvalidParameters...)
	}
	for _, n := range names {
		if _, ok := out[byName[n]]; !ok && !contains(missing, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("secrets %s: no such parameter in SSM Parameter Store (region %s), or no permission to read it", ssmRefs(missing), s.cli.Options().Region)
	}
	return out, nil
}

// ssmRefs is the references of the parameters names, comma-separated.
func ssmRefs(names []string) string {
	refs := make([]state.SecretRef, len(names))
	for i, n := range names {
		refs[i] = state.SecretRef{Scheme: state.SchemeSSM, Name: n}
	}
	return refList(refs)
}

// refList is refs as written, comma-separated.
func refList(refs []state.SecretRef) string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return strings.Join(out, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
