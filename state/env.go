package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// Env is the desired state of one environment as written in envs/NAME.yaml.
// Field names are part of the product contract (see DESIGN.md).
type Env struct {
	// Environment must equal the file's NAME.
	Environment string `json:"environment"`
	// Nginx says where reconciler writes its nginx files; every field has a default.
	Nginx Nginx `json:"nginx"`
	// Services by name (a DNS label, not "migrations", not ending in -blue or -green).
	Services map[string]Service `json:"services"`
	// Migrations is a one-off job run before any service changes; optional.
	Migrations *Migrations `json:"migrations,omitempty"`
}

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
}

// Service is one long-running service. A service without ContainerPort is a
// worker: it gets no upstream and is replaced start-first.
type Service struct {
	// Image is a pinned tag or an @sha256 digest; required.
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
	Env map[string]string `json:"env,omitempty"`
	// EnvFile is a KEY=value file of the repository, read at the same commit.
	EnvFile string `json:"envFile,omitempty"`
	// Secrets maps variable names to references (ssm:/path,
	// secretsmanager:NAME[#key], env:VAR, file:/path) resolved at deploy
	// time; values never reach git, a label, a log or a plan.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Files are copied into the container before it starts.
	Files []File `json:"files,omitempty"`
	// Memory is the container's limit ("512m", "1g"); absent means none.
	Memory string `json:"memory,omitempty"`
	// Health is the check that must pass before traffic moves.
	Health Health `json:"health,omitempty"`
	// Drain is how long the old color keeps running after the switch.
	Drain *Duration `json:"drain,omitempty"`
}

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

// Migrations is a one-off job that runs before any service changes.
type Migrations struct {
	// Image is a pinned tag or an @sha256 digest; required.
	Image string `json:"image"`
	// Command replaces the image's command; optional.
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
