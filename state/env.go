package state

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env is the desired state of one environment as written in envs/NAME.yaml.
// Field names are part of the product contract (see DESIGN.md).
type Env struct {
	Environment string             `json:"environment"`
	Nginx       Nginx              `json:"nginx"`
	Services    map[string]Service `json:"services"`
	Migrations  *Migrations        `json:"migrations,omitempty"`
	// Notify lists where deploy events are sent.
	Notify []Notify `json:"notify,omitempty"`
}

// Notify is one receiver of deploy events: an HTTP endpoint that gets a POST
// for each event it listens to. URL may be a secret reference (env:VAR,
// file:/path, ssm:/path, secretsmanager:NAME), resolved like service secrets.
type Notify struct {
	URL string `json:"url"`
	// Format is "json" (the event as JSON, the default) or "slack" (a Slack
	// incoming-webhook message).
	Format string `json:"format,omitempty"`
	// Events this receiver gets; empty means all of Events.
	Events []string `json:"events,omitempty"`
}

// Events that notify receivers can listen to.
var Events = []string{"deploy.started", "deploy.succeeded", "deploy.failed", "deploy.rolled_back", "drift.repaired", "migration.failed"}

// Nginx says where reconciler writes its nginx files and how nginx is tested
// and reloaded. Test and Reload run through "sh -c".
type Nginx struct {
	ConfDir string `json:"confDir,omitempty"`
	Test    string `json:"test,omitempty"`
	Reload  string `json:"reload,omitempty"`
	// LogDir is where nginx writes the access log of each reconciler site,
	// reconciler-<env>-<service>.log; the bake and canary steps read error
	// rates from it.
	LogDir string `json:"logDir,omitempty"`
}

// Service is one long-running service. A service without ContainerPort is a
// worker: it gets no upstream and is replaced start-first.
type Service struct {
	Image         string            `json:"image"`
	ContainerPort int               `json:"containerPort,omitempty"`
	Listen        string            `json:"listen,omitempty"`
	ServerName    string            `json:"serverName,omitempty"`
	TLS           *TLS              `json:"tls,omitempty"`
	Command       []string          `json:"command,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	EnvFile       string            `json:"envFile,omitempty"`
	Secrets       map[string]string `json:"secrets,omitempty"`
	Files         []File            `json:"files,omitempty"`
	Memory        string            `json:"memory,omitempty"`
	Health        Health            `json:"health,omitempty"`
	Drain         *Duration         `json:"drain,omitempty"`
	Deploy        Deploy            `json:"deploy,omitempty"`
	// Smoke requests go through the public listen address after the switch;
	// one that fails rolls the service back.
	Smoke []Smoke `json:"smoke,omitempty"`
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
}

// Smoke is one request sent through nginx after the switch.
type Smoke struct {
	Path string `json:"path"`
	// Status is the status code expected; default 200.
	Status int `json:"status,omitempty"`
}

// Deploy strategies.
const (
	BlueGreen = "blue-green"
	Canary    = "canary"
)

// TLS names the certificate and key files on the host that nginx serves.
type TLS struct {
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

// File is a file of the repository (Source, read at the same commit) copied
// into the container at Target (an absolute path) before it starts.
type File struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Health is the HTTP health check on the container's published port. Zero
// values are filled by Defaults.
type Health struct {
	Path               string    `json:"path,omitempty"`
	Interval           *Duration `json:"interval,omitempty"`
	Timeout            *Duration `json:"timeout,omitempty"`
	HealthyThreshold   int       `json:"healthyThreshold,omitempty"`
	UnhealthyThreshold int       `json:"unhealthyThreshold,omitempty"`
	StartTimeout       *Duration `json:"startTimeout,omitempty"`
}

// Migrations is a one-off job that runs before any service changes.
type Migrations struct {
	Image   string   `json:"image"`
	Command []string `json:"command,omitempty"`
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
	DefaultLogDir             = "/var/log/nginx"
	DefaultMaxErrorRate       = "10%"
	DefaultStepPause          = time.Minute
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
		for i := range s.Smoke {
			if s.Smoke[i].Status == 0 {
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
