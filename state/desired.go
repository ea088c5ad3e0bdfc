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
}

// DesiredService is one service with its resolved container spec.
type DesiredService struct {
	Name string
	// Config is the service as written in the env file, with defaults.
	Config Service
	Spec   Spec
}

// HasPort reports whether the service is served through nginx (not a worker).
func (s DesiredService) HasPort() bool { return s.Config.ContainerPort > 0 }

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

// HealthParams returns the service's health settings; call after Default.
func (s Service) HealthParams() HealthParams {
	return HealthParams{
		Path:               s.Health.Path,
		Interval:           s.Health.Interval.D(),
		Timeout:            s.Health.Timeout.D(),
		HealthyThreshold:   s.Health.HealthyThreshold,
		UnhealthyThreshold: s.Health.UnhealthyThreshold,
		StartTimeout:       s.Health.StartTimeout.D(),
	}
}
