package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/state"
)

// Route53 updates health checks by id (reconciler.HealthChecks), keeps
// one per public site (EnsureHealthCheck), and reads and changes the
// env's record sets (RecordSets, ChangeRecords). Its endpoint
// follows AWS_ENDPOINT_URL_ROUTE_53 or AWS_ENDPOINT_URL.
type Route53 struct{ cli *route53.Client }

var _ reconciler.Records = (*Route53)(nil)

// NewRoute53 returns a Route 53 client for cfg.
func NewRoute53(cfg aws.Config) *Route53 { return &Route53{cli: route53.NewFromConfig(cfg)} }

// UpdateHealthCheck sets the health check's resource path and port when
// they differ from path and port (0 leaves the port alone), and reports
// whether it changed anything. The update names the version it read, so a
// concurrent change fails instead of being overwritten.
func (r *Route53) UpdateHealthCheck(ctx context.Context, id, path string, port int) (bool, error) {
	out, err := r.cli.GetHealthCheck(ctx, &route53.GetHealthCheckInput{HealthCheckId: aws.String(id)})
	if err != nil {
		return false, fmt.Errorf("get Route 53 health check %s: %w", id, err)
	}
	in := &route53.UpdateHealthCheckInput{HealthCheckId: aws.String(id), HealthCheckVersion: out.HealthCheck.HealthCheckVersion}
	changed := false
	if cfg := out.HealthCheck.HealthCheckConfig; cfg != nil {
		if path != "" && aws.ToString(cfg.ResourcePath) != path {
			in.ResourcePath, changed = aws.String(path), true
		}
		if port > 0 && aws.ToInt32(cfg.Port) != int32(port) {
			in.Port, changed = aws.Int32(int32(port)), true
		}
	}
	if !changed {
		return false, nil
	}
	if _, err := r.cli.UpdateHealthCheck(ctx, in); err != nil {
		return false, fmt.Errorf("update Route 53 health check %s: %w", id, err)
	}
	return true, nil
}

// EnsureHealthCheck makes the Route 53 health check of a public site match
// c (host.SiteChecks). The site's check is the one whose FQDN and type
// (HTTP or HTTPS) are c's: when none exists it is created, with a caller
// reference derived from c, so a retried create returns the same check;
// when one exists its path, port and failure threshold are updated where
// they differ (its request interval cannot change in Route 53 and is left
// alone). It returns the check's id and which of the three happened.
func (r *Route53) EnsureHealthCheck(ctx context.Context, c state.SiteHealthCheck) (string, string, error) {
	found, err := r.findChecks(ctx, []state.SiteHealthCheck{c})
	if err != nil {
		return "", "", err
	}
	if found[c.Service] == nil {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%d|%s|%d|%d", c.FQDN, c.Type, c.Port, c.Path, c.RequestInterval, c.FailureThreshold)))
		out, err := r.cli.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{
			CallerReference: aws.String("reconciler-" + hex.EncodeToString(sum[:12])),
			HealthCheckConfig: &types.HealthCheckConfig{
				Type: types.HealthCheckType(c.Type), FullyQualifiedDomainName: aws.String(c.FQDN), Port: aws.Int32(int32(c.Port)),
				ResourcePath: aws.String(c.Path), RequestInterval: aws.Int32(int32(c.RequestInterval)),
				FailureThreshold: aws.Int32(int32(c.FailureThreshold)), EnableSNI: aws.Bool(c.Type == "HTTPS"),
			},
		})
		if err != nil {
			return "", "", fmt.Errorf("create Route 53 health check of %s: %w", c.FQDN, err)
		}
		return aws.ToString(out.HealthCheck.Id), awscloud.HealthCheckCreated, nil
	}
	id, cfg := aws.ToString(found[c.Service].Id), found[c.Service].HealthCheckConfig
	in := &route53.UpdateHealthCheckInput{HealthCheckId: aws.String(id), HealthCheckVersion: found[c.Service].HealthCheckVersion}
	changed := false
	if aws.ToString(cfg.ResourcePath) != c.Path {
		in.ResourcePath, changed = aws.String(c.Path), true
	}
	if aws.ToInt32(cfg.Port) != int32(c.Port) {
		in.Port, changed = aws.Int32(int32(c.Port)), true
	}
	if aws.ToInt32(cfg.FailureThreshold) != int32(c.FailureThreshold) {
		in.FailureThreshold, changed = aws.Int32(int32(c.FailureThreshold)), true
	}
	if !changed {
		return id, awscloud.HealthCheckUnchanged, nil
	}
	if _, err := r.cli.UpdateHealthCheck(ctx, in); err != nil {
		return "", "", fmt.Errorf("update Route 53 health check %s of %s: %w", id, c.FQDN, err)
	}
	return id, awscloud.HealthCheckUpdated, nil
}

