package awscloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/developer-mesh/reconciler/state"
)

// Route53 updates health checks by id (reconciler.HealthChecks) and keeps
// one per public site (EnsureHealthCheck). Its endpoint
// follows AWS_ENDPOINT_URL_ROUTE_53 or AWS_ENDPOINT_URL.
type Route53 struct{ cli *route53.Client }

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

// Results of EnsureHealthCheck.
const (
	HealthCheckCreated   = "created"
	HealthCheckUpdated   = "updated"
	HealthCheckUnchanged = "unchanged"
)

// EnsureHealthCheck makes the Route 53 health check of a public site match
// c (host.SiteChecks). The site's check is the one whose FQDN and type
// (HTTP or HTTPS) are c's: when none exists it is created, with a caller
// reference derived from c, so a retried create returns the same check;
// when one exists its path, port and failure threshold are updated where
// they differ (its request interval cannot change in Route 53 and is left
// alone). It returns the check's id and which of the three happened.
func (r *Route53) EnsureHealthCheck(ctx context.Context, c state.SiteHealthCheck) (string, string, error) {
	var found *types.HealthCheck
	var marker *string
	for found == nil {
		out, err := r.cli.ListHealthChecks(ctx, &route53.ListHealthChecksInput{Marker: marker})
		if err != nil {
			return "", "", fmt.Errorf("list Route 53 health checks: %w", err)
		}
		for i, h := range out.HealthChecks {
			if cfg := h.HealthCheckConfig; cfg != nil && strings.EqualFold(aws.ToString(cfg.FullyQualifiedDomainName), c.FQDN) && string(cfg.Type) == c.Type {
				found = &out.HealthChecks[i]
				break
			}
		}
		if !out.IsTruncated || out.NextMarker == nil {
			break
		}
		marker = out.NextMarker
	}
	if found == nil {
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
		return aws.ToString(out.HealthCheck.Id), HealthCheckCreated, nil
	}
	id, cfg := aws.ToString(found.Id), found.HealthCheckConfig
	in := &route53.UpdateHealthCheckInput{HealthCheckId: aws.String(id), HealthCheckVersion: found.HealthCheckVersion}
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
		return id, HealthCheckUnchanged, nil
	}
	if _, err := r.cli.UpdateHealthCheck(ctx, in); err != nil {
		return "", "", fmt.Errorf("update Route 53 health check %s of %s: %w", id, c.FQDN, err)
	}
	return id, HealthCheckUpdated, nil
}
