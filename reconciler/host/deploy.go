package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/backup"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/state"
)

// Checks are the pre-deploy checks (preflight.Checker).
type Checks interface {
	// Host checks the engine, nginx and cloud credentials.
	Host(ctx context.Context) preflight.Report
	// Plan checks what the plan needs: images in their registries, memory
	// and disk for the new colors beside the old.
	Plan(ctx context.Context, p *reconciler.Plan) preflight.Report
}

// Cloud gives the cloud APIs an environment's deploy uses. Each call may
// load the cloud configuration the first time; a nil Cloud means the env
// uses none.
type Cloud interface {
	// Uploader is where backups go besides the state dir (backup.s3).
	Uploader(ctx context.Context, url string) (backup.Uploader, error)
	// Snapshots takes database snapshots before migrations.
	Snapshots(ctx context.Context) (reconciler.Snapshotter, error)
	// HealthChecks updates external health checks after a switch.
	HealthChecks(ctx context.Context) (reconciler.HealthChecks, error)
	// SiteChecks keeps a health check per public site (route53.healthChecks).
	SiteChecks(ctx context.Context) (SiteChecks, error)
}

// DeployOptions are how one deploy runs.
type DeployOptions struct {
	// Checks run before anything changes; nil skips them.
	Checks Checks
	// Notifier is told of the deploy's events; nil tells nobody.
	Notifier reconciler.Notifier
	// Cloud gives the APIs of backup.s3, migrations.snapshot and route53.
	Cloud Cloud
	// Log is the executor's logger; nil uses the host's.
	Log *zap.Logger
	// Now is the clock of the backup's name; nil means time.Now.
	Now func() time.Time
}

// Result is what a deploy did besides its plan.
type Result struct {
	// BackedUp says where the backup taken before the first change went;
	// "" when none was taken.
	BackedUp string
	// Warnings are the failures of best-effort steps (health-check
	// updates): the deploy stands.
	Warnings []string
	// Traffic is what the watches (bake, canary steps) counted through
	// nginx, summed over services.
	Traffic reconciler.Traffic
	// Drained is how the drains of old colors ended; StreamsCut sums
	// the busy connections they cut at their deadline.
	Drained    []reconciler.Drained
	StreamsCut int
	// Pruned is what image retention removed after the deploy.
	Pruned PruneReport
	// SiteChecks are the lines of SyncSiteChecks after the deploy.
	SiteChecks []string
	// Records are the Route 53 record set changes made after the deploy,
	// one line each (the reasons of the records change); nil for none.
	Records []string
}

// errNothingChanged marks the errors of a deploy that stopped before the
// first change on the host.
func nothingChanged(err error) error { return fmt.Errorf("%w; nothing was changed", err) }

// Deploy carries out pl, a plan with changes, the way both apply and the
// agent do: the pre-deploy checks, a backup of what the plan changes, the
// cloud APIs its steps need, the plan itself, the public sites' Route 53
// health checks (SyncSiteChecks; a failure is a warning), the env's Route
// 53 record sets (SyncRecords, when the plan has a records change), then
// image retention.
// Nothing on the host changes before the checks and the backup passed;
// retention never fails a deploy that worked. The record sets change
// only after every other change of the plan succeeded: a deploy that
// fails or rolls back leaves them as the previous release had them. A
// plan whose only change is the records (drift in Route 53) takes no
// backup and touches nothing on the host.
func (h *Host) Deploy(ctx context.Context, pl *Planned, opts DeployOptions) (Result, error) {
	// Whatever text leaves the deploy (its error, its warnings, its log
	// lines, its events) has every resolved secret value scrubbed, wherever
	// it came from: an engine quotes the environment it refused, an HTTP
	// client the URL it could not reach.
	sc := pl.Desired.Scrubber()
	res, err := h.deploy(ctx, pl, opts, sc)
	for i, w := range res.Warnings {
		res.Warnings[i] = sc.Scrub(w)
	}
	for i, l := range res.SiteChecks {
		res.SiteChecks[i] = sc.Scrub(l)
	}
	for i, l := range res.Records {
		res.Records[i] = sc.Scrub(l)
	}
	return res, sc.Error(err)
}

func (h *Host) deploy(ctx context.Context, pl *Planned, opts DeployOptions, sc *state.Scrubber) (Result, error) {
	var res Result
	p, d, e := pl.Plan, pl.Desired, pl.Env
	if opts.Log == nil {
		opts.Log = h.Log.Named("apply")
	}
	opts.Log = scrubLogger(opts.Log, sc)
	if opts.Notifier != nil {
		opts.Notifier = scrubNotifier{opts.Notifier, sc}
	}
	if opts.Checks != nil {
		if err := errors.Join(opts.Checks.Host(ctx).Err(), opts.Checks.Plan(ctx, p).Err()); err != nil {
			return res, nothingChanged(ListErrors(err))
		}
	}
	hp, records := p.SplitRecords()
	if !hp.Empty() {
		var err error
		if res.BackedUp, err = h.backup(ctx, pl, opts); err != nil {
			return res, err
		}
		ap := h.applier(opts)
		if err := withCloud(ctx, ap, d, opts.Cloud); err != nil {
			return res, nothingChanged(err)
		}
		ar, err := ap.Apply(ctx, hp)
		res.Warnings = ar.Warnings
		res.Drained, res.StreamsCut = ar.Drained, ar.Cut()
		for _, t := range ar.Watched {
			res.Traffic.Requests += t.Requests
			res.Traffic.Errors += t.Errors
		}
		if err != nil {
			return res, err
		}
	}
	lines, serr := h.SyncSiteChecks(ctx, e, opts.Cloud)
	res.SiteChecks = lines
	if serr != nil {
		res.Warnings = append(res.Warnings, serr.Error())
	}
	if records != nil {
		var err error
		if res.Records, err = h.SyncRecords(ctx, d, opts.Log); err != nil {
			return res, err
		}
	}
	pruned, rerr := h.Retain(ctx, p.Env, e.KeepImages, false)
	if rerr != nil {
		opts.Log.Warn("image retention failed; the deploy stands", zap.Error(rerr))
	}
	res.Pruned = pruned
	return res, nil
}

