package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// Env is the desired state of one environment as written in envs/NAME.yaml.
// Field names are part of the product contract (see DESIGN.md).
type Env struct {
	Environment string             `json:"environment"`
	Nginx       Nginx              `json:"nginx"`
	Services    map[string]Service `json:"services"`
	Migrations  *Migrations        `json:"migrations,omitempty"`
	Backup      *Backup            `json:"backup,omitempty"`
}

// Nginx says where reconciler writes its nginx files and how nginx is tested
// and reloaded. Test and Reload run through "sh -c".
type Nginx struct {
	ConfDir string `json:"confDir,omitempty"`
	Test    string `json:"test,omitempty"`
	Reload  string `json:"reload,omitempty"`
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
}

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

// Migrations is a one-off job that runs before any service changes. Env,
// EnvFile, Secrets and Files mean what they mean for a Service.
type Migrations struct {
	Image   string            `json:"image"`
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	EnvFile string            `json:"envFile,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
	Files   []File            `json:"files,omitempty"`
}

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
	DefaultBackupKeep         = 10
)

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
