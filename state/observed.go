package state

import (
	"fmt"
	"time"
)

// Labels reconciler puts on every container it creates. A container without
// LabelEnv is not ours and is never touched.
const (
	LabelEnv        = "reconciler.env"
	LabelService    = "reconciler.service"
	LabelColor      = "reconciler.color"
	LabelCommit     = "reconciler.commit"
	LabelSpecHash   = "reconciler.spec-hash"
	LabelSpec       = "reconciler.spec" // JSON Summary, value-free
	LabelHostPort   = "reconciler.host-port"
	LabelDeployedAt = "reconciler.deployed-at"
	LabelRole       = "reconciler.role" // "service", "migrations" or "name-proxy"
	LabelProxyPort  = "reconciler.proxy-port"
	LabelProxyNet   = "reconciler.proxy-network"
	// LabelProxyEnv is a name proxy's environment. Name proxies do not
	// carry LabelEnv: an environment's containers (LabelEnv) are its
	// services' colors, <env>-<service>-<color>, and nothing else.
	LabelProxyEnv = "reconciler.proxy-env"
)

// RoleNameProxy is the LabelRole of a service's name proxy.
const RoleNameProxy = "name-proxy"

// Color is one of the two containers a service alternates between. Its
// string is what container names, the LabelColor label, marker files, JSON
// and plans show.
type Color string

// Colors.
const (
	Blue  Color = "blue"
	Green Color = "green"
)

// Other returns the other color: Green for Blue, Blue for anything else
// (a service with no color yet starts blue).
func (c Color) Other() Color {
	if c == Blue {
		return Green
	}
	return Blue
}

// ContainerName is the name of a service's container of one color:
// <env>-<service>-<color>.
func ContainerName(env, service string, color Color) string {
	return env + "-" + service + "-" + string(color)
}

// NameProxyName is the name of the container that holds a service's name
// on the environment's network: reconciler-proxy-<env>-<service>, outside
// the <env>- names of the environment's service containers.
func NameProxyName(env, service string) string {
	return "reconciler-proxy-" + env + "-" + service
}

// Snapshot is what the container engine shows of an environment, from one
// list of its containers.
type Snapshot struct {
	Containers []Container       // ours, sorted by Name
	Foreign    []Foreign         // not ours, sorted by Name
	ImageIDs   map[string]string // image reference → local ID, "" when absent
	// NameProxies are the environment's name proxies, sorted by Service.
	NameProxies []NameProxy
}

// Observed is one snapshot of the host for one environment.
type Observed struct {
	// Containers are ours for this environment, sorted by Name.
	Containers []Container
	// Foreign are containers without our labels that hold a name or a
	// loopback port we might want. They are never touched.
	Foreign []Foreign
	// Sites are the nginx files reconciler owns for this environment, sorted
	// by Service.
	Sites []Site
	// ImageIDs maps each desired image reference to its local image ID, or
	// "" when the image is not present.
	ImageIDs map[string]string
	// LastMigration is the spec hash of the last successful migrations run,
	// "" when none ran.
	LastMigration string
	// MigrationRuns are the migrations runs applied on the host, oldest
	// first, the last one LastMigration's; nil when none is recorded.
	MigrationRuns []MigrationRun
	// NameProxies are the services' name proxies, sorted by Service.
	NameProxies []NameProxy
	// Names maps a service to the color its name marker holds (absent: no
	// marker).
	Names map[string]Color
	// Settings are the env file's settings (path → display form, see
	// Setting.Display) the last successful apply recorded; nil when none
	// is recorded.
	Settings map[string]string
	// DNS is what Route 53 holds of the env's record sets; nil when the
	// env declares and owns none (or they were not observed).
	DNS *ObservedDNS
}

// NameProxy is the container that holds a service's name on the
// environment's network and forwards each request to the live color.
type NameProxy struct {
	Name, Service string
	// Port is where it listens and where it sends requests (the service's
	// containerPort); Network is the network it holds the name on.
	Port    int
	Network string
	// State is the engine's state (running, exited, ...).
	State string
}

// Container is one of our containers as the engine reports it.
type Container struct {
	ID      string
	Name    string
	Service string
	Color   Color
	Commit  string
	// SpecHash and Spec are read from the labels written at creation.
	SpecHash string
	Spec     Summary
	// ImageID is the image the container runs.
	ImageID string
	// State is the engine's state: running, exited, restarting, created, paused, dead.
	State        string
	RestartCount int
	StartedAt    time.Time
	DeployedAt   time.Time
	// HostPort is the port published on 127.0.0.1 (0 for a worker).
	HostPort int
	// Memory is the limit the engine enforces now, in bytes (0 = none);
	// it differs from Spec.Memory when someone ran docker update.
	Memory int64
	// Networks maps each user-defined network the container is on to its
	// aliases there, sorted (the engine's own short-ID alias left out).
	Networks map[string][]string
}