// SyncRecords brings the env's Route 53 record sets in step with d: it
// reads Route 53 again (the site checks may have just been made, and
// someone may have changed a record set since the plan), plans the
// records (reconciler.DiffRecords), applies that change (one batch per
// hosted zone, then the ownership record) and reads Route 53 once more to
// confirm that nothing is left to change. It returns the reasons of the
// change, one line per record set, nil when the records were in step.
// The services are already switched when it runs: its error says they
// stand.
func (h *Host) SyncRecords(ctx context.Context, d *state.Desired, log *zap.Logger) ([]string, error) {
	scope := ScopeOf(d)
	plan := func() (*reconciler.Change, error) {
		o, err := h.ObserveDNS(ctx, scope)
		if err != nil {
			return nil, err
		}
		return reconciler.DiffRecords(d, &state.Observed{DNS: o})
	}
	c, err := plan()
	if err != nil {
		return nil, fmt.Errorf("route53 records: %w; the services stand", err)
	}
	if c == nil {
		return nil, nil
	}
	if log == nil {
		log = h.Log.Named("apply")
	}
	ap := &reconciler.Applier{Journal: h.Dir, Records: h.DNS, Log: log, Clock: h.Clock}
	if _, err := ap.Apply(ctx, &reconciler.Plan{Env: d.Env, Commit: d.Commit, Changes: []reconciler.Change{*c}}); err != nil {
		return nil, fmt.Errorf("route53 records: %w; the services stand, the record sets are as they were before this batch", err)
	}
	left, err := plan()
	if err != nil {
		return c.Reasons, fmt.Errorf("route53 records changed, but Route 53 could not be read again to confirm it: %w", err)
	}
	if left != nil && slices.ContainsFunc(left.Steps, func(s reconciler.Step) bool { return s.Action == reconciler.ActRecords }) {
		return c.Reasons, fmt.Errorf("route53 records changed, but Route 53 still differs: %s", strings.Join(left.Reasons, "; "))
	}
	return c.Reasons, nil
}

// applier is the executor on this host.
func (h *Host) applier(opts DeployOptions) *reconciler.Applier {
	log := opts.Log
	if log == nil {
		log = h.Log.Named("apply")
	}
	return &reconciler.Applier{
		Runtime: h.Runtime, Edge: h.Edge, Prober: h.Prober, Journal: h.Dir, Names: h.Names,
		Log: log, Out: h.Out, Notifier: opts.Notifier, Clock: h.Clock, Progress: h.Progress,
	}
}

// withCloud gives ap the cloud APIs d's plan steps use: a snapshot before
// migrations, health checks after switches.
func withCloud(ctx context.Context, ap *reconciler.Applier, d *state.Desired, cloud Cloud) error {
	snap := d.Migrations != nil && d.Migrations.SnapshotRDS != ""
	r53 := false
	for _, s := range d.Services {
		r53 = r53 || s.Route53 != nil
	}
	if !snap && !r53 {
		return nil
	}
	if cloud == nil {
		return errors.New("the env uses AWS (migrations.snapshot or route53) and no AWS access is configured")
	}
	var err error
	if snap {
		if ap.Snapshots, err = cloud.Snapshots(ctx); err != nil {
			return err
		}
	}
	if r53 {
		if ap.HealthChecks, err = cloud.HealthChecks(ctx); err != nil {
			return err
		}
	}
	return nil
}

// backup backs up what pl is about to change (see package backup), from
// the snapshot the plan was made from, and says where it went.
func (h *Host) backup(ctx context.Context, pl *Planned, opts DeployOptions) (string, error) {
	e, d := pl.Env, pl.Desired
	var up backup.Uploader
	if e.Backup != nil && e.Backup.S3 != "" {
		if opts.Cloud == nil {
			return "", nothingChanged(errors.New("backup: backup.s3 is set and no AWS access is configured"))
		}
		var err error
		if up, err = opts.Cloud.Uploader(ctx, e.Backup.S3); err != nil {
			return "", nothingChanged(fmt.Errorf("backup: %w", err))
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	res, err := backup.Take(ctx, h.Dir.BackupDir(d.Env), pl.Observed, d.Env, pl.Plan.Commit, d.Nginx.ConfDir, e.BackupKeep(), up, now())
	if err != nil {
		return "", nothingChanged(err)
	}
	where := res.Dir
	if res.URL != "" {
		where += " and " + res.URL
	}
	return where, nil
}

// ListErrors puts each of a joined error's errors on its own line under a
// count; other errors are returned as they are.
func ListErrors(err error) error {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) || len(j.Unwrap()) < 2 {
		return err
	}
	return fmt.Errorf("%d problems:\n%w", len(j.Unwrap()), err)
}
