package state

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env is the desired state of one environment as written in envs/NAME.yaml.
// Field names are part of the product contract (see docs/reference.md).
type Env struct {
	// Environment must equal the file's NAME.
	Environment string `json:"environment"`
	// Extends names a base file whose fields this file inherits, relative
	// to envs/ and inside it ("prod-base.yaml"; no "..", no absolute
	// path): the common part of the envs of several regions. The two
	// merge before anything is checked: a mapping merges key by key
	// (services by name, then each service's fields, env, secrets, health
	// ...), and on the same key this file's value wins; a list (command,
	// smoke, notify, fleet.hosts ...) or a single value of this file
	// replaces the base's whole. A key cannot be removed: a base holds
	// only what every file that extends it shares, and a key of this file
	// set to null (~, or nothing after its colon) where the base holds a
	// value is refused. environment is never inherited. A base may extend
	// another base; a chain that loops, or one longer than 8 files, is
	// refused. Errors name the file and line that hold the value, the
	// base's for an inherited one. Optional.
	Extends string `json:"extends,omitempty"`
	// Nginx says where reconciler writes its nginx files; every field has a default.
	Nginx Nginx `json:"nginx"`
	// Services by name (a DNS label, not "migrations", not ending in -blue or -green).
	Services map[string]Service `json:"services"`
	// Migrations is a one-off job run before any service changes; optional.
	Migrations *Migrations `json:"migrations,omitempty"`
	// Notify lists where deploy events are sent; optional.
	Notify []Notify `json:"notify,omitempty"`
	// Backup says how many copies of the host's configuration are kept
	// before each deploy, and where else they go; optional.
	Backup *Backup `json:"backup,omitempty"`
	// Network is the Docker network every container of the environment
	// joins, where each service is reachable by its name (mcp-server, held
	// by the service's name proxy, which forwards to the live color only)
	// and by <service>-<color>. Default:
	// the environment's name. reconciler creates it as an internal bridge
	// network when absent; an existing network must be internal (see
	// docs/host-operations.md) and must not be another environment's (its
	// reconciler.env label), which is refused.
	Network string `json:"network,omitempty"`
	// KeepImages is how many of the most recent images each service ran are
	// kept on the host after a successful deploy (for a quick git revert);
	// older ones that no container uses are removed. Default 3.
	KeepImages int `json:"keepImages,omitempty"`
	// Route53 asks for a Route 53 health check of every public site; optional.
	Route53 *Route53Sites `json:"route53,omitempty"`
	// AWS says which region (and profile) the AWS APIs are called in:
	// secrets, backups, snapshots, email and health checks. Optional; with
	// a region here the tool never asks the EC2 metadata service for one.
	AWS *AWS `json:"aws,omitempty"`
	// Fleet runs the environment on several hosts, one agent on each
	// (reconciler run --host NAME), whose rollouts of a commit are ordered
	// and fenced through a coordination store (see docs/agent.md). Optional:
	// without it the environment is one host and its agent coordinates with
	// no one.
	Fleet *Fleet `json:"fleet,omitempty"`
	// Defaults are settings every service inherits and may override: a
	// mapping (env, secrets, health, deploy) merges by key with the
	// service's own, the service's key winning; a list (smoke,
	// deploy.steps) or a single value (envFile, drain, memory) of the
	// service replaces the default. A default applies only where it can:
	// a worker (no containerPort) inherits no deploy, smoke, health.path,
	// health.timeout or health.unhealthyThreshold, and a service without
	// listen no smoke and no canary (deploy.strategy, steps, stepPause).
	// Errors in an inherited value name the line of the defaults block.
	// Optional.
	Defaults *ServiceDefaults `json:"defaults,omitempty"`
	// Release is the order in which the changed services of one deploy
	// are replaced. "per-service" (the default): one service after the
	// other, each started, health-checked, switched, baked and drained
	// before the next starts; a failure rolls back that service only.
	// "atomic": every service the deploy replaces starts its new color and
	// passes its health check, then traffic of all of them moves together (one
	// switch after the other, each verified through nginx, with no wait
	// between them), they bake together, and a failure of any of them
	// before the end of the bake switches all of them back; the old
	// colors are drained together at the end (a service the deploy
	// creates, with no version to go back to, is deployed on its own, in
	// its dependsOn place). Atomic runs the old and the new color of every
	// replaced service at once: the pre-deploy memory
	// check says, with figures, when that does not fit, and per-service
	// is then the order that needs the least memory. Canary services
	// cannot be part of an atomic release.
	Release string `json:"release,omitempty"`
}

