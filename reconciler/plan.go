package reconciler

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// Action is what one Step does.
type Action string

// Actions, in the order a blue-green change uses them.
const (
	ActPull        Action = "pull"         // Image: pull when absent
	ActMigrate     Action = "migrate"      // Container: run to completion, exit 0 required (also the rollback job)
	ActRemove      Action = "remove"       // Name: stop and remove (absent is fine); with Site.Route, only once nginx routes elsewhere
	ActStart       Action = "start"        // Container: create, copy files, start
	ActWaitHealthy Action = "wait-healthy" // Name, HostPort, Health: until HealthyThreshold passes
	ActSettle      Action = "settle"       // Name, Health: running and not restarting (workers)
	ActWriteNginx  Action = "write-nginx"  // Site: atomic write, test, reload
	ActSwitch      Action = "switch"       // Site.ConfDir, Service, Color: flip the marker, no reload
	ActDrain       Action = "drain"        // Name, Drain, DrainIdle, ContainerPort: nginx still routes to the new color (Site.Route), wait until idle or the deadline, unpin (Unpin), then stop and keep (the previous release)
	ActPin         Action = "pin"          // Site.ConfDir, Service, Color: sessions stay on Color, the draining color (drain marker), no reload
	ActUnpin       Action = "unpin"        // Site.ConfDir, Service: remove the drain marker, no reload
	ActStop        Action = "stop"         // Name: stop and keep, to be resumed by a rollback; with Site.Route, only once nginx routes elsewhere
	ActResume      Action = "resume"       // Name: start a stopped container again as it was created (a rollback)
	ActRemoveNginx Action = "remove-nginx" // Site: remove the file and marker, test, reload
	ActRecord      Action = "record"       // Hash: remember a successful migrations run
	ActShift       Action = "shift"        // Site.ConfDir, Service, Color, Percent: canary share, no reload
	ActWatch       Action = "watch"        // Name, HostPort, Health, Watch: health and error rate for a while
	ActSnapshot    Action = "snapshot"     // Name, Snapshot: create the RDS snapshot and wait until available
	ActHealthCheck Action = "health-check" // HealthCheck: update a Route 53 health check (best effort)
	ActAlias       Action = "alias"        // Name, Network, Aliases: reconnect with exactly these aliases (no-op when it has them)
	ActSmoke       Action = "smoke"        // Smoke: one request through the public address, or Name, Smoke.Exec: a command in the container
	ActName        Action = "name"         // Service, Color, NameProxy.Dir: point the service's name at Color (atomic marker; "" removes it); with Smoke.Exec, then ask the proxy (NameCheckCommand) until it answers Smoke.WantBody
	ActNameProxy   Action = "name-proxy"   // NameProxy: the container holding the service's name runs, with this port and network; with Smoke.Exec, then ask it (NameCheckCommand) until it answers Smoke.WantBody
	ActSettings    Action = "settings"     // Settings: remember the env file's settings this apply carried out
	ActRecords     Action = "records"      // Records: one ChangeResourceRecordSets batch of a hosted zone, all or nothing
	ActOwnRecords  Action = "own-records"  // Owned: remember the Route 53 record sets reconciler wrote for the env
)

// ChangeKind classifies a Change for the plan's summary line.
type ChangeKind string

// Change kinds; Symbol gives their diff prefix.
const (
	Create  ChangeKind = "create"
	Replace ChangeKind = "replace"
	Remove  ChangeKind = "remove"
	Update  ChangeKind = "update" // in place: nginx file or traffic only
	Migrate ChangeKind = "migrate"
	// Pull fetches missing images; it always comes first, so a failed pull
	// changes nothing on the host.
	Pull ChangeKind = "pull"
	// Release replaces several services together (release: atomic).
	Release ChangeKind = "release"
)

// Symbol is the prefix diff prints for the kind.
func (k ChangeKind) Symbol() string {
	switch k {
	case Create:
		return "+"
	case Remove:
		return "-"
	case Migrate:
		return ">"
	case Pull:
		return "<"
	default:
		return "~"
	}
}

// Plan is the ordered list of changes that converge the host. It is data:
// Apply carries it out without further decisions.
type Plan struct {
	Env     string
	Commit  string
	Changes []Change
	// Author and Message describe the commit, for notifications; set by
	// the caller (Diff does not read git).
	Author, Message string
	// Notes are facts diff shows that need no change, such as why the
	// migrations job does not run at this commit.
	Notes []string
}

