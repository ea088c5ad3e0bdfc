package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/state"
)

// Serve answers one request of package awscloud's client: it reads one
// awscloud.Request from in, runs it and writes one awscloud.Response to
// out. A failure of the request (AWS's, a missing configuration, an
// unknown op or version, a reconciler of another release than release)
// is the response's error; Serve returns an error only when it cannot
// read the request or write the response. It logs nothing: secret values
// go to out only.
func Serve(ctx context.Context, release string, in io.Reader, out io.Writer) error {
	var req awscloud.Request
	var resp awscloud.Response
	result, err := func() (any, error) {
		dec := json.NewDecoder(in)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("%w: read request: %w", awscloud.ErrProtocol, err)
		}
		if req.Version != awscloud.ProtocolVersion {
			return nil, fmt.Errorf("%w: version %d, this %s speaks %d: install reconciler and %s of the same release",
				awscloud.ErrProtocol, req.Version, awscloud.HelperName, awscloud.ProtocolVersion, awscloud.HelperName)
		}
		if req.Release != "" && release != "" && req.Release != release {
			return nil, fmt.Errorf("%w: reconciler %s sent the request, this %s is of release %s: install both from the same release",
				awscloud.ErrProtocol, req.Release, awscloud.HelperName, release)
		}
		return run(ctx, req)
	}()
	if err != nil {
		resp.Error = &awscloud.WireError{Kind: awscloud.KindOf(err), Message: err.Error()}
	} else {
		if result == nil {
			result = struct{}{}
		}
		b, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		resp.Result = b
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	_, err = out.Write(append(b, '\n'))
	return err
}

// ops are the operations Serve runs, each with its arguments decoded.
var ops = map[string]func(ctx context.Context, req awscloud.Request) (any, error){
	awscloud.OpLoad: func(ctx context.Context, req awscloud.Request) (any, error) {
		cfg, err := Load(ctx, req.Settings)
		if err != nil {
			return nil, err
		}
		return awscloud.LoadResult{Region: cfg.Region}, nil
	},
	awscloud.OpIdentity: withConfig(func(ctx context.Context, cfg aws.Config, _ struct{}) (any, error) {
		arn, err := NewIdentity(cfg).CallerIdentity(ctx)
		return awscloud.IdentityResult{ARN: arn}, err
	}),
	awscloud.OpS3Put: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.S3PutArgs) (any, error) {
		s, err := NewS3(cfg, a.URL)
		if err != nil {
			return nil, err
		}
		url, err := s.Put(ctx, a.Key, a.Body)
		return awscloud.S3PutResult{URL: url}, err
	}),
	awscloud.OpRDSSnapshot: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.RDSSnapshotArgs) (any, error) {
		r := NewRDS(cfg)
		if a.Wait > 0 {
			r.Timeout = min(r.Timeout, a.Wait)
		}
		return nil, r.Snapshot(ctx, a.Instance, a.ID)
	}),
	awscloud.OpUpdateHealthCheck: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.UpdateHealthCheckArgs) (any, error) {
		changed, err := NewRoute53(cfg).UpdateHealthCheck(ctx, a.ID, a.Path, a.Port)
		return awscloud.UpdateHealthCheckResult{Changed: changed}, err
	}),
	awscloud.OpEnsureHealthCheck: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.EnsureHealthCheckArgs) (any, error) {
		id, action, err := NewRoute53(cfg).EnsureHealthCheck(ctx, a.Check)
		return awscloud.EnsureHealthCheckResult{ID: id, Action: action}, err
	}),
	awscloud.OpSiteCheckIDs: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.SiteCheckIDsArgs) (any, error) {
		ids, err := NewRoute53(cfg).SiteCheckIDs(ctx, a.Checks)
		return awscloud.SiteCheckIDsResult{IDs: ids}, err
	}),
	awscloud.OpRecordSets: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.RecordSetsArgs) (any, error) {
		sets, err := NewRoute53(cfg).RecordSets(ctx, a.Zone, a.Name, a.Type)
		return awscloud.RecordSetsResult{Sets: sets}, err
	}),
	awscloud.OpChangeRecords: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.ChangeRecordsArgs) (any, error) {
		return nil, NewRoute53(cfg).ChangeRecords(ctx, a.Zone, a.Changes)
	}),
	awscloud.OpSendEmail: withConfig(func(ctx context.Context, cfg aws.Config, a awscloud.SendEmailArgs) (any, error) {
		id, err := NewSES(cfg).SendEmail(ctx, a.From, a.To, a.Subject, a.Body)
		return awscloud.SendEmailResult{ID: id}, err
	}),
	awscloud.OpResolveSecrets: withConfig(resolveSecrets),
}

// run runs req's op.
func run(ctx context.Context, req awscloud.Request) (any, error) {
	op, ok := ops[req.Op]
	if !ok {
		known := make([]string, 0, len(ops))
		for name := range ops {
			known = append(known, name)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("%w: unknown op %q (this %s knows %v): install reconciler and %s of the same release",
			awscloud.ErrProtocol, req.Op, awscloud.HelperName, known, awscloud.HelperName)
	}
	return op(ctx, req)
}

// withConfig decodes the arguments of a request into A and loads the
// configuration of its settings before calling f.
func withConfig[A any](f func(ctx context.Context, cfg aws.Config, args A) (any, error)) func(context.Context, awscloud.Request) (any, error) {
	return func(ctx context.Context, req awscloud.Request) (any, error) {
		var args A
		if len(req.Args) > 0 {
			if err := json.Unmarshal(req.Args, &args); err != nil {
				return nil, fmt.Errorf("%w: arguments of %s: %w", awscloud.ErrProtocol, req.Op, err)
			}
		}
		cfg, err := Load(ctx, req.Settings)
		if err != nil {
			return nil, err
		}
		return f(ctx, cfg, args)
	}
}

// resolveSecrets resolves the references of a by scheme, each scheme's
// error kept apart, so the client joins them with its own as Resolver
// does.
func resolveSecrets(ctx context.Context, cfg aws.Config, a awscloud.ResolveSecretsArgs) (any, error) {
	byScheme := map[string][]state.SecretRef{}
	for _, s := range a.Refs {
		ref, err := state.ParseSecretRef(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", awscloud.ErrProtocol, err)
		}
		byScheme[ref.Scheme] = append(byScheme[ref.Scheme], ref)
	}
	res := awscloud.ResolveSecretsResult{Values: map[string]string{}}
	for _, scheme := range state.SortedKeys(byScheme) {
		var b secrets.Backend
		switch scheme {
		case state.SchemeSSM:
			b = NewSSM(cfg)
		case state.SchemeSecretsManager:
			b = NewSecretsManager(cfg)
		default:
			return nil, fmt.Errorf("%w: scheme %s is not resolved through AWS", awscloud.ErrProtocol, scheme)
		}
		vals, err := b.Resolve(ctx, byScheme[scheme])
		if err != nil {
			if res.Errors == nil {
				res.Errors = map[string]string{}
			}
			res.Errors[scheme] = err.Error()
			continue
		}
		for ref, v := range vals {
			res.Values[ref.String()] = v
		}
	}
	return res, nil
}