// Release orders.
const (
	ReleasePerService = "per-service"
	ReleaseAtomic     = "atomic"
)

// AWS configures the AWS SDK for the environment. Credentials still come
// from the SDK's chain (environment variables, the profile's shared files,
// then the EC2 instance profile); only region and profile are set here.
type AWS struct {
	// Region is the AWS region, such as "us-east-1"; it wins over
	// AWS_REGION and ~/.aws/config.
	Region string `json:"region,omitempty"`
	// Profile is a profile of ~/.aws/config and ~/.aws/credentials;
	// optional (default: AWS_PROFILE, else "default").
	Profile string `json:"profile,omitempty"`
}

// ServiceDefaults are the settings of Env.Defaults: the fields of Service
// of the same name, inherited by every service.
type ServiceDefaults struct {
	// Env holds plain values, merged by key with each service's env.
	Env map[string]string `json:"env,omitempty" settings:"hidden"`
	// EnvFile is used by services that name none.
	EnvFile string `json:"envFile,omitempty"`
	// Secrets are merged by key with each service's secrets.
	Secrets map[string]string `json:"secrets,omitempty" settings:"hidden"`
	// Health is merged field by field with each service's health.
	Health Health `json:"health,omitempty"`
	// Drain is used by services that set none.
	Drain *Duration `json:"drain,omitempty"`
	// Deploy is merged field by field with each service's deploy (steps,
	// a list, is replaced whole).
	Deploy Deploy `json:"deploy,omitempty"`
	// Memory is used by services that set none.
	Memory string `json:"memory,omitempty"`
	// Smoke is used by services that list none (a service's list replaces
	// it whole; smoke: [] clears it).
	Smoke []Smoke `json:"smoke,omitempty"`
}

// Notify is one receiver of deploy events: an HTTP endpoint that gets a POST
// for each event it listens to, or (format email) addresses that get an
// email through Amazon SES. URL may be a secret reference (env:VAR,
// file:/path, ssm:/path, secretsmanager:NAME), resolved like service secrets.
type Notify struct {
	// URL is the receiver of formats json and slack; format email has none.
	URL string `json:"url,omitempty" settings:"url"`
	// Format is "json" (the event as JSON, the default), "slack" (a Slack
	// incoming-webhook message) or "email" (a plain-text message sent
	// through Amazon SES from From to To).
	Format string `json:"format,omitempty"`
	// From is the sender of format email: an address or domain identity
	// verified in SES, in the region reconciler's AWS configuration names.
	From string `json:"from,omitempty"`
	// To are the recipients of format email (at most 50).
	To []string `json:"to,omitempty"`
	// Events this receiver gets; empty means all of Events.
	Events []EventName `json:"events,omitempty"`
}

// EventName names a deploy event: what a notify receiver lists in events
// and what it gets as the event's name.
type EventName string

// The events reconciler sends.
const (
	EventDeployStarted         EventName = "deploy.started"
	EventDeploySucceeded       EventName = "deploy.succeeded"
	EventDeployFailed          EventName = "deploy.failed"
	EventDeployRolledBack      EventName = "deploy.rolled_back"
	EventDriftRepaired         EventName = "drift.repaired"
	EventMigrationFailed       EventName = "migration.failed"
	EventContainerCrashLooping EventName = "container.crash_looping"
	// EventSiteUnhealthy: the agent asked nginx and found a site that
	// routes to another color than its marker names, or answers 5xx
	// while its live container is healthy, and could not repair it.
	EventSiteUnhealthy EventName = "site.unhealthy"
	// EventDeployRefused: the agent refused a commit and changed nothing:
	// its signature (or that of a commit under it), its required checks,
	// or a tip that does not descend from the applied commit (a
	// force-push or a replayed older commit).
	EventDeployRefused EventName = "deploy.refused"
)

// Events are all the events notify receivers can listen to, in the order
// error messages list them.
var Events = []EventName{EventDeployStarted, EventDeploySucceeded, EventDeployFailed, EventDeployRolledBack, EventDriftRepaired,
	EventMigrationFailed, EventContainerCrashLooping, EventSiteUnhealthy, EventDeployRefused}

