package awscloud

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/backup"
	"github.com/developer-mesh/reconciler/state"
)

var (
	_ reconciler.Snapshotter  = RDS{}
	_ reconciler.HealthChecks = Route53{}
	_ reconciler.Records      = Route53{}
	_ backup.Uploader         = (*S3)(nil)
)

// Identity checks credentials with STS GetCallerIdentity.
type Identity struct{ Loader *Loader }

// CallerIdentity returns the ARN the credentials belong to, or an error
// saying that they are not valid (ErrNoRegion, ErrNoCredentials when the
// configuration does not load).
func (i Identity) CallerIdentity(ctx context.Context) (string, error) {
	var res IdentityResult
	if err := i.Loader.call(ctx, OpIdentity, nil, &res); err != nil {
		return "", err
	}
	return res.ARN, nil
}

// S3 uploads objects to one bucket under a prefix.
type S3 struct {
	loader *Loader
	url    string
}

// NewS3 returns an S3 uploader for url, "s3://bucket/prefix".
func NewS3(l *Loader, url string) (*S3, error) {
	rest, ok := strings.CutPrefix(url, "s3://")
	bucket, _, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" {
		return nil, fmt.Errorf("backup.s3: want s3://bucket/prefix, got %q", url)
	}
	return &S3{loader: l, url: url}, nil
}

// Put writes body to prefix/key and returns the object's s3:// URL. Where
// an endpoint variable names a compatible store (AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL), requests are path-style, which such stores expect.
func (s *S3) Put(ctx context.Context, key string, body []byte) (string, error) {
	var res S3PutResult
	if err := s.loader.call(ctx, OpS3Put, S3PutArgs{URL: s.url, Key: key, Body: body}, &res); err != nil {
		return "", err
	}
	return res.URL, nil
}

// RDS takes manual DB snapshots (reconciler.Snapshotter). Its endpoint
// follows AWS_ENDPOINT_URL_RDS or AWS_ENDPOINT_URL.
type RDS struct{ Loader *Loader }

// Snapshot creates the manual snapshot id of the DB instance and waits
// until it is available, in one helper process (polling 1s, 2s, 4s, ...
// up to 15s between checks, for up to an hour or until ctx ends). A
// snapshot id that already exists (a retry of the same deploy) is waited
// for, not created again. A snapshot that ends in any status but
// available is an error. When ctx has a deadline, the helper stops
// waiting a little before it (a tenth of the time left, at most 2s) and
// fails with the last status it read, an error that matches
// context.DeadlineExceeded.
func (r RDS) Snapshot(ctx context.Context, instance, id string) error {
	args := RDSSnapshotArgs{Instance: instance, ID: id}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if wait := left - min(left/10, 2*time.Second); wait > 0 {
			args.Wait = wait
		}
	}
	return r.Loader.call(ctx, OpRDSSnapshot, args, nil)
}

// Route53 updates health checks by id (reconciler.HealthChecks), keeps one
// per public site (EnsureHealthCheck), and reads and changes the env's
// record sets (host.DNS). Its endpoint follows AWS_ENDPOINT_URL_ROUTE_53
// or AWS_ENDPOINT_URL.
type Route53 struct{ Loader *Loader }

// UpdateHealthCheck sets the health check's resource path and port when
// they differ from path and port (0 leaves the port alone), and reports
// whether it changed anything. The update names the version it read, so a
// concurrent change fails instead of being overwritten.
func (r Route53) UpdateHealthCheck(ctx context.Context, id, path string, port int) (bool, error) {
	var res UpdateHealthCheckResult
	err := r.Loader.call(ctx, OpUpdateHealthCheck, UpdateHealthCheckArgs{ID: id, Path: path, Port: port}, &res)
	return res.Changed, err
}

// EnsureHealthCheck makes the Route 53 health check of a public site match
// c (host.SiteChecks): the check whose FQDN and type are c's is created
// when missing (with a caller reference derived from c, so a retried
// create returns the same check) or has its path, port and failure
// threshold updated where they differ. It returns the check's id and
// HealthCheckCreated, HealthCheckUpdated or HealthCheckUnchanged.
func (r Route53) EnsureHealthCheck(ctx context.Context, c state.SiteHealthCheck) (string, string, error) {
	var res EnsureHealthCheckResult
	if err := r.Loader.call(ctx, OpEnsureHealthCheck, EnsureHealthCheckArgs{Check: c}, &res); err != nil {
		return "", "", err
	}
	return res.ID, res.Action, nil
}