// findChecks lists the health checks once and returns, by service, the
// check of each site in checks: the first whose FQDN and type are the
// site's (the rule of EnsureHealthCheck); absent when none.
func (r *Route53) findChecks(ctx context.Context, checks []state.SiteHealthCheck) (map[string]*types.HealthCheck, error) {
	found := map[string]*types.HealthCheck{}
	var marker *string
	for len(found) < len(checks) {
		out, err := r.cli.ListHealthChecks(ctx, &route53.ListHealthChecksInput{Marker: marker})
		if err != nil {
			return nil, fmt.Errorf("list Route 53 health checks: %w", err)
		}
		for i, h := range out.HealthChecks {
			cfg := h.HealthCheckConfig
			if cfg == nil {
				continue
			}
			for _, c := range checks {
				if found[c.Service] == nil && strings.EqualFold(aws.ToString(cfg.FullyQualifiedDomainName), c.FQDN) && string(cfg.Type) == c.Type {
					found[c.Service] = &out.HealthChecks[i]
				}
			}
		}
		if !out.IsTruncated || out.NextMarker == nil {
			break
		}
		marker = out.NextMarker
	}
	return found, nil
}

// SiteCheckIDs returns the id of the Route 53 health check of each site in
// checks, by service, from one listing; a site without a check is absent.
func (r *Route53) SiteCheckIDs(ctx context.Context, checks []state.SiteHealthCheck) (map[string]string, error) {
	found, err := r.findChecks(ctx, checks)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for svc, h := range found {
		ids[svc] = aws.ToString(h.Id)
	}
	return ids, nil
}

// RecordSets returns the record sets of zone with name and type, of every
// set identifier (every region's share), in normal form (state.RecordSet).
// It lists from name and type on and stops at the first other name or
// type: one call for a name with up to 100 record sets.
func (r *Route53) RecordSets(ctx context.Context, zone, name, typ string) ([]state.RecordSet, error) {
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zone), StartRecordName: aws.String(name),
		StartRecordType: types.RRType(typ), MaxItems: aws.Int32(100)}
	var out []state.RecordSet
	for {
		page, err := r.cli.ListResourceRecordSets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list Route 53 record sets %s %s of zone %s: %w", name, typ, zone, err)
		}
		for _, rr := range page.ResourceRecordSets {
			if state.NormalName(aws.ToString(rr.Name)) != name || string(rr.Type) != typ {
				return out, nil
			}
			out = append(out, recordSet(zone, rr))
		}
		if !page.IsTruncated || state.NormalName(aws.ToString(page.NextRecordName)) != name || string(page.NextRecordType) != typ {
			return out, nil
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = page.NextRecordName, page.NextRecordType, page.NextRecordIdentifier
	}
}

// recordSet is rr of zone in normal form. An alias record set has no TTL
// and no values: it differs from every record set an env declares.
func recordSet(zone string, rr types.ResourceRecordSet) state.RecordSet {
	typ := string(rr.Type)
	var values []string
	for _, v := range rr.ResourceRecords {
		values = append(values, aws.ToString(v.Value))
	}
	return state.RecordSet{
		RecordKey: state.RecordKey{Zone: zone, Name: state.NormalName(aws.ToString(rr.Name)), Type: typ, SetIdentifier: aws.ToString(rr.SetIdentifier)},
		TTL:       aws.ToInt64(rr.TTL), Values: state.NormalValues(typ, values), Region: string(rr.Region), Failover: string(rr.Failover),
		HealthCheckID: aws.ToString(rr.HealthCheckId),
	}
}

// ChangeRecords sends changes to zone as one ChangeResourceRecordSets
// batch: Route 53 makes all of them or none.
func (r *Route53) ChangeRecords(ctx context.Context, zone string, changes []reconciler.RecordChange) error {
	batch := &types.ChangeBatch{Comment: aws.String("reconciler")}
	for _, c := range changes {
		rec := c.Record
		rrs := &types.ResourceRecordSet{Name: aws.String(rec.Name), Type: types.RRType(rec.Type), TTL: aws.Int64(rec.TTL)}
		if rec.SetIdentifier != "" {
			rrs.SetIdentifier = aws.String(rec.SetIdentifier)
		}
		for _, v := range rec.Values {
			rrs.ResourceRecords = append(rrs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
		}
		if rec.Region != "" {
			rrs.Region = types.ResourceRecordSetRegion(rec.Region)
		}
		if rec.Failover != "" {
			rrs.Failover = types.ResourceRecordSetFailover(rec.Failover)
		}
		if rec.HealthCheckID != "" {
			rrs.HealthCheckId = aws.String(rec.HealthCheckID)
		}
		batch.Changes = append(batch.Changes, types.Change{Action: types.ChangeAction(c.Action), ResourceRecordSet: rrs})
	}
	if _, err := r.cli.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zone), ChangeBatch: batch}); err != nil {
		// The error's own text is "ChangeBatch errors occurred"; what
		// went wrong is in its messages.
		var icb *types.InvalidChangeBatch
		if errors.As(err, &icb) && len(icb.Messages) > 0 {
			return fmt.Errorf("change Route 53 record sets of zone %s: %s: %w", zone, strings.Join(icb.Messages, "; "), err)
		}
		return fmt.Errorf("change Route 53 record sets of zone %s: %w", zone, err)
	}
	return nil
}