// Nginx says where reconciler writes its nginx files and how nginx is tested
// and reloaded. Test and Reload run through "sh -c".
type Nginx struct {
	// ConfDir is the directory nginx includes (*.conf); reconciler owns only
	// the <env>-<service>.conf files and markers it writes there.
	ConfDir string `json:"confDir,omitempty"`
	// Test runs before every reload; a failure restores the previous file.
	Test string `json:"test,omitempty"`
	// Reload makes nginx read its files again.
	Reload string `json:"reload,omitempty"`
	// LogDir is where nginx writes the access log of each reconciler site,
	// reconciler-<env>-<service>.log, when a bake or canary reads it, or
	// a drain with drainIdle of a service with a session header (nginx's
	// view of the sessions still used on the old color).
	LogDir string `json:"logDir,omitempty"`
}

// Service is one long-running service. A service without ContainerPort is a
// worker: it gets no upstream and is replaced start-first.
type Service struct {
	// Image is a tag or an @sha256 digest; required.
	Image string `json:"image"`
	// ContainerPort is the port the service listens on in the container;
	// absent makes the service a worker.
	ContainerPort int `json:"containerPort,omitempty"`
	// Listen is the argument of nginx's listen directive ("443 ssl");
	// absent writes an upstream only.
	Listen string `json:"listen,omitempty"`
	// ServerName is the argument of nginx's server_name; optional.
	ServerName string `json:"serverName,omitempty"`
	// TLS is required when Listen contains ssl; with a ServerName it also
	// gets a port-80 server that redirects to HTTPS.
	TLS *TLS `json:"tls,omitempty"`
	// Command replaces the image's command; optional.
	Command []string `json:"command,omitempty"`
	// Env holds plain values; they override EnvFile's.
	Env map[string]string `json:"env,omitempty" settings:"hidden"`
	// EnvFile is a KEY=value file of the repository, read at the same commit.
	EnvFile string `json:"envFile,omitempty"`
	// Secrets maps variable names to references (ssm:/path,
	// secretsmanager:NAME[#key], env:VAR, file:/path) resolved at deploy
	// time; values never reach git, a label, a log or a plan.
	Secrets map[string]string `json:"secrets,omitempty" settings:"hidden"`
	// Files are copied into the container before it starts.
	Files []File `json:"files,omitempty"`
	// Memory is the container's limit ("512m", "1g"); absent means none.
	Memory string `json:"memory,omitempty"`
	// Health is the check that must pass before traffic moves.
	Health Health `json:"health,omitempty"`
	// Drain is how long the old color keeps running after the switch, so
	// that requests it still serves can finish; default 30s. 0s means no
	// drain: the old color is stopped and removed right after the switch
	// (a worker's old color is always removed once the new one settled).
	Drain *Duration `json:"drain,omitempty"`
	// DrainIdle ends the drain before drain has passed, as soon as the old
	// color has been idle this long: no request in flight, no open stream
	// and no data on any of its connections (so no session used) for this
	// long, as seen from the host; for a service with a session header
	// (or a bake or canary, which log too), also no request that nginx's
	// access log shows sent to the old color for this long (plus the
	// log's 1s flush). Default 5s. 0s waits the whole drain.
	DrainIdle *Duration `json:"drainIdle,omitempty"`
	// MCP marks the service as an MCP server (Streamable HTTP): its
	// sessions are pinned to the color that issued them while the old
	// color drains, by the header sessionHeader names.
	MCP bool `json:"mcp,omitempty"`
	// SessionHeader is the request header that names a session, such as
	// "Mcp-Session-Id" (the default for an MCP service). While the old
	// color drains, a request carrying it that the new color answers 404
	// is sent again to the old color. Needs listen.
	SessionHeader string `json:"sessionHeader,omitempty"`
	// Deploy says how traffic moves to a new version and how long it is
	// watched after.
	Deploy Deploy `json:"deploy,omitempty"`
	// Smoke checks run after the switch: requests through the public
	// listen address, or commands run inside the new container; one that
	// fails rolls the service back.
	Smoke []Smoke `json:"smoke,omitempty"`
	// Route53, when set, names the Route 53 health check of the service's
	// public address; after a switch its path (health.path) and port (the
	// listen port) are updated when they changed. A failed update is
	// reported and does not roll back.
	Route53 *Route53 `json:"route53,omitempty"`
	// DependsOn names the services of this file that must be up before
	// this one starts, as in Compose: a list of names (dependsOn: [web],
	// each with condition healthy) or a mapping of names to a Dependency
	// (dependsOn: {web: {condition: started}}). A deploy starts a
	// dependency's new color, and waits for its condition, before a
	// service that depends on it starts; services are removed in the
	// reverse order. Unknown names and cycles are refused; diff shows the
	// order ("after web (dependsOn: healthy)"). Optional.
	DependsOn map[string]Dependency `json:"dependsOn,omitempty"`
}