// Running reports whether the container is running and not restarting.
func (c Container) Running() bool { return c.State == "running" }

// Foreign is a container that is not ours.
type Foreign struct {
	Name      string
	HostPorts []int
	// Owner names the environment and service another environment's
	// container belongs to, from its labels ("env cc, service x-y"); ""
	// for a container without reconciler's labels.
	Owner string
}

// Site is one nginx file reconciler wrote, <env>-<service>.conf in confDir.
type Site struct {
	Service string
	Path    string
	Content []byte
	// Live is the color nginx sends traffic to, read from the marker file
	// for a site with a server block, or from the upstream otherwise; ""
	// when unknown.
	Live Color
	// Ports are the loopback ports of the blue and green upstreams, read
	// from the file's header; zero when absent.
	BluePort, GreenPort int
	// Unloaded is set when an apply wrote this file and was stopped (killed)
	// before nginx reloaded it: nginx may still run the previous version.
	Unloaded bool
}

// SiteFile is the name of the nginx file reconciler owns for a service.
func SiteFile(env, service string) string { return env + "-" + service + ".conf" }

// MarkerFile is the name of the file whose presence in confDir tells nginx to
// send a service's traffic to green (absent: blue). nginx tests it on every
// request, so moving traffic needs no reload.
func MarkerFile(env, service string) string { return env + "-" + service + ".green" }

// CanaryMarkerFile is the name of the file whose presence in confDir sends
// percent of a service's requests to color (and the rest to the other).
func CanaryMarkerFile(env, service string, percent int, color Color) string {
	return fmt.Sprintf("%s-%s.canary-%d-%s", env, service, percent, color)
}

// ProbeFile is the name of the file in confDir whose presence a site's
// probe location reports: the pre-deploy check writes it for a moment to
// know that nginx's workers see the conf dir.
func ProbeFile(env, service string) string { return env + "-" + service + ".probe" }

// DrainMarkerFile is the name of the file whose presence in confDir pins
// a service's sessions to its draining color (templates.SiteParams.SessionHeader).
func DrainMarkerFile(env, service string) string { return env + "-" + service + ".draining" }

// CanaryMarkerGlob matches every canary marker of a service.
func CanaryMarkerGlob(env, service string) string { return env + "-" + service + ".canary-*" }

// Resources is what one of our containers uses, read from the engine at
// one moment.
type Resources struct {
	Name, Service string
	Color         Color
	// CPUSeconds is the CPU time the container used since it started.
	CPUSeconds float64
	// MemoryBytes is the memory it uses, page cache it could drop left out
	// (as docker stats shows it); MemoryLimitBytes is its limit (the
	// host's memory when it has none).
	MemoryBytes, MemoryLimitBytes int64
	RestartCount                  int
	// Running is true for a running container that is not restarting;
	// Healthy also requires its image's HEALTHCHECK (if any) to pass.
	Running, Healthy bool
}

// Live returns the service's container that serves, or nil when it has
// none. It is the one rule for "which color is live", used by the planner,
// status, logs and the agent: the color the service's nginx site routes to
// when that container exists (and is not stopped while the other color
// runs: that one is the previous release kept for a rollback); otherwise
// (a worker, or a site whose color is gone) the running container, the older one when both run; otherwise
// any container of the service.
func (o *Observed) Live(service string) *Container {
	var blue, green *Container
	for i := range o.Containers {
		c := &o.Containers[i]
		if c.Service != service {
			continue
		}
		switch c.Color {
		case Blue:
			blue = c
		case Green:
			green = c
		}
	}
	for _, s := range o.Sites {
		if s.Service != service {
			continue
		}
		// A stopped container the site routes to while the other color
		// runs is the previous release kept for a rollback, and the
		// site's routing is drift: the running one serves.
		if s.Live == Blue && blue != nil && !(blue.State == "exited" && green != nil && green.Running()) {
			return blue
		}
		if s.Live == Green && green != nil && !(green.State == "exited" && blue != nil && blue.Running()) {
			return green
		}
	}
	switch {
	case blue != nil && green != nil:
		if blue.Running() != green.Running() {
			if blue.Running() {
				return blue
			}
			return green
		}
		if green.StartedAt.Before(blue.StartedAt) {
			return green
		}
		return blue
	case blue != nil:
		return blue
	}
	return green
}

// ImageInfo is what image retention needs to know of a local image.
type ImageInfo struct {
	ID   string
	Tags []string // repo:tag references
	Size int64    // bytes
}