// Empty reports whether the host is in sync.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// Change is everything done to one subject (a service, the migrations job,
// an nginx file). Steps run in order. When step i fails and i < UndoBefore
// (traffic has not moved yet), Undo runs, best effort; in every case the
// apply stops there.
type Change struct {
	Kind    ChangeKind `json:"kind"`
	Subject string     `json:"subject"`
	// Summary is the one-line form: "replace blue → green".
	Summary string   `json:"summary"`
	Reasons []string `json:"reasons"`
	Steps   []Step   `json:"steps"`
	Undo    []Step   `json:"undo,omitempty"`
	// OldImage and NewImage are the images before and after a create or
	// replace, for notifications.
	OldImage string `json:"oldImage,omitempty"`
	NewImage string `json:"newImage,omitempty"`
	// UndoBefore is the index of the first step after which traffic has
	// moved to the new container; from there on Undo must not run.
	UndoBefore int `json:"-"`
	// Compensate runs when a later change of the same apply fails after
	// this one succeeded (the migrations' rollback command).
	Compensate []Step `json:"compensate,omitempty"`
	// Services are the services a Release change creates or replaces,
	// with their images, for notifications.
	Services []EventService `json:"services,omitempty"`
}

// Step is one operation with its target and the facts it needs.
type Step struct {
	Action Action `json:"action"`
	// Target names what the step acts on: "api/green", "nginx prod-api.conf".
	Target string `json:"target"`

	Image     string              `json:"image,omitempty"`
	Name      string              `json:"name,omitempty"`
	HostPort  int                 `json:"hostPort,omitempty"`
	Container *ContainerSpec      `json:"-"`
	Health    *state.HealthParams `json:"-"`
	Site      *SiteChange         `json:"-"`
	Service   string              `json:"service,omitempty"`
	Color     state.Color         `json:"color,omitempty"`
	// Drain, on an ActDrain step, is the drain's deadline: the old color
	// goes at the latest this long after the step starts.
	Drain time.Duration `json:"drain,omitempty"`
	// DrainIdle, on an ActDrain step, ends the drain before its deadline
	// once the old container's port ContainerPort carries no request in
	// flight, no stream and no data for this long (DrainProber); 0 waits
	// until the deadline.
	DrainIdle     time.Duration `json:"drainIdle,omitempty"`
	ContainerPort int           `json:"containerPort,omitempty"`
	// LogPath, on an ActDrain step with DrainIdle, is the site's nginx
	// access log, and HostPort the old color's port on 127.0.0.1: the old
	// color is also busy while nginx logged a request it sent to that port
	// less than DrainIdle ago (DrainLog), a session used lately.
	LogPath string `json:"logPath,omitempty"`
	// Unpin, on an ActDrain step, removes the service's drain marker
	// (ActPin) once the wait is over, before the old color goes.
	Unpin   bool          `json:"unpin,omitempty"`
	Hash    string        `json:"hash,omitempty"`
	Percent int           `json:"percent,omitempty"`
	Watch   *Watch        `json:"watch,omitempty"`
	Smoke   *SmokeRequest `json:"smoke,omitempty"`
	Network string        `json:"network,omitempty"`
	Aliases []string      `json:"aliases,omitempty"`
	// Snapshot is the id of the RDS snapshot of the instance Name.
	Snapshot    string             `json:"snapshot,omitempty"`
	HealthCheck *HealthCheckUpdate `json:"healthCheck,omitempty"`
	NameProxy   *NameProxySpec     `json:"nameProxy,omitempty"`
	// MigrationRuns, on an ActRecord step, replace the record of the
	// migrations runs applied (nil: left as it is).
	MigrationRuns []state.MigrationRun `json:"migrationRuns,omitempty"`
	// Settings are the env file's settings in display form (no secret).
	Settings map[string]string `json:"settings,omitempty"`
	// BestEffort steps report their failure and do not fail the change:
	// they come after a healthy deploy and must not undo it.
	BestEffort bool `json:"bestEffort,omitempty"`
	// UndoGroup, on an undo step, names the service it puts back. When an
	// undo step of a group fails, the group's later undo steps are skipped
	// (its traffic may still be on the new color, which must stay) and the
	// other groups' steps still run. An undo step without a group stops
	// the whole undo where it fails.
	UndoGroup string `json:"undoGroup,omitempty"`
	// Steps are the steps an ActTogether step runs at once.
	Steps []Step `json:"steps,omitempty"`
	// Timeout bounds an ActSnapshot step's wait for its snapshot.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Records, on an ActRecords step, is the batch of one hosted zone.
	Records *RecordBatch `json:"records,omitempty"`
	// Owned, on an ActOwnRecords step, are the record sets the env owns
	// from now on (replacing the previous record; empty forgets them all).
	Owned []state.RecordKey `json:"owned,omitempty"`
}

// RecordBatch is one ChangeResourceRecordSets call: the changes of one
// hosted zone, which Route 53 makes all or none.
type RecordBatch struct {
	Zone    string         `json:"zone"`
	Changes []RecordChange `json:"changes"`
}

// Route 53 change actions of a RecordChange.
const (
	RecordUpsert = "UPSERT"
	RecordDelete = "DELETE"
)