// Dependency is one entry of a service's dependsOn.
type Dependency struct {
	// Condition is what the dependency's new color must reach before the
	// dependent starts: "healthy" (the default; Compose's service_healthy,
	// also accepted): it passed its health check (a worker: settled) and
	// its name on the environment's network answers; "started"
	// (service_started): its change ran before the dependent's, which is
	// only an order. Changes run one after another and each waits for
	// its own health, so today both conditions wait for the dependency to
	// be healthy; "started" says that the dependent can start without it.
	Condition string `json:"condition,omitempty"`
}

// Conditions of a Dependency.
const (
	ConditionHealthy = "healthy"
	ConditionStarted = "started"
)

// Route53 names a Route 53 health check.
type Route53 struct {
	// HealthCheckID is the health check's id (a UUID).
	HealthCheckID string `json:"healthCheckId"`
}

// Deploy says how traffic moves to a new version of a service with a
// containerPort.
type Deploy struct {
	// Strategy is "blue-green" (the default: all traffic at once) or
	// "canary" (Steps percentages, StepPause apart).
	Strategy string `json:"strategy,omitempty"`
	// Bake is how long the new color is watched after all traffic moved,
	// with the old color kept running idle; 0 means no watch.
	Bake *Duration `json:"bake,omitempty"`
	// MaxErrorRate is the share of 5xx answers of the new color, as read
	// from nginx's access log, above which the deploy rolls back ("10%").
	MaxErrorRate string `json:"maxErrorRate,omitempty"`
	// Steps are the canary's traffic percentages, ending at 100.
	Steps []int `json:"steps,omitempty"`
	// StepPause is how long each canary step is watched.
	StepPause *Duration `json:"stepPause,omitempty"`
	// MaxLatency is the response time of the new color's upstream
	// ($upstream_response_time in nginx's access log), at
	// LatencyPercentile, above which a bake or canary step switches
	// traffic back, as a breach of MaxErrorRate does ("200ms"). Judged
	// once MinRequests requests of the new color were seen; absent or 0s
	// means no latency gate.
	MaxLatency *Duration `json:"maxLatency,omitempty"`
	// LatencyPercentile is the percentile of the upstream response times
	// that MaxLatency bounds, 1 to 100; default 95.
	LatencyPercentile int `json:"latencyPercentile,omitempty"`
	// MinRequests is how many requests of the new color a watch must see
	// before it judges MaxErrorRate and MaxLatency; default 20 (one slow
	// or failed request in three is not a trend).
	MinRequests int `json:"minRequests,omitempty"`
}

// Smoke is one check run after the switch: a request sent through nginx
// (path), or a command run inside the new container (exec). Exactly one of
// path and exec is set.
type Smoke struct {
	// Path is the URL path of a GET sent through nginx's public address.
	Path string `json:"path,omitempty"`
	// Status is the status code expected of path; default 200.
	Status int `json:"status,omitempty"`
	// Exec is a command run inside the new container, such as the app's
	// own connectivity self-test of its database, cache and queues; a
	// non-zero exit fails the check. Its output goes into the error.
	Exec []string `json:"exec,omitempty"`
}

// Deploy strategies.
const (
	BlueGreen = "blue-green"
	Canary    = "canary"
)

// TLS names the certificate and key files on the host that nginx serves.
type TLS struct {
	// Certificate is the absolute path of the certificate chain (Let's
	// Encrypt: /etc/letsencrypt/live/NAME/fullchain.pem).
	Certificate string `json:"certificate"`
	// Key is the absolute path of the private key (privkey.pem).
	Key string `json:"key"`
}

// File is a file of the repository (Source, read at the same commit) copied
// into the container at Target (an absolute path) before it starts.
type File struct {
	// Source is a path in the repository.
	Source string `json:"source"`
	// Target is an absolute path in the container.
	Target string `json:"target"`
}

