package state

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"
)

// Desired is the fully resolved desired state of one environment at one
// commit: every referenced file read, every secret resolved. It is what the
// planner compares with Observed.
type Desired struct {
	Env        string
	Commit     string
	Nginx      Nginx
	Services   []DesiredService // sorted by Name
	Migrations *DesiredJob
	// Notify are the receivers of deploy events, URLs resolved. A URL may
	// hold a token: never print it.
	Notify []Notify
	// Network is the environment's Docker network, where services find
	// each other by name; "" means none (containers are not attached).
	Network string
	// NamesDir is the host directory of the name markers (one file per
	// service with a port, holding its live color) that the services' name
	// proxies read; set with Network.
	NamesDir string
	// Settings are every field of the env file (see Settings), which the
	// planner compares with the ones the host recorded; nil for a Desired
	// not made from an env file.
	Settings []Setting
	// Release is ReleasePerService or ReleaseAtomic: the order in which
	// the changed services are replaced.
	Release string
	// Records are the Route 53 record sets of the env's public names
	// (Env.RecordSets), sorted by key; nil for none.
	Records []RecordSet
	// SiteChecks are the Route 53 health checks of the public sites
	// (Env.SiteHealthChecks), by which a record's site check is found.
	SiteChecks []SiteHealthCheck
}

// DesiredService is one service: its container spec, and how it is served,
// checked and deployed, every value resolved (defaults applied, listen and
// rates parsed, durations as time.Duration).
type DesiredService struct {
	Name string
	Spec Spec
	// Listen is where nginx serves the service; nil for a worker and for
	// an upstream-only service (a containerPort without listen).
	Listen *Listen
	// ServerName is the argument of nginx's server_name; "" for none.
	ServerName string
	// TLS is the certificate and key nginx serves; nil for none.
	TLS *TLS
	// Health is the check that must pass before traffic moves; a worker
	// uses Interval, HealthyThreshold and StartTimeout only.
	Health HealthParams
	// Drain is how long the old color keeps running after the switch.
	Drain time.Duration
	// DrainIdle ends the drain early once the old color has been idle
	// this long; 0 waits the whole Drain.
	DrainIdle time.Duration
	// SessionHeader names the session header whose requests are pinned
	// to the old color while it drains; "" for none.
	SessionHeader string
	// Deploy says how traffic moves to a new version and how long it is
	// watched.
	Deploy DeployParams
	// Smoke are the checks run after the switch, statuses defaulted.
	Smoke []Smoke
	// Route53 names the health check updated after a switch; nil for none.
	Route53 *Route53
	// DependsOn are the services that start before this one, sorted by
	// name; nil for none.
	DependsOn []ServiceDependency
}

// HasPort reports whether the service is served through nginx (not a worker).
func (s DesiredService) HasPort() bool { return s.Spec.ContainerPort > 0 }

// DeployParams are the resolved deploy settings of a service.
type DeployParams struct {
	// Strategy is BlueGreen or Canary.
	Strategy string
	// Bake is how long the new color is watched after all traffic moved;
	// 0 means no watch.
	Bake time.Duration
	// MaxErrorRate is the share of 5xx answers (0 to 1) of the new color
	// above which a watch fails.
	MaxErrorRate float64
	// Steps are the canary's traffic percentages, ending at 100; nil for
	// blue-green.
	Steps []int
	// StepPause is how long each canary step is watched.
	StepPause time.Duration
	// MaxLatency is the upstream response time at LatencyPercentile
	// above which a watch fails; 0 means no latency gate.
	MaxLatency time.Duration
	// LatencyPercentile is the percentile (1-100) MaxLatency bounds.
	LatencyPercentile int
	// MinRequests is how many requests a watch sees before it judges
	// MaxErrorRate and MaxLatency.
	MinRequests int
}

// Watched reports whether the new color's requests are read from nginx's
// access log: during a bake or a canary.
func (d DeployParams) Watched() bool { return d.Bake > 0 || d.Strategy == Canary }