// RecordChange is one change of a RecordBatch: UPSERT Record (as
// desired, its health check id resolved) or DELETE it (as observed: Route
// 53 deletes a record set only when given its current values).
type RecordChange struct {
	Action string          `json:"action"`
	Record state.RecordSet `json:"record"`
}

// HealthCheckUpdate is the path and port a Route 53 health check should
// probe after a switch.
type HealthCheckUpdate struct {
	ID   string `json:"id"`
	Path string `json:"path"`
	Port int    `json:"port,omitempty"`
}

// Watch is a period in which a new color that has traffic is checked every
// health interval: it must keep running without a restart, pass its health
// check (UnhealthyThreshold consecutive failures fail), and keep the share
// of 5xx answers of its requests in the site's access log at or below
// MaxErrorRate (judged once MinRequests were seen).
type Watch struct {
	For          time.Duration `json:"for"`
	LogPath      string        `json:"logPath,omitempty"`
	MaxErrorRate float64       `json:"maxErrorRate"`
	MinRequests  int           `json:"minRequests"`
	// MaxLatency bounds the Percentile-th percentile of the upstream
	// response times of the color's requests in the access log (judged
	// once MinRequests were seen); 0 means no latency gate.
	MaxLatency time.Duration `json:"maxLatency,omitempty"`
	Percentile int           `json:"percentile,omitempty"`
}

// SmokeRequest is a GET sent through nginx's public address of a service,
// or, when Exec is set, a command run inside the step's container (Name)
// that must exit 0.
type SmokeRequest struct {
	URL        string `json:"url,omitempty"`        // http(s)://127.0.0.1:PORT/path
	Host       string `json:"host,omitempty"`       // Host header and TLS server name; "" for none
	WantStatus int    `json:"wantStatus,omitempty"` // expected status code
	// WantBody, when set, is the answer's expected body, surrounding
	// white space trimmed: a route check's color.
	WantBody string   `json:"wantBody,omitempty"`
	Exec     []string `json:"exec,omitempty"` // command run in the container
}

// NameCheckCommand is the command that, run inside a name proxy's
// container (whose executable is reconciler, at /reconciler), asks the
// proxy on port which color it forwards to and prints it
// (nameproxy.CheckPath).
func NameCheckCommand(port int) []string {
	return []string{"/reconciler", "name-proxy", "--check", "--port", strconv.Itoa(port)}
}

// ContainerSpec is what the runtime needs to create one container.
type ContainerSpec struct {
	Name     string
	Labels   map[string]string
	Spec     state.Spec
	HostPort int // published on 127.0.0.1:HostPort → Spec.ContainerPort; 0 for none
	// Network is the job's Docker network mode ("host"); "" is the default.
	Network string
	// Timeout bounds a job; 0 means none.
	Timeout time.Duration
	// EnvNetwork, when set, is the environment's network that a service's
	// container joins, with Aliases, before it starts; it keeps its
	// published port on the default bridge.
	EnvNetwork string
	Aliases    []string
}

// SiteChange is an nginx file to write or remove, or (ActSwitch) the
// confDir whose marker moves traffic.
type SiteChange struct {
	ConfDir string
	Path    string
	Content []byte
	// Loaded, when set, answers once nginx serves Content: apply polls it
	// after the reload.
	Loaded *SmokeRequest
	// Route, when set on an ActSwitch, ActShift, ActDrain or ActRemove step, asks nginx, over
	// the site's own address, which routing its workers chose
	// (templates.RoutePath); its WantBody is what the step's move makes
	// it. Apply polls it after the move, for up to RouteTimeout, and
	// fails the step when nginx keeps routing otherwise. Nil for an
	// upstream-only site, which has no server to ask, and for the
	// switch-back of a change that rewrites the site file or of a file
	// written before the route location existed.
	Route *SmokeRequest
	// Marker is the file in ConfDir that the move writes (or removes),
	// named in the error when nginx does not follow it.
	Marker string
}

// Event is the notification of the plan: env, commit, author, message and
// the services it creates, replaces or removes with their images.
func (p *Plan) Event(name state.EventName) Event {
	e := Event{Name: name, Env: p.Env, Commit: p.Commit, Author: p.Author, Message: p.Message}
	for _, c := range p.Changes {
		for _, s := range c.Steps {
			if s.Action == ActSnapshot {
				e.Snapshot = s.Snapshot
			}
		}
		if c.Kind == Create || c.Kind == Replace || c.Kind == Remove {
			e.Services = append(e.Services, EventService{Name: c.Subject, OldImage: c.OldImage, NewImage: c.NewImage})
		}
		e.Services = append(e.Services, c.Services...)
	}
	return e
}