// Health is the HTTP health check on the container's published port. Zero
// values are filled by Defaults.
type Health struct {
	// Path is requested with GET; a status of 200-399 passes.
	Path string `json:"path,omitempty"`
	// Interval is the time between checks.
	Interval *Duration `json:"interval,omitempty"`
	// Timeout bounds one check.
	Timeout *Duration `json:"timeout,omitempty"`
	// HealthyThreshold is the consecutive passes before traffic moves.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is the consecutive failures that fail the deploy.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
	// StartTimeout bounds the wait for HealthyThreshold passes.
	StartTimeout *Duration `json:"startTimeout,omitempty"`
}

// Migrations is a one-off job that runs before any service changes. Env,
// EnvFile, Secrets and Files mean what they mean for a Service.
type Migrations struct {
	// Image is a tag or an @sha256 digest; required.
	Image string `json:"image"`
	// Command replaces the image's command; optional.
	Command []string `json:"command,omitempty"`
	// Env, EnvFile, Secrets and Files mean what they mean for a service.
	Env     map[string]string `json:"env,omitempty" settings:"hidden"`
	EnvFile string            `json:"envFile,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty" settings:"hidden"`
	Files   []File            `json:"files,omitempty"`
	// Network is the Docker network the job runs on; default "host", so it
	// reaches a database the host reaches.
	Network string `json:"network,omitempty"`
	// Timeout bounds the job; default 10m.
	Timeout *Duration `json:"timeout,omitempty"`
	// Rollback runs, with the same image and settings, when a later step of
	// the same deploy fails after the job succeeded.
	Rollback *MigrationsRollback `json:"rollback,omitempty"`
	// DryRun is run by reconciler check, with the same image and settings,
	// when the migrations would run at the commit; a non-zero exit fails
	// the check.
	DryRun *MigrationsDryRun `json:"dryRun,omitempty"`
	// Snapshot, when set, is a backup point taken and waited for before the
	// job runs; a failed snapshot stops the deploy before any change.
	Snapshot *MigrationsSnapshot `json:"snapshot,omitempty"`
	// Irreversible marks migrations that cannot be undone (a dropped
	// column's data): a git revert of the commit that ran them, or a
	// reconciler rollback of its release, stops before any change and
	// says what to do, instead of running rollback.command. Default false.
	Irreversible bool `json:"irreversible,omitempty"`
}

// MigrationsDryRun is the command that checks the migrations without
// applying them, such as ["/app/migrate", "up", "--dry-run"].
type MigrationsDryRun struct {
	Command []string `json:"command"`
}

// MigrationsSnapshot names the database to snapshot before migrations.
type MigrationsSnapshot struct {
	// RDSInstance is the DB instance identifier of an Amazon RDS database;
	// its manual snapshot is named reconciler-<env>-<commit> (the commit's
	// first 12 characters, so a retried deploy waits for the same
	// snapshot). The AWS configuration is read as for secrets (AWS_REGION,
	// AWS_ENDPOINT_URL_RDS, ...).
	RDSInstance string `json:"rdsInstance"`
	// Timeout bounds the wait for the snapshot to be available; a
	// snapshot not available by then fails the deploy before the
	// migrations run. Default 1h. It is the snapshot's share of the
	// worst-case duration diff shows.
	Timeout *Duration `json:"timeout,omitempty"`
}

// MigrationsRollback is the command that undoes a migrations run.
type MigrationsRollback struct {
	Command []string `json:"command"`
}

// Defaults of the migrations job.
const (
	DefaultMigrationsNetwork = "host"
	DefaultMigrationsTimeout = 10 * time.Minute
)

// Backup says how many backups of the host's configuration are kept in the
// state dir before each deploy, and where else they are copied.
type Backup struct {
	// Keep is how many backups per environment stay in the state dir;
	// 0 means DefaultBackupKeep.
	Keep int `json:"keep,omitempty"`
	// S3 is an optional s3://bucket/prefix each backup is also uploaded to.
	S3 string `json:"s3,omitempty"`
}

