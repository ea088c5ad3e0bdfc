package awscloud

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
)

// Route53 updates health checks (reconciler.HealthChecks). Its endpoint
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