// SiteCheckIDs returns the id of the Route 53 health check of each site in
// checks, by service, from one listing; a site without a check is absent.
func (r Route53) SiteCheckIDs(ctx context.Context, checks []state.SiteHealthCheck) (map[string]string, error) {
	var res SiteCheckIDsResult
	if err := r.Loader.call(ctx, OpSiteCheckIDs, SiteCheckIDsArgs{Checks: checks}, &res); err != nil {
		return nil, err
	}
	if res.IDs == nil {
		res.IDs = map[string]string{}
	}
	return res.IDs, nil
}

// RecordSets returns the record sets of zone with name and type, of every
// set identifier (every region's share), in normal form (state.RecordSet).
func (r Route53) RecordSets(ctx context.Context, zone, name, typ string) ([]state.RecordSet, error) {
	var res RecordSetsResult
	if err := r.Loader.call(ctx, OpRecordSets, RecordSetsArgs{Zone: zone, Name: name, Type: typ}, &res); err != nil {
		return nil, err
	}
	return res.Sets, nil
}

// ChangeRecords sends changes to zone as one ChangeResourceRecordSets
// batch: Route 53 makes all of them or none. A refused batch's error
// carries Route 53's messages.
func (r Route53) ChangeRecords(ctx context.Context, zone string, changes []reconciler.RecordChange) error {
	return r.Loader.call(ctx, OpChangeRecords, ChangeRecordsArgs{Zone: zone, Changes: changes}, nil)
}

// Mailer sends email through Amazon SES v2 (notify.Mailer), one helper
// process per message. Its endpoint follows AWS_ENDPOINT_URL_SESV2 or
// AWS_ENDPOINT_URL; the sender must be a verified identity of the account.
type Mailer struct{ Loader *Loader }

// SendEmail sends one plain-text message from from to every address of to
// and returns the message id SES assigned. Errors name the sender and the
// number of recipients, never the body.
func (m Mailer) SendEmail(ctx context.Context, from string, to []string, subject, body string) (string, error) {
	var res SendEmailResult
	if err := m.Loader.call(ctx, OpSendEmail, SendEmailArgs{From: from, To: to, Subject: subject, Body: body}, &res); err != nil {
		return "", err
	}
	return res.ID, nil
}

// Cloud gives a deploy the AWS APIs it uses (host.Cloud). Each method
// checks once (Loader.Check) that the configuration loads, so a deploy
// without AWS access fails before it changes anything.
type Cloud struct{ Loader *Loader }

// Uploader returns the S3 location url ("s3://bucket/prefix") of backups.
func (c Cloud) Uploader(ctx context.Context, url string) (backup.Uploader, error) {
	if err := c.Loader.Check(ctx); err != nil {
		return nil, err
	}
	return NewS3(c.Loader, url)
}

// Snapshots returns RDS, which takes snapshots before migrations.
func (c Cloud) Snapshots(ctx context.Context) (reconciler.Snapshotter, error) {
	if err := c.Loader.Check(ctx); err != nil {
		return nil, err
	}
	return RDS(c), nil
}

// HealthChecks returns Route 53, whose health checks follow a switch.
func (c Cloud) HealthChecks(ctx context.Context) (reconciler.HealthChecks, error) {
	if err := c.Loader.Check(ctx); err != nil {
		return nil, err
	}
	return Route53(c), nil
}

// SiteChecks returns Route 53, which keeps a health check per public site.
func (c Cloud) SiteChecks(ctx context.Context) (Route53, error) {
	if err := c.Loader.Check(ctx); err != nil {
		return Route53{}, err
	}
	return Route53(c), nil
}

// Secrets resolves every ssm: and secretsmanager: reference of refs in
// one helper process: the values by reference, and by scheme the error of
// that scheme's references (naming references, never a value). err is the
// failure of the whole call (no configuration, no helper).
func (l *Loader) Secrets(ctx context.Context, refs []state.SecretRef) (values map[state.SecretRef]string, errs map[string]error, err error) {
	args := ResolveSecretsArgs{Refs: make([]string, len(refs))}
	byString := make(map[string]state.SecretRef, len(refs))
	for i, r := range refs {
		args.Refs[i] = r.String()
		byString[args.Refs[i]] = r
	}
	var res ResolveSecretsResult
	if err := l.call(ctx, OpResolveSecrets, args, &res); err != nil {
		return nil, nil, err
	}
	values = make(map[state.SecretRef]string, len(res.Values))
	for s, v := range res.Values {
		r, ok := byString[s]
		if !ok {
			return nil, nil, fmt.Errorf("%s %s: answered a reference it was not asked for", HelperName, OpResolveSecrets)
		}
		values[r] = v
	}
	errs = make(map[string]error, len(res.Errors))
	for scheme, msg := range res.Errors {
		errs[scheme] = &helperError{msg: msg}
	}
	return values, errs, nil
}