// Defaults of the env file, applied by (*Env).Default.
const (
	DefaultConfDir            = "/etc/nginx/conf.d"
	DefaultTest               = "nginx -t"
	DefaultReload             = "nginx -s reload"
	DefaultHealthPath         = "/health"
	DefaultInterval           = 2 * time.Second
	DefaultTimeout            = 1 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
	DefaultStartTimeout       = 60 * time.Second
	DefaultDrain              = 30 * time.Second
	DefaultDrainIdle          = 5 * time.Second
	DefaultSessionHeader      = "Mcp-Session-Id"
	DefaultLogDir             = "/var/log/nginx"
	DefaultMaxErrorRate       = "10%"
	DefaultStepPause          = time.Minute
	DefaultLatencyPercentile  = 95
	DefaultMinRequests        = 20
	DefaultSnapshotTimeout    = time.Hour
	DefaultBackupKeep         = 10
	DefaultKeepImages         = 3
)

// DefaultSteps are the canary's default traffic percentages.
var DefaultSteps = []int{10, 50, 100}

// Default fills every field the file left out with its documented default.
// It is idempotent.
func (e *Env) Default() {
	if e.Nginx.ConfDir == "" {
		e.Nginx.ConfDir = DefaultConfDir
	}
	if e.Nginx.Test == "" {
		e.Nginx.Test = DefaultTest
	}
	if e.Nginx.Reload == "" {
		e.Nginx.Reload = DefaultReload
	}
	if e.Nginx.LogDir == "" {
		e.Nginx.LogDir = DefaultLogDir
	}
	if e.Network == "" {
		e.Network = e.Environment
	}
	e.Fleet.fillDefaults()
	if e.KeepImages == 0 {
		e.KeepImages = DefaultKeepImages
	}
	if e.Release == "" {
		e.Release = ReleasePerService
	}
	if m := e.Migrations; m != nil {
		if m.Network == "" {
			m.Network = DefaultMigrationsNetwork
		}
		if m.Timeout == nil {
			m.Timeout = &Duration{DefaultMigrationsTimeout}
		}
		if m.Snapshot != nil && m.Snapshot.Timeout == nil {
			m.Snapshot.Timeout = &Duration{DefaultSnapshotTimeout}
		}
	}
	for i := range e.Notify {
		if e.Notify[i].Format == "" {
			e.Notify[i].Format = "json"
		}
	}
	for name, s := range e.Services {
		h := &s.Health
		if h.Path == "" {
			h.Path = DefaultHealthPath
		}
		if h.Interval == nil {
			h.Interval = &Duration{DefaultInterval}
		}
		if h.Timeout == nil {
			h.Timeout = &Duration{DefaultTimeout}
		}
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = DefaultHealthyThreshold
		}
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = DefaultUnhealthyThreshold
		}
		if h.StartTimeout == nil {
			h.StartTimeout = &Duration{DefaultStartTimeout}
		}
		if s.Drain == nil {
			s.Drain = &Duration{DefaultDrain}
		}
		if s.DrainIdle == nil {
			s.DrainIdle = &Duration{DefaultDrainIdle}
		}
		if s.MCP && s.SessionHeader == "" && s.Listen != "" {
			s.SessionHeader = DefaultSessionHeader
		}
		d := &s.Deploy
		if d.Strategy == "" {
			d.Strategy = BlueGreen
		}
		if d.Bake == nil {
			d.Bake = &Duration{0}
		}
		if d.MaxErrorRate == "" {
			d.MaxErrorRate = DefaultMaxErrorRate
		}
		if d.Strategy == Canary && len(d.Steps) == 0 {
			d.Steps = append([]int(nil), DefaultSteps...)
		}
		if d.StepPause == nil {
			d.StepPause = &Duration{DefaultStepPause}
		}
		if d.LatencyPercentile == 0 {
			d.LatencyPercentile = DefaultLatencyPercentile
		}
		if d.MinRequests == 0 {
			d.MinRequests = DefaultMinRequests
		}
		defaultDependsOn(s.DependsOn)
		for i := range s.Smoke {
			if s.Smoke[i].Status == 0 && len(s.Smoke[i].Exec) == 0 {
				s.Smoke[i].Status = 200
			}
		}
		e.Services[name] = s
	}
}

// Duration is a time.Duration written in the env file as a Go duration
// string such as "2s" or "1m30s".
type Duration struct{ time.Duration }

// UnmarshalJSON accepts a duration string ("2s").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"2s\" or \"1m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"2s\" or \"1m\", got %q", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string ("2s").
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.Duration.String())
}

// D returns the duration, or zero for nil.
func (d *Duration) D() time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