// String is the stable text form diff prints and the planner's tests compare.
func (p *Plan) String() string {
	var b strings.Builder
	if p.Empty() {
		fmt.Fprintf(&b, "%s at %s: in sync, nothing to do.\n", p.Env, p.shortCommit())
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "= %s\n", n)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s at %s:\n", p.Env, p.shortCommit())
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "= %s\n", n)
	}
	counts := map[ChangeKind]int{}
	for _, c := range p.Changes {
		counts[c.Kind] += max(1, len(c.Services))
		fmt.Fprintf(&b, "\n%s\n", c.head())
		for _, r := range c.Reasons {
			fmt.Fprintf(&b, "    %s\n", r)
		}
		fmt.Fprintf(&b, "    steps: %s\n", c.steps())
	}
	var parts []string
	for _, k := range []ChangeKind{Pull, Migrate, Release, Create, Replace, Update, Remove} {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", n, k))
		}
	}
	fmt.Fprintf(&b, "\nPlan: %s.\n", strings.Join(parts, ", "))
	return b.String()
}

// Lines is the plan as one line per change, reasons and steps included:
// the form of the deploy history and the agent's drift report.
func (p *Plan) Lines() []string {
	var lines []string
	for _, c := range p.Changes {
		line := c.head()
		if len(c.Reasons) > 0 {
			line += " (" + strings.Join(c.Reasons, "; ") + ")"
		}
		lines = append(lines, line+" [steps: "+c.steps()+"]")
	}
	return lines
}

// head is the change's first line: "~ api: replace blue → green".
func (c Change) head() string { return fmt.Sprintf("%s %s: %s", c.Kind.Symbol(), c.Subject, c.Summary) }

// steps is the change's steps in their short form, comma-separated.
func (c Change) steps() string {
	steps := make([]string, len(c.Steps))
	for i, s := range c.Steps {
		steps[i] = s.String()
	}
	return strings.Join(steps, ", ")
}

// String is the step's short form: "start api/green", "drain api/blue 30s".
func (s Step) String() string {
	switch s.Action {
	case ActDrain:
		if s.DrainIdle > 0 {
			return fmt.Sprintf("%s %s 0s-%s (until idle %s)", s.Action, s.Target, s.Drain, s.DrainIdle)
		}
		return fmt.Sprintf("%s %s %s", s.Action, s.Target, s.Drain)
	case ActPin:
		return fmt.Sprintf("%s %s sessions → %s", s.Action, s.Service, s.Color)
	case ActUnpin:
		return fmt.Sprintf("%s %s sessions", s.Action, s.Service)
	case ActSwitch:
		return fmt.Sprintf("%s %s → %s", s.Action, s.Service, s.Color)
	case ActShift:
		return fmt.Sprintf("%s %s %d%% → %s", s.Action, s.Service, s.Percent, s.Color)
	case ActWatch:
		return fmt.Sprintf("%s %s %s", s.Action, s.Target, s.Watch.For)
	case ActTogether:
		parts := make([]string, len(s.Steps))
		for i, sub := range s.Steps {
			parts[i] = sub.String()
		}
		return fmt.Sprintf("%s (%s)", s.Action, strings.Join(parts, "; "))
	case ActAlias:
		return fmt.Sprintf("%s %s %s", s.Action, s.Target, strings.Join(s.Aliases, ","))
	case ActName:
		if s.Color == "" {
			return fmt.Sprintf("%s %s → none", s.Action, s.Service)
		}
		return fmt.Sprintf("%s %s → %s", s.Action, s.Service, s.Color)
	case ActNameProxy:
		return fmt.Sprintf("%s %s :%d", s.Action, s.Target, s.NameProxy.Port)
	case ActSnapshot:
		return fmt.Sprintf("%s %s → %s", s.Action, s.Target, s.Snapshot)
	case ActHealthCheck:
		return fmt.Sprintf("%s %s %s:%d", s.Action, s.Target, s.HealthCheck.Path, s.HealthCheck.Port)
	case ActRecords:
		n := map[string]int{}
		for _, c := range s.Records.Changes {
			n[c.Action]++
		}
		return fmt.Sprintf("%s %s (upsert %d, delete %d)", s.Action, s.Target, n[RecordUpsert], n[RecordDelete])
	case ActOwnRecords:
		return fmt.Sprintf("%s %s %d", s.Action, s.Target, len(s.Owned))
	case ActSmoke:
		if len(s.Smoke.Exec) > 0 {
			return fmt.Sprintf("%s %s exec %s", s.Action, s.Target, strings.Join(s.Smoke.Exec, " "))
		}
		return fmt.Sprintf("%s %s %s", s.Action, s.Target, s.Smoke.URL)
	default:
		return fmt.Sprintf("%s %s", s.Action, s.Target)
	}
}

// shortCommit is the plan's commit as every output shows it.
func (p *Plan) shortCommit() string {
	if p.Commit == "" {
		return "(no commit)"
	}
	return state.ShortHash(p.Commit)
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