// DesiredJob is the resolved migrations job.
type DesiredJob struct {
	Spec Spec
	// Network, Timeout and RollbackCommand are how the job runs; they are
	// not part of its spec hash (changing them does not run it again).
	Network         string
	Timeout         time.Duration
	RollbackCommand []string
	// DryRunCommand is what reconciler check runs; nil for none.
	DryRunCommand []string
	// SnapshotRDS is the RDS DB instance to snapshot before the job; "" for none.
	SnapshotRDS string
	// SnapshotTimeout bounds the wait for that snapshot.
	SnapshotTimeout time.Duration
	// Irreversible is migrations.irreversible: these migrations have no
	// way back, whatever RollbackCommand says.
	Irreversible bool
}

// Spec is everything that goes into a container: what the spec hash covers.
// Secret values live only here, never in a Summary, a label, a log or a plan's
// text.
type Spec struct {
	Image         string
	Command       []string
	Env           map[string]string // env merged over envFile
	Secrets       map[string]string // name → value; never printed
	Files         []FileContent     // sorted by Target
	Memory        int64             // bytes; 0 means no limit
	ContainerPort int
}

// FileContent is one file copied into the container.
type FileContent struct {
	Target  string
	Content []byte
}

// Summary is the printable, value-free description of a Spec. It is stored
// on every container in the LabelSpec label, and the spec hash is computed
// from it. Env and secret values appear only as keyed hashes, file contents
// as SHA-256 digests.
type Summary struct {
	Image         string            `json:"image"`
	Command       []string          `json:"command,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Secrets       map[string]string `json:"secrets,omitempty"`
	Files         map[string]string `json:"files,omitempty"`
	Memory        int64             `json:"memory,omitempty"`
	ContainerPort int               `json:"containerPort,omitempty"`
}

// Summarize returns the Summary of s. key is the host's hash key (kept in the
// state dir); it makes the env and secret hashes useless for guessing values.
func (s Spec) Summarize(key []byte) Summary {
	sum := Summary{Image: s.Image, Command: s.Command, Memory: s.Memory, ContainerPort: s.ContainerPort}
	if len(s.Env) > 0 {
		sum.Env = make(map[string]string, len(s.Env))
		for k, v := range s.Env {
			sum.Env[k] = keyedHash(key, k, v)
		}
	}
	if len(s.Secrets) > 0 {
		sum.Secrets = make(map[string]string, len(s.Secrets))
		for k, v := range s.Secrets {
			sum.Secrets[k] = keyedHash(key, k, v)
		}
	}
	if len(s.Files) > 0 {
		sum.Files = make(map[string]string, len(s.Files))
		for _, f := range s.Files {
			d := sha256.Sum256(f.Content)
			sum.Files[f.Target] = hex.EncodeToString(d[:8])
		}
	}
	return sum
}

// Hash is the spec hash: a digest of the summary's canonical JSON form
// (encoding/json sorts map keys). Equal hashes mean equal containers.
func (s Summary) Hash() string {
	b, _ := json.Marshal(s) // a Summary always marshals
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:12])
}

func keyedHash(key []byte, name, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// EnvList returns the container environment as sorted "KEY=value" pairs,
// secrets included. It is for the runtime only: never print it.
func (s Spec) EnvList() []string {
	out := make([]string, 0, len(s.Env)+len(s.Secrets))
	for k, v := range s.Env {
		if _, ok := s.Secrets[k]; ok {
			continue // a secret wins over a plain value of the same name
		}
		out = append(out, k+"="+v)
	}
	for k, v := range s.Secrets {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// SortedKeys returns the keys of m in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// HealthParams are the resolved health-check settings of a service.
type HealthParams struct {
	Path               string
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	StartTimeout       time.Duration
}

// healthParams returns the service's health settings; call after Default.
func (s Service) healthParams() HealthParams {
	return HealthParams{
		Path:               s.Health.Path,
		Interval:           s.Health.Interval.D(),
		Timeout:            s.Health.Timeout.D(),
		HealthyThreshold:   s.Health.HealthyThreshold,
		UnhealthyThreshold: s.Health.UnhealthyThreshold,
		StartTimeout:       s.Health.StartTimeout.D(),
	}
}