// ParseRate parses a percentage such as "10%" or "2.5%" into a fraction.
func ParseRate(s string) (float64, error) {
	v, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("want a percentage such as \"10%%\", got %q", s)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || f > 100 {
		return 0, fmt.Errorf("want a percentage from 0%% to 100%% such as \"10%%\", got %q", s)
	}
	return f / 100, nil
}

// Route53Sites is what the environment keeps in Route 53: the record sets
// of its public names (records), and a health check of every public site
// (healthChecks): a service with a listen address that is not loopback and a
// serverName, whose first name is the check's FQDN. The check probes the
// service's health.path on its listen port, over HTTPS when the service has
// tls. reconciler finds a site's check by FQDN and type, creates it when
// missing and updates its path, port and failure threshold when the env
// changes; it never deletes one. Services with their own route53
// (healthCheckId) are left to that setting.
type Route53Sites struct {
	// HealthChecks, when present (healthChecks: {} for the defaults), turns
	// the per-site health checks on.
	HealthChecks *SiteCheckSettings `json:"healthChecks,omitempty"`
	// Records are the Route 53 record sets of the env's public names: in a
	// multi-region setup, this region's latency or failover share of each
	// name. They roll out with the env's commit, after the services
	// switched and the site checks are in step; see DNSRecord. Optional;
	// at most 100 record sets, each with at most 400 values.
	Records []DNSRecord `json:"records,omitempty"`
}

// SiteCheckSettings are the settings of every site's Route 53 health check.
type SiteCheckSettings struct {
	// RequestInterval is the seconds between two checks of one Route 53
	// checker, 10 or 30 (default 30). Route 53 cannot change it on an
	// existing check.
	RequestInterval int `json:"requestInterval,omitempty"`
	// FailureThreshold is the consecutive failures that mark the site
	// unhealthy, 1 to 10 (default 3).
	FailureThreshold int `json:"failureThreshold,omitempty"`
}

// DefaultRecordTTL is the TTL of a DNSRecord that sets none, in seconds:
// short, so that a region Route 53 stops answering with leaves the
// resolvers' caches within a minute.
const DefaultRecordTTL = 60

// Fleet defaults: the bake of the canary (with canary) and of the region
// before (with after), and the rollout lease's TTL. Parallel defaults to 1.
const (
	DefaultCanaryBake = 5 * time.Minute
	DefaultAfterBake  = 5 * time.Minute
	DefaultLeaseTTL   = 30 * time.Second
)

// DNSRecord is one Route 53 record set of a public name of the
// environment: in a multi-region setup, this region's share of the name.
// reconciler reads the record set first and changes it (one
// ChangeResourceRecordSets batch per hosted zone, UPSERT) only when it
// differs; it deletes a record set only when the env no longer declares
// it and reconciler wrote it on this host (same zone, name, type and
// setIdentifier). The record sets of other regions (other
// setIdentifier) and other names are never touched.
type DNSRecord struct {
	// HostedZoneID is the id of the public hosted zone that holds name
	// ("Z0123456789ABCDEFGHIJ"; the "/hostedzone/" prefix is accepted).
	HostedZoneID string `json:"hostedZoneId"`
	// Name is the record's DNS name ("mcp.example.com"); a trailing dot is
	// optional, letters are compared in lower case. No wildcard.
	Name string `json:"name"`
	// Type is A (IPv4 addresses), AAAA (IPv6 addresses) or CNAME (one DNS
	// name, such as the region's load balancer).
	Type string `json:"type"`
	// TTL is how long resolvers cache the answer, in seconds, 1 to 86400;
	// default 60.
	TTL int `json:"ttl,omitempty"`
	// Values are the answers of this region: its load balancer's or
	// host's addresses (A, AAAA), or one DNS name (CNAME). At least one.
	Values []string `json:"values"`
	// Routing is how Route 53 chooses between the record sets of the
	// regions that share the name: "latency" (the region nearest to the
	// client among the healthy ones) or "failover" (the PRIMARY while it
	// is healthy, else the SECONDARY). Required.
	Routing string `json:"routing"`
	// Region is the AWS region of a latency record; default aws.region.
	// Only with routing: latency.
	Region string `json:"region,omitempty"`
	// Failover is PRIMARY or SECONDARY; required with routing: failover,
	// refused otherwise.
	Failover string `json:"failover,omitempty"`
	// SetIdentifier tells this region's record set from the other
	// regions' record sets of the same name and type; default the
	// environment's name. 1 to 128 characters. A record set (zone, name,
	// type and setIdentifier) that another env's file declares at the same
	// commit is refused, and so is a setIdentifier written in a base file
	// (extends), which every env extending it would share.
	SetIdentifier string `json:"setIdentifier,omitempty"`
	// HealthCheck is the Route 53 health check whose failure takes this
	// record set out of the answers. Required for a failover PRIMARY
	// (without one, Route 53 never fails over); optional otherwise.
	HealthCheck *RecordHealthCheck `json:"healthCheck,omitempty"`
}

