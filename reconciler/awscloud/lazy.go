package awscloud

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/backup"
	"github.com/developer-mesh/reconciler/state"
)

// Loader loads the AWS configuration on first use and keeps it for the
// process: secrets, checks, backups, snapshots and health checks share it,
// and with it the cached credentials of the instance profile. A failure is
// not remembered. The zero Loader is ready; it is safe for concurrent use.
type Loader struct {
	mu  sync.Mutex
	set Settings
	cfg *aws.Config
}

// Use sets the environment's settings for the next Config; a change drops
// the configuration loaded for the previous ones.
func (l *Loader) Use(s Settings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s != l.set {
		l.set, l.cfg = s, nil
	}
}

// Config returns the configuration, loading it (Load, with the settings
// of Use) the first time.
func (l *Loader) Config(ctx context.Context) (aws.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg == nil {
		cfg, err := Load(ctx, l.set)
		if err != nil {
			return aws.Config{}, err
		}
		l.cfg = &cfg
	}
	return *l.cfg, nil
}

// Cloud gives a deploy the AWS APIs it uses (host.Cloud), each made when
// first asked for, from the Loader's configuration.
type Cloud struct{ Loader *Loader }

// Uploader returns the S3 location url ("s3://bucket/prefix") of backups.
func (c Cloud) Uploader(ctx context.Context, url string) (backup.Uploader, error) {
	cfg, err := c.Loader.Config(ctx)
	if err != nil {
		return nil, err
	}
	return NewS3(cfg, url)
}

// Snapshots returns RDS, which takes snapshots before migrations.
func (c Cloud) Snapshots(ctx context.Context) (reconciler.Snapshotter, error) {
	cfg, err := c.Loader.Config(ctx)
	if err != nil {
		return nil, err
	}
	return NewRDS(cfg), nil
}

// HealthChecks returns Route 53, whose health checks follow a switch.
func (c Cloud) HealthChecks(ctx context.Context) (reconciler.HealthChecks, error) {
	cfg, err := c.Loader.Config(ctx)
	if err != nil {
		return nil, err
	}
	return NewRoute53(cfg), nil
}

// DNS is Route 53's record sets and site checks (host.DNS), the client
// made from the Loader's configuration at each call: an env without
// route53.records never loads it.
type DNS struct{ Loader *Loader }

func (d DNS) client(ctx context.Context) (*Route53, error) {
	cfg, err := d.Loader.Config(ctx)
	if err != nil {
		return nil, err
	}
	return NewRoute53(cfg), nil
}

// RecordSets is Route53.RecordSets.
func (d DNS) RecordSets(ctx context.Context, zone, name, typ string) ([]state.RecordSet, error) {
	r, err := d.client(ctx)
	if err != nil {
		return nil, err
	}
	return r.RecordSets(ctx, zone, name, typ)
}

// SiteCheckIDs is Route53.SiteCheckIDs.
func (d DNS) SiteCheckIDs(ctx context.Context, checks []state.SiteHealthCheck) (map[string]string, error) {
	r, err := d.client(ctx)
	if err != nil {
		return nil, err
	}
	return r.SiteCheckIDs(ctx, checks)
}

// ChangeRecords is Route53.ChangeRecords.
func (d DNS) ChangeRecords(ctx context.Context, zone string, changes []reconciler.RecordChange) error {
	r, err := d.client(ctx)
	if err != nil {
		return err
	}
	return r.ChangeRecords(ctx, zone, changes)
}

// Mailer sends email through Amazon SES (notify.Mailer), loading the
// configuration when the first email goes out.
type Mailer struct{ Loader *Loader }

// SendEmail sends one message and returns its id.
func (m Mailer) SendEmail(ctx context.Context, from string, to []string, subject, body string) (string, error) {
	cfg, err := m.Loader.Config(ctx)
	if err != nil {
		return "", err
	}
	return NewSES(cfg).SendEmail(ctx, from, to, subject, body)
}