// RecordHealthCheck names the health check of a DNSRecord: either the
// site check reconciler keeps for a service (route53.healthChecks) or a
// health check by id. Exactly one of the two.
type RecordHealthCheck struct {
	// Service is a service whose public site has a Route 53 health check
	// kept by route53.healthChecks; its id is looked up by the check's
	// FQDN and type when the record is planned.
	Service string `json:"service,omitempty"`
	// ID is the id of a health check reconciler does not keep.
	ID string `json:"id,omitempty"`
}

// Fleet is the hosts of an environment and how a commit rolls out across
// them. Before it deploys a commit, a host's agent waits until every host
// before it in hosts succeeded with that commit (and the canary baked), then
// takes one of the env's rollout leases in the store, deploys, verifies,
// records its result and gives the lease back. A host that fails the commit
// records a halt: the hosts after it stay on the commit they run until a
// newer commit is pushed. When the store does not answer, no agent deploys
// anything new; every agent keeps serving and repairing drift.
type Fleet struct {
	// Store is the coordination store: redis://HOST:PORT or, with TLS,
	// rediss://HOST:PORT (PORT default 6379), with an optional /DB number
	// (0 to 15). It holds no user name and no password (they come from
	// username and auth), and no link-local or unspecified address
	// (169.254.0.0/16, fe80::/10, 0.0.0.0): those are the cloud's metadata
	// service, never a store. A name that resolves to such an address is
	// refused when the agent connects.
	Store string `json:"store"`
	// Auth is a secret reference (ssm:/path, secretsmanager:NAME[#key],
	// env:VAR, file:/path) to the password the agents send with AUTH;
	// optional (a store without AUTH).
	Auth string `json:"auth,omitempty" settings:"url"`
	// Username is the ACL user sent with AUTH; optional (the default user).
	Username string `json:"username,omitempty"`
	// Hosts are the names of the environment's hosts in rollout order, each
	// a DNS label, each the --host of one agent. At least one.
	Hosts []string `json:"hosts"`
	// Parallel is how many hosts may deploy at once: a host starts a commit
	// once every host at least Parallel places before it succeeded with it.
	// 1 to the number of hosts; default 1.
	Parallel int `json:"parallel,omitempty"`
	// Canary, when set, is the first of hosts: the other hosts start a
	// commit only after the canary has run it, healthy, for canaryBake.
	// Optional.
	Canary string `json:"canary,omitempty"`
	// CanaryBake is how long the canary runs a commit healthy before the
	// other hosts start it. Default "5m" when canary is set; "0s" lets
	// them start as soon as the canary succeeded and is healthy. Only with
	// canary.
	CanaryBake *Duration `json:"canaryBake,omitempty"`
	// LeaseTTL is how long a rollout lease lives unless its holder renews
	// it (every third of it, while it deploys): the time after which a
	// holder that died is replaced. At least "3s"; default "30s".
	LeaseTTL *Duration `json:"leaseTTL,omitempty"`
	// After names the env of the region before this one
	// ("prod-us-east-1"): a host of this env starts a commit only after
	// every host of that env has run it, healthy, for afterBake, as that
	// env's own coordination store reports (its fleet.store at the same
	// commit). Regions then roll out in a chain: us-east-1, then
	// eu-west-1 (after: prod-us-east-1), then the next. The env named must
	// exist at the same commit with a fleet section, and the chain of
	// afters from it must not come back to this env (a loop, where no
	// region would ever deploy); validate checks both. Optional.
	After string `json:"after,omitempty"`
	// AfterBake is how long every host of the env named by after runs a
	// commit healthy before this env starts it. Default "5m" when after is
	// set; "0s" starts as soon as every one of them runs it healthy. Only
	// with after.
	AfterBake *Duration `json:"afterBake,omitempty"`
}
