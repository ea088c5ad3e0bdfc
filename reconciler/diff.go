package reconciler

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// Host ports for the colors are allocated in pairs from this range, below
// Linux's ephemeral range (32768-60999), and then kept in the site header.
const (
	portBase  = 20000
	portPairs = 5000
)

// Diff computes the plan that converges the host from o to d. It is pure:
// no I/O, no clock. key is the host's hash key (see state.Spec.Summarize).
// It fails when the desired state cannot be reached without touching
// something that is not ours (a name or port held by a foreign container).
func Diff(d *state.Desired, o *state.Observed, key []byte) (*Plan, error) {
	p := &Plan{Env: d.Env, Commit: d.Commit}
	pl := planner{d: d, o: o, key: key, used: usedPorts(o)}

	var pulls Change
	seen := map[string]bool{}
	want := func(ref string) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		if o.ImageIDs[ref] == "" {
			pulls.Reasons = append(pulls.Reasons, ref+": not on the host")
			pulls.Steps = append(pulls.Steps, Step{Action: ActPull, Target: ref, Image: ref})
		}
	}
	if d.Migrations != nil {
		want(d.Migrations.Spec.Image)
	}
	for _, s := range d.Services {
		want(s.Spec.Image)
	}
	if len(pulls.Steps) > 0 {
		pulls.Kind, pulls.Subject = Pull, "images"
		pulls.Summary = fmt.Sprintf("pull %d image(s)", len(pulls.Steps))
		p.Changes = append(p.Changes, pulls)
	}

	if c, err := pl.migrationsRevert(); err != nil {
		return nil, err
	} else if c != nil {
		p.Changes = append(p.Changes, *c)
	} else if c := pl.migrations(); c != nil {
		p.Changes = append(p.Changes, *c)
	} else if d.Migrations != nil {
		p.Notes = append(p.Notes, "migrations: do not run at this commit: same spec (image, command, env, secrets, files) as the last successful run on this host")
	}
	desired := map[string]bool{}
	ordered, err := serviceOrder(d.Services)
	if err != nil {
		return nil, err
	}
	for _, s := range ordered {
		desired[s.Name] = true
		cs, err := pl.service(s)
		if err != nil {
			return nil, err
		}
		p.Changes = append(p.Changes, withDependsReasons(s, cs)...)
	}
	if d.Release == state.ReleaseAtomic {
		var err error
		if p.Changes, err = pl.atomic(p.Changes); err != nil {
			return nil, err
		}
	}
	p.Changes = append(p.Changes, pl.removals(desired)...)
	// The record sets follow the services: the host layer applies them
	// after the switches (Plan.SplitRecords).
	if c, err := diffRecords(d, o, false); err != nil {
		return nil, err
	} else if c != nil {
		p.Changes = append(p.Changes, *c)
	}
	if c := pl.settings(); c != nil {
		p.Changes = append(p.Changes, *c)
	}
	return p, nil
}

// settings is the change that records the env file's settings when any
// differs from the ones the host recorded: every field of the env file,
// so a change to what runs on the host (nginx.test, nginx.reload, a notify
// receiver, a smoke command) is never an empty plan. It comes last: the
// settings are recorded once everything else succeeded, and it restarts
// nothing. A Desired without settings (not made from an env file) plans
// none.
func (pl *planner) settings() *Change {
	if pl.d.Settings == nil {
		return nil
	}
	want := state.DisplaySettings(pl.d.Settings, pl.key)
	got := pl.o.Settings
	var reasons []string
	if got == nil {
		reasons = append(reasons, "no settings recorded on this host: every field of the env file is new")
	}
	// The blocks the env file has, once: asking for each recorded field
	// whether any wanted field shares its block grew with the square of
	// the services.
	kept := map[string]bool{}
	for path := range want {
		if b := block(path); strings.HasPrefix(path, b+".") {
			kept[b] = true
		}
	}
	removed := map[string]int{} // a service's or the migrations' block that is gone, by prefix
	for path := range got {
		if b := block(path); b != "" && !kept[b] {
			removed[b]++
		}
	}
	for _, b := range state.SortedKeys(removed) {
		reasons = append(reasons, fmt.Sprintf("%s: removed (%d field(s))", b, removed[b]))
	}
	for _, path := range state.SortedKeys(unionKeys(got, want)) {
		o, inOld := got[path]
		n, inNew := want[path]
		switch {
		case removed[block(path)] > 0:
		case !inOld:
			reasons = append(reasons, fmt.Sprintf("%s: %s", path, n))
		case !inNew:
			reasons = append(reasons, fmt.Sprintf("%s: %s → (unset)", path, o))
		case o != n:
			reasons = append(reasons, fmt.Sprintf("%s: %s → %s", path, o, n))
		}
	}
	if got != nil && len(reasons) == 0 {
		return nil
	}
	n := len(reasons)
	if got == nil {
		n--
	}
	return &Change{Kind: Update, Subject: "settings", Summary: fmt.Sprintf("record %d change(s) to the env file's settings", n), Reasons: reasons,
		Steps: []Step{{Action: ActSettings, Target: pl.d.Env, Settings: want}}}
}

// block is the block of the env file a settings path is in when the block
// can go as a whole ("services.api", "migrations"); "" otherwise.
func block(path string) string {
	if rest, ok := strings.CutPrefix(path, "services."); ok {
		name, _, _ := strings.Cut(rest, ".")
		return "services." + name
	}
	if strings.HasPrefix(path, "migrations.") {
		return "migrations"
	}
	return ""
}

func unionKeys(a, b map[string]string) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

type planner struct {
	d    *state.Desired
	o    *state.Observed
	key  []byte
	used map[int]bool
}

func usedPorts(o *state.Observed) map[int]bool {
	used := map[int]bool{}
	for _, c := range o.Containers {
		if c.HostPort > 0 {
			used[c.HostPort] = true
		}
	}
	for _, f := range o.Foreign {
		for _, p := range f.HostPorts {
			used[p] = true
		}
	}
	for _, s := range o.Sites {
		used[s.BluePort], used[s.GreenPort] = true, true
	}
	return used
}

func (pl *planner) migrations() *Change {
	m := pl.d.Migrations
	if m == nil {
		return nil
	}
	sum := m.Spec.Summarize(pl.key)
	hash := sum.Hash()
	if hash == pl.o.LastMigration {
		return nil
	}
	reason := "run at this commit: never ran on this host"
	if pl.o.LastMigration != "" {
		reason = "run at this commit: spec (image, command, env, secrets or files) changed since the last successful run"
	}
	name := pl.d.Env + "-migrations"
	var snap []Step
	if m.SnapshotRDS != "" {
		snap = []Step{{Action: ActSnapshot, Target: "rds " + m.SnapshotRDS, Name: m.SnapshotRDS, Snapshot: SnapshotID(pl.d.Env, pl.d.Commit), Timeout: m.SnapshotTimeout}}
	}
	c := &Change{
		Kind: Migrate, Subject: "migrations", Summary: "run " + m.Spec.Image,
		Reasons: []string{reason},
		Steps: append(snap, []Step{
			{Action: ActMigrate, Target: "migrations", Name: name, Container: &ContainerSpec{
				Name: name, Spec: m.Spec, Labels: pl.labels("migrations", "migrations", "", sum, hash, 0),
				Network: m.Network, Timeout: m.Timeout,
			}},
			{Action: ActRecord, Target: "migrations", Hash: hash, MigrationRuns: pl.runsWith(hash)},
		}...),
	}
	if len(m.RollbackCommand) > 0 {
		rb := m.Spec
		rb.Command = m.RollbackCommand
		c.Compensate = []Step{
			{Action: ActMigrate, Target: "migrations rollback", Name: name, Container: &ContainerSpec{
				Name: name, Spec: rb, Labels: pl.labels("migrations", "migrations", "", sum, hash, 0),
				Network: m.Network, Timeout: m.Timeout,
			}},
			// The migrations are undone: the next apply runs them again.
			{Action: ActRecord, Target: "migrations", Hash: pl.o.LastMigration, MigrationRuns: pl.runsNow()},
		}
	}
	return c
}

// labels are the labels of a new container; role is "service" or "migrations".
func (pl *planner) labels(role, service string, color state.Color, sum state.Summary, hash string, hostPort int) map[string]string {
	spec, _ := jsonString(sum)
	l := map[string]string{
		state.LabelEnv:      pl.d.Env,
		state.LabelService:  service,
		state.LabelCommit:   pl.d.Commit,
		state.LabelSpecHash: hash,
		state.LabelSpec:     spec,
		state.LabelRole:     role,
	}
	if color != "" {
		l[state.LabelColor] = string(color)
	}
	if hostPort > 0 {
		l[state.LabelHostPort] = strconv.Itoa(hostPort)
	}
	return l
}

// onHost is one desired service with what the host holds of it: the facts
// that replace, siteUpdate and moveTraffic share.
type onHost struct {
	state.DesiredService
	sum  state.Summary
	hash string
	// site is the service's nginx file; nil when there is none.
	site *state.Site
	// byColor are the service's containers by color.
	byColor map[state.Color]*state.Container
	// live is the color that serves ("" for none); liveC is its container,
	// nil when there is none.
	live  state.Color
	liveC *state.Container
	// blue and green are the loopback ports of the colors; 0 for a worker.
	blue, green int
}

// port is the loopback port of color; 0 for a worker.
func (sv *onHost) port(color state.Color) int {
	if color == state.Blue {
		return sv.blue
	}
	return sv.green
}

// service plans one desired service: nothing, an nginx-only update, or a
// blue-green (or start-first) replacement.
func (pl *planner) service(s state.DesiredService) ([]Change, error) {
	env := pl.d.Env
	sv := &onHost{DesiredService: s, byColor: map[state.Color]*state.Container{}}
	for i := range pl.o.Containers {
		c := &pl.o.Containers[i]
		if c.Service == s.Name && (c.Color == state.Blue || c.Color == state.Green) {
			sv.byColor[c.Color] = c
		}
	}
	sv.site = pl.site(s.Name)
	sv.liveC = pl.o.Live(s.Name)
	if sv.liveC != nil {
		sv.live = sv.liveC.Color
	}
	sv.sum = s.Spec.Summarize(pl.key)
	sv.hash = sv.sum.Hash()
	if s.HasPort() {
		sv.blue, sv.green = pl.ports(s.Name, sv.site, sv.byColor)
	}

	var reasons []string
	switch {
	case sv.liveC == nil && sv.site != nil && sv.site.Live != "":
		reasons = append(reasons, "drift: no container (removed by hand?)")
	case sv.liveC == nil:
		reasons = append(reasons, "new service")
	default:
		reasons = pl.containerReasons(sv)
	}

	if pl.proxied(s) {
		if err := pl.checkForeign(state.NameProxyName(env, s.Name), 0); err != nil {
			return nil, err
		}
	}
	var changes []Change
	if len(reasons) == 0 {
		// The live container is right; only nginx and leftovers may need work.
		c, err := pl.siteUpdate(sv)
		if err != nil {
			return nil, err
		}
		if c != nil {
			changes = append(changes, *c)
		}
	} else {
		c, err := pl.replace(sv, reasons)
		if err != nil {
			return nil, err
		}
		changes = append(changes, *c)
	}
	if p := pl.proxyOf(s.Name); p != nil && !pl.proxied(s) {
		changes = append(changes, Change{
			Kind: Update, Subject: "name proxy " + p.Name, Summary: "remove",
			Reasons: []string{"service has no containerPort (or the env no network) any more"},
			Steps:   pl.proxyRemoval(s.Name, *p),
		})
	}
	if !s.HasPort() && sv.site != nil {
		changes = append(changes, Change{
			Kind: Update, Subject: "nginx " + state.SiteFile(env, s.Name), Summary: "remove",
			Reasons: []string{"service has no containerPort any more"},
			Steps:   []Step{{Action: ActRemoveNginx, Target: "nginx " + state.SiteFile(env, s.Name), Service: s.Name, Site: &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Path: sv.site.Path}}},
		})
	}
	return changes, nil
}

// containerReasons lists why the live container (sv.liveC, not nil) does
// not match the desired spec, including drift made by hand; empty means in
// sync.
func (pl *planner) containerReasons(sv *onHost) []string {
	c := sv.liveC
	var r []string
	if c.SpecHash != sv.hash {
		r = append(r, specReasons(c.Spec, sv.sum)...)
		if len(r) == 0 {
			r = append(r, "spec changed")
		}
	}
	if id := pl.o.ImageIDs[sv.Spec.Image]; c.Spec.Image == sv.Spec.Image && id != "" && c.ImageID != "" && id != c.ImageID {
		r = append(r, fmt.Sprintf("image %s now points to %s (container runs %s)", sv.Spec.Image, state.ShortImageID(id), state.ShortImageID(c.ImageID)))
	}
	// A restarting container is the engine's restart policy at work (with
	// its backoff); replacing it would hide a crash loop, which the agent
	// reports instead. Any other state that is not running was stopped
	// outside that policy.
	if !c.Running() && c.State != "restarting" {
		r = append(r, fmt.Sprintf("drift: container %s is %s (stopped by hand?)", c.Name, c.State))
	}
	if c.Memory != c.Spec.Memory {
		r = append(r, fmt.Sprintf("drift: memory limit is %s on the host, %s when created (changed by hand?)", bytesString(c.Memory), bytesString(c.Spec.Memory)))
	}
	if wantPort := sv.port(c.Color); sv.HasPort() && c.HostPort != wantPort {
		r = append(r, fmt.Sprintf("drift: published on port %d, want %d", c.HostPort, wantPort))
	}
	if n := pl.d.Network; n != "" && c.Networks[n] == nil {
		r = append(r, fmt.Sprintf("network: not on %s, where services find each other by name", n))
	}
	return r
}

// proxied reports whether s's name on the env network is held by a name
// proxy: a service with a port, on an env with a network. A worker's name
// is an alias of its live container.
func (pl *planner) proxied(s state.DesiredService) bool {
	return pl.d.Network != "" && s.HasPort()
}

// proxySpec is s's name proxy.
func (pl *planner) proxySpec(s state.DesiredService) *NameProxySpec {
	return &NameProxySpec{Name: state.NameProxyName(pl.d.Env, s.Name), Env: pl.d.Env, Service: s.Name,
		Port: s.Spec.ContainerPort, Network: pl.d.Network, Dir: pl.d.NamesDir}
}

// proxyOf is the observed name proxy of service, or nil.
func (pl *planner) proxyOf(service string) *state.NameProxy {
	for i := range pl.o.NameProxies {
		if pl.o.NameProxies[i].Service == service {
			return &pl.o.NameProxies[i]
		}
	}
	return nil
}

// proxyReason says what is wrong with s's name proxy; "" when it runs as
// wanted.
func (pl *planner) proxyReason(s state.DesiredService) string {
	p := pl.proxyOf(s.Name)
	switch {
	case p == nil:
		return "name proxy " + state.NameProxyName(pl.d.Env, s.Name) + " missing"
	case p.Port != s.Spec.ContainerPort:
		return fmt.Sprintf("name proxy %s forwards port %d, want %d", p.Name, p.Port, s.Spec.ContainerPort)
	case p.Network != pl.d.Network:
		return fmt.Sprintf("name proxy %s is on network %s, want %s", p.Name, p.Network, pl.d.Network)
	case p.State != "running":
		return fmt.Sprintf("drift: name proxy %s is %s", p.Name, p.State)
	}
	return ""
}

// nameSteps point s's name at color: the marker its proxy reads, then the
// proxy itself when it is missing, stopped or different (created after
// the marker, so it never forwards to nothing).
func (pl *planner) nameSteps(s state.DesiredService, color state.Color, target string) []Step {
	spec := pl.proxySpec(s)
	steps := []Step{{Action: ActName, Target: target, Service: s.Name, Color: color, NameProxy: spec, Smoke: pl.nameCheck(s, color)}}
	if pl.proxyReason(s) != "" {
		steps = append(steps, Step{Action: ActNameProxy, Target: s.Name, Service: s.Name, NameProxy: spec, Smoke: proxyCheck(s, color)})
	}
	return steps
}

// nameCheck is the request that confirms s's name proxy forwards to color
// once its marker moved: only when the proxy runs as wanted already (one
// that this plan creates or replaces reads the marker from its start).
func (pl *planner) nameCheck(s state.DesiredService, color state.Color) *SmokeRequest {
	if color == "" || pl.proxyReason(s) != "" {
		return nil
	}
	return &SmokeRequest{Exec: NameCheckCommand(s.Spec.ContainerPort), WantBody: string(color)}
}

// proxyCheck is the request that confirms a name proxy that a step
// (re)starts answers, forwarding to color: until it does, a caller that
// starts next (a service that depends on s) could find the name but
// nothing listening behind it.
func proxyCheck(s state.DesiredService, color state.Color) *SmokeRequest {
	return &SmokeRequest{Exec: NameCheckCommand(s.Spec.ContainerPort), WantBody: string(color)}
}

// nameRepair are the steps, with their reasons, that make s's name reach
// its live container: the marker, the proxy, and the alias s held on the
// live container before name proxies (taken off once the proxy holds it).
func (pl *planner) nameRepair(s state.DesiredService, live *state.Container) ([]Step, []string) {
	var steps []Step
	var reasons []string
	target := s.Name + "/" + string(live.Color)
	spec := pl.proxySpec(s)
	if got := pl.o.Names[s.Name]; got != live.Color {
		if got == "" {
			got = "nothing"
		}
		reasons = append(reasons, fmt.Sprintf("drift: name %s points to %s, live container is %s", s.Name, got, live.Color))
		steps = append(steps, Step{Action: ActName, Target: target, Service: s.Name, Color: live.Color, NameProxy: spec, Smoke: pl.nameCheck(s, live.Color)})
	}
	if why := pl.proxyReason(s); why != "" {
		reasons = append(reasons, why)
		steps = append(steps, Step{Action: ActNameProxy, Target: s.Name, Service: s.Name, NameProxy: spec, Smoke: proxyCheck(s, live.Color)})
	}
	n := pl.d.Network
	if want := []string{s.Name + "-" + string(live.Color)}; live.Networks[n] != nil && !slices.Equal(live.Networks[n], want) {
		reasons = append(reasons, fmt.Sprintf("aliases on network %s are %q, want %q (the name proxy holds %s)", n, live.Networks[n], want, s.Name))
		steps = append(steps, Step{Action: ActAlias, Target: target, Name: live.Name, Network: n, Aliases: want})
	}
	return steps, reasons
}

// proxyRemoval removes a name proxy and its marker (when the env has a
// marker directory).
func (pl *planner) proxyRemoval(service string, p state.NameProxy) []Step {
	steps := []Step{{Action: ActRemove, Target: service + "/name-proxy", Name: p.Name}}
	if pl.d.NamesDir != "" {
		steps = append(steps, Step{Action: ActName, Target: service + "/name-proxy", Service: service,
			NameProxy: &NameProxySpec{Name: p.Name, Env: pl.d.Env, Service: service, Dir: pl.d.NamesDir}})
	}
	return steps
}

// serviceAliases are the names of a live container on the env network.
func serviceAliases(service string, color state.Color) []string {
	return []string{service, service + "-" + string(color)}
}

// newColor is the container a replacement starts.
type newColor struct {
	color    state.Color
	name     string // container name
	target   string // "<service>/<color>"
	hostPort int    // 0 for a worker
}

// replace plans the start of a new color of sv and the move of its traffic
// and name to it, for reasons.
func (pl *planner) replace(sv *onHost, reasons []string) (*Change, error) {
	env := pl.d.Env
	liveC := sv.liveC
	nc := newColor{color: state.Blue}
	switch {
	case liveC != nil:
		nc.color = liveC.Color.Other()
	case sv.site != nil && sv.site.Live != "":
		nc.color = sv.site.Live.Other()
	}
	nc.hostPort = sv.port(nc.color)
	nc.name = state.ContainerName(env, sv.Name, nc.color)
	nc.target = sv.Name + "/" + string(nc.color)
	if err := pl.checkForeign(nc.name, nc.hostPort); err != nil {
		return nil, err
	}
	name, target, hostPort := nc.name, nc.target, nc.hostPort // short names for the steps below
	c := &Change{Kind: Create, Subject: sv.Name, Summary: "create " + string(nc.color), Reasons: reasons}
	if liveC != nil {
		c.Kind = Replace
		c.Summary = "replace " + string(liveC.Color) + " → " + string(nc.color)
	}
	if idle := sv.byColor[nc.color]; idle != nil {
		c.Steps = append(c.Steps, pl.unpinLeftover(sv.DesiredService, target)...)
		c.Steps = append(c.Steps, Step{Action: ActRemove, Target: target, Name: idle.Name})
		c.Reasons = append(c.Reasons, idleReason(idle))
	}
	health := &sv.Health
	spec := &ContainerSpec{
		Name: name, Spec: sv.Spec, HostPort: hostPort, Labels: pl.labels("service", sv.Name, nc.color, sv.sum, sv.hash, hostPort),
	}
	// The service's own name moves to the new color with its traffic: for
	// a service with a port, its name proxy is pointed at it; a worker's
	// alias moves (a first deploy has nothing to move it from).
	var aliases []Step
	switch {
	case pl.proxied(sv.DesiredService):
		spec.EnvNetwork = pl.d.Network
		spec.Aliases = []string{sv.Name + "-" + string(nc.color)}
		aliases = pl.nameSteps(sv.DesiredService, nc.color, target)
	case pl.d.Network != "":
		spec.EnvNetwork = pl.d.Network
		spec.Aliases = []string{sv.Name + "-" + string(nc.color)}
		if liveC == nil {
			spec.Aliases = serviceAliases(sv.Name, nc.color)
		} else {
			aliases = []Step{
				{Action: ActAlias, Target: target, Name: name, Network: pl.d.Network, Aliases: serviceAliases(sv.Name, nc.color)},
				{Action: ActAlias, Target: sv.Name + "/" + string(liveC.Color), Name: liveC.Name, Network: pl.d.Network, Aliases: []string{sv.Name + "-" + string(liveC.Color)}},
			}
		}
	}
	c.Steps = append(c.Steps, Step{Action: ActStart, Target: target, Name: name, HostPort: hostPort, Container: spec})
	if sv.HasPort() {
		c.Steps = append(c.Steps, Step{Action: ActWaitHealthy, Target: target, Name: name, HostPort: hostPort, Health: health})
		content, err := pl.render(sv, nc.color)
		if err != nil {
			return nil, err
		}
		if w, why := pl.siteWriteStep(sv, content); w != nil {
			if why == unloadedReason {
				// Other changes of the file are part of the service's
				// reasons already.
				c.Reasons = append(c.Reasons, why)
			}
			c.Steps = append(c.Steps, *w)
		}
		if sv.Listen != nil {
			c.Steps = append(c.Steps, pl.moveTraffic(sv, nc, aliases)...)
		} else {
			c.Steps = append(c.Steps, aliases...)
		}
		c.UndoBefore = len(c.Steps)
		if r := sv.Route53; r != nil && sv.Listen != nil {
			c.Steps = append(c.Steps, Step{Action: ActHealthCheck, Target: "route53 " + sv.Name, BestEffort: true,
				HealthCheck: &HealthCheckUpdate{ID: r.HealthCheckID, Path: health.Path, Port: sv.Listen.Port}})
		}
		if liveC != nil {
			// Before the old color goes, nginx is asked again: a bake can
			// last long enough for nginx to stop seeing the marker.
			// drain: 0s removes it at once, after the same question.
			old := Step{Action: ActDrain, Target: sv.Name + "/" + string(liveC.Color), Name: liveC.Name, Service: sv.Name,
				Drain: sv.Drain, DrainIdle: sv.DrainIdle, ContainerPort: sv.Spec.ContainerPort, Unpin: pins(sv)}
			if p := templates.LogPath(pl.logDir(sv.DesiredService), pl.d.Env, sv.Name); p != "" && sv.DrainIdle > 0 && sv.Listen != nil && liveC.HostPort > 0 {
				// nginx's view of the old color: its requests in the
				// site's access log, by the port that answered them.
				old.LogPath, old.HostPort = p, liveC.HostPort
			}
			if sv.Drain <= 0 {
				old = Step{Action: ActStop, Target: sv.Name + "/" + string(liveC.Color), Name: liveC.Name}
			}
			if sv.Listen != nil {
				old.Site = pl.trafficSite(sv.DesiredService, state.MarkerFile(pl.d.Env, sv.Name), string(nc.color), true)
			}
			c.Steps = append(c.Steps, old)
		}
	} else {
		c.Steps = append(c.Steps, Step{Action: ActSettle, Target: target, Name: name, Health: health})
		c.Steps = append(c.Steps, aliases...)
		c.UndoBefore = len(c.Steps)
		if liveC != nil {
			c.Steps = append(c.Steps, Step{Action: ActStop, Target: sv.Name + "/" + string(liveC.Color), Name: liveC.Name})
		}
	}
	if liveC != nil {
		c.OldImage = liveC.Spec.Image
		if sv.Listen != nil {
			// Traffic may have moved (canary, bake, smoke): send it back
			// to the old color, which is still running, first.
			// Verified through nginx when the file served before has the
			// route check and this change does not rewrite it: after a
			// rewrite the undo cannot know which file nginx serves (the
			// new one, or the old one put back when the write failed),
			// and a new listen address or TLS setting would ask the
			// wrong address.
			hasRoute := sv.site != nil && templates.HasRoute(sv.site.Content) &&
				!slices.ContainsFunc(c.Steps, func(s Step) bool { return s.Action == ActWriteNginx })
			c.Undo = append(c.Undo, Step{Action: ActSwitch, Target: sv.Name + "/" + string(liveC.Color), Service: sv.Name, Color: liveC.Color,
				Site: pl.trafficSite(sv.DesiredService, state.MarkerFile(pl.d.Env, sv.Name), string(liveC.Color), hasRoute)})
			if pins(sv) {
				// After the switch back: sessions the new color issued
				// meanwhile reach it until it goes.
				c.Undo = append(c.Undo, Step{Action: ActUnpin, Target: sv.Name + "/" + string(liveC.Color), Service: sv.Name,
					Site: &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Marker: state.DrainMarkerFile(pl.d.Env, sv.Name)}})
			}
		}
		switch {
		case pl.proxied(sv.DesiredService):
			// The name comes back to the old color before the new one
			// goes.
			c.Undo = append(c.Undo, Step{Action: ActName, Target: sv.Name + "/" + string(liveC.Color), Service: sv.Name, Color: liveC.Color, NameProxy: pl.proxySpec(sv.DesiredService),
				Smoke: pl.nameCheck(sv.DesiredService, liveC.Color)})
		case pl.d.Network != "":
			// The name comes back to the old color before the new one
			// goes, so it never resolves to nothing (a no-op when the
			// name had not moved yet).
			c.Undo = append(c.Undo, Step{Action: ActAlias, Target: sv.Name + "/" + string(liveC.Color), Name: liveC.Name, Network: pl.d.Network, Aliases: serviceAliases(sv.Name, liveC.Color)})
		}
	}
	c.NewImage = sv.Spec.Image
	if sv.site == nil && sv.HasPort() {
		// A new service's file goes with it: a failed first deploy leaves
		// nothing behind in confDir (nor a file nginx loads for nothing).
		c.Undo = append(c.Undo, Step{Action: ActRemoveNginx, Target: "nginx " + state.SiteFile(env, sv.Name), Service: sv.Name,
			Site: &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Path: pl.sitePath(sv.Name)}})
	}
	c.Undo = append(c.Undo, Step{Action: ActRemove, Target: target, Name: name})
	return c, nil
}

// moveTraffic are the steps that move sv's traffic to the new container nc
// and watch it: the canary steps (only when an old version serves), the
// switch, the move of the service's name (aliases), the smoke checks, and
// the bake. sv has a Listen.
func (pl *planner) moveTraffic(sv *onHost, nc newColor, aliases []Step) []Step {
	dep := sv.Deploy
	health := &sv.Health
	watch := func(d time.Duration) *Watch {
		return pl.watch(sv.DesiredService, d)
	}
	var steps []Step
	if dep.Strategy == state.Canary && sv.liveC != nil {
		for _, p := range dep.Steps {
			if p >= 100 {
				break
			}
			steps = append(steps,
				Step{Action: ActShift, Target: nc.target, Service: sv.Name, Color: nc.color, Percent: p,
					Site: pl.trafficSite(sv.DesiredService, state.CanaryMarkerFile(pl.d.Env, sv.Name, p, nc.color), fmt.Sprintf("%d%% %s", p, nc.color), true)},
				Step{Action: ActWatch, Target: nc.target, Name: nc.name, Service: sv.Name, Color: nc.color, HostPort: nc.hostPort, Health: health, Watch: watch(dep.StepPause)})
		}
	}
	if pins(sv) {
		// Before the switch: from the switch on, the old color's sessions
		// must find it.
		steps = append(steps, Step{Action: ActPin, Target: sv.Name + "/" + string(sv.liveC.Color), Service: sv.Name, Color: sv.liveC.Color,
			Site: &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Marker: state.DrainMarkerFile(pl.d.Env, sv.Name)}})
	}
	steps = append(steps, Step{Action: ActSwitch, Target: nc.target, Service: sv.Name, Color: nc.color,
		Site: pl.trafficSite(sv.DesiredService, state.MarkerFile(pl.d.Env, sv.Name), string(nc.color), true)})
	steps = append(steps, aliases...)
	for _, sm := range sv.Smoke {
		if len(sm.Exec) > 0 {
			steps = append(steps, Step{Action: ActSmoke, Target: nc.target, Name: nc.name, Smoke: &SmokeRequest{Exec: sm.Exec}})
			continue
		}
		req := smokeRequest(sv.DesiredService, sm.Path, sm.Status)
		steps = append(steps, Step{Action: ActSmoke, Target: nc.target, Smoke: &req})
	}
	if b := dep.Bake; b > 0 {
		steps = append(steps, Step{Action: ActWatch, Target: nc.target, Name: nc.name, Service: sv.Name, Color: nc.color, HostPort: nc.hostPort, Health: health, Watch: watch(b)})
	}
	return steps
}

// pins reports whether a replace of sv keeps the old color's sessions on
// it while it drains: the service has a session header, a server block and
// a drain, and an old color.
func pins(sv *onHost) bool {
	return sv.SessionHeader != "" && sv.Listen != nil && sv.Drain > 0 && sv.liveC != nil
}

// unpinLeftover is the step that removes a service's drain marker before
// its leftover color (target) goes: a drain that was interrupted left it,
// and nginx would keep sending sessions the live color does not know to
// the leftover, then to nothing. None for a service without sessions.
func (pl *planner) unpinLeftover(s state.DesiredService, target string) []Step {
	if s.SessionHeader == "" || s.Listen == nil {
		return nil
	}
	return []Step{{Action: ActUnpin, Target: target, Service: s.Name,
		Site: &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Marker: state.DrainMarkerFile(pl.d.Env, s.Name)}}}
}

// logDir is where the site's access log goes: only when something reads it
// (a bake or a canary, or a drain that waits for sessions to go idle), so a
// plain site needs no log directory.
func (pl *planner) logDir(s state.DesiredService) string {
	if s.Deploy.Watched() || (s.SessionHeader != "" && s.Listen != nil && s.Drain > 0 && s.DrainIdle > 0) {
		return pl.d.Nginx.LogDir
	}
	return ""
}

// siteWrite is the change that writes a site file; a file with a server
// block gets its check request, so apply knows when nginx serves it.
func (pl *planner) siteWrite(s state.DesiredService, path string, content []byte) *SiteChange {
	c := &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Path: path, Content: content}
	if check := templates.CheckPath(content); check != "" && s.Listen != nil {
		r := smokeRequest(s, check, 204)
		c.Loaded = &r
	}
	return c
}

// SnapshotID is the id of the RDS snapshot taken before env's migrations
// at commit: letters, digits and single hyphens, starting with a letter,
// as RDS requires. The same commit gives the same id, so a retried deploy
// waits for its snapshot instead of taking another.
func SnapshotID(env, commit string) string {
	raw := "reconciler-" + env + "-" + state.ShortHash(commit)
	var b strings.Builder
	for _, r := range raw {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok {
			r = '-'
		}
		if r == '-' && strings.HasSuffix(b.String(), "-") {
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), "-")
}

// trafficSite is the SiteChange of a step that moves s's traffic: marker
// is the file in the conf dir the move writes or removes, want the answer
// of the site's route check once nginx follows it (a color, or
// "<percent>% <color>"). route is false when the file nginx serves at that
// point may lack the route check; an upstream-only site has none.
func (pl *planner) trafficSite(s state.DesiredService, marker, want string, route bool) *SiteChange {
	c := &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Marker: marker}
	if route && s.Listen != nil {
		r := smokeRequest(s, templates.RoutePath, 200)
		r.WantBody = want
		c.Route = &r
	}
	return c
}

// SiteRequest is the GET of path, expecting status, through nginx's public
// address of s (which has a Listen), as the plan's smoke and route checks
// send it.
func SiteRequest(s state.DesiredService, path string, status int) SmokeRequest {
	return smokeRequest(s, path, status)
}

// smokeRequest is a GET of path, expecting status, sent to nginx's public
// address of s (which has a Listen): its listen address, or loopback when
// nginx listens on every address.
func smokeRequest(s state.DesiredService, path string, status int) SmokeRequest {
	host := "127.0.0.1"
	switch h := strings.Trim(s.Listen.Host, "[]"); h {
	case "", "*", "0.0.0.0", "::", "localhost":
	default:
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	scheme := "http"
	if s.Listen.SSL() {
		scheme = "https"
	}
	serverName := ""
	if names := strings.Fields(s.ServerName); len(names) > 0 {
		serverName = names[0]
	}
	return SmokeRequest{URL: scheme + "://" + host + ":" + strconv.Itoa(s.Listen.Port) + path, Host: serverName, WantStatus: status}
}

// siteUpdate repairs nginx for a service whose live container is right:
// the file's bytes, the marker, and leftovers of the idle color.
func (pl *planner) siteUpdate(sv *onHost) (*Change, error) {
	site, byColor, live := sv.site, sv.byColor, sv.live
	c := &Change{Kind: Update, Subject: sv.Name}
	var what []string
	if sv.HasPort() {
		content, err := pl.render(sv, live)
		if err != nil {
			return nil, err
		}
		if w, why := pl.siteWriteStep(sv, content); w != nil {
			c.Reasons = append(c.Reasons, why)
			c.Steps = append(c.Steps, *w)
			what = append(what, "rewrite nginx file")
		}
		if sv.Listen != nil && (site == nil || site.Live != live) {
			from := "nothing"
			if site != nil {
				from = string(site.Live)
			}
			c.Reasons = append(c.Reasons, fmt.Sprintf("drift: nginx sends traffic to %s, live container is %s", from, live))
			// The file's write (when it differs) comes first: the file
			// served at the switch is the rendered one, route check
			// included.
			c.Steps = append(c.Steps, Step{Action: ActSwitch, Target: sv.Name + "/" + string(live), Service: sv.Name, Color: live,
				Site: pl.trafficSite(sv.DesiredService, state.MarkerFile(pl.d.Env, sv.Name), string(live), true)})
			what = append(what, "switch to "+string(live))
		}
	}
	if pl.proxied(sv.DesiredService) && byColor[live] != nil {
		steps, reasons := pl.nameRepair(sv.DesiredService, byColor[live])
		c.Reasons = append(c.Reasons, reasons...)
		c.Steps = append(c.Steps, steps...)
		for _, st := range steps {
			switch st.Action {
			case ActName:
				what = append(what, "name "+sv.Name+" → "+string(live))
			case ActNameProxy:
				what = append(what, "start name proxy")
			case ActAlias:
				what = append(what, "name off the container")
			}
		}
	} else if n := pl.d.Network; n != "" && byColor[live] != nil {
		want := serviceAliases(sv.Name, live)
		if !slices.Equal(byColor[live].Networks[n], want) {
			c.Reasons = append(c.Reasons, fmt.Sprintf("drift: aliases on network %s are %q, want %q", n, byColor[live].Networks[n], want))
			c.Steps = append(c.Steps, Step{Action: ActAlias, Target: sv.Name + "/" + string(live), Name: byColor[live].Name, Network: n, Aliases: want})
			what = append(what, "move name "+sv.Name+" to "+string(live))
		}
	}
	if idle := byColor[live.Other()]; idle != nil && !Kept(idle) {
		c.Reasons = append(c.Reasons, fmt.Sprintf("leftover %s (%s) from an interrupted deploy", idle.Name, idle.State))
		rm := Step{Action: ActRemove, Target: sv.Name + "/" + string(idle.Color), Name: idle.Name}
		if sv.Listen != nil && sv.HasPort() {
			// nginx may still route to the leftover (a marker its
			// workers do not see): ask it first.
			rm.Site = pl.trafficSite(sv.DesiredService, state.MarkerFile(pl.d.Env, sv.Name), string(live), true)
		}
		c.Steps = append(c.Steps, pl.unpinLeftover(sv.DesiredService, rm.Target)...)
		c.Steps = append(c.Steps, rm)
		what = append(what, "remove "+string(idle.Color))
	}
	if len(c.Steps) == 0 {
		return nil, nil
	}
	c.Summary = strings.Join(what, ", ")
	return c, nil
}

func (pl *planner) removals(desired map[string]bool) []Change {
	env := pl.d.Env
	bySvc := map[string][]state.Container{}
	for _, c := range pl.o.Containers {
		if !desired[c.Service] {
			bySvc[c.Service] = append(bySvc[c.Service], c)
		}
	}
	sites := map[string]state.Site{}
	for _, s := range pl.o.Sites {
		if !desired[s.Service] {
			sites[s.Service] = s
			if _, ok := bySvc[s.Service]; !ok {
				bySvc[s.Service] = nil
			}
		}
	}
	proxies := map[string]state.NameProxy{}
	for _, p := range pl.o.NameProxies {
		if !desired[p.Service] {
			proxies[p.Service] = p
			if _, ok := bySvc[p.Service]; !ok {
				bySvc[p.Service] = nil
			}
		}
	}
	var out []Change
	order, after := removalOrder(state.SortedKeys(bySvc), pl.o.Settings)
	for _, svc := range order {
		c := Change{Kind: Remove, Subject: svc, Reasons: append([]string{"not in the env file"}, after[svc]...)}
		var what []string
		if site, ok := sites[svc]; ok {
			// Traffic leaves before the containers go.
			c.Steps = append(c.Steps, Step{Action: ActRemoveNginx, Target: "nginx " + state.SiteFile(env, svc), Service: svc, Site: &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Path: site.Path}})
			what = append(what, "nginx file")
		}
		if p, ok := proxies[svc]; ok {
			c.Steps = append(c.Steps, pl.proxyRemoval(svc, p)...)
			what = append(what, "name proxy")
		}
		for _, ct := range bySvc[svc] {
			c.Steps = append(c.Steps, Step{Action: ActRemove, Target: svc + "/" + string(ct.Color), Name: ct.Name})
			what = append(what, string(ct.Color))
		}
		c.Summary = "remove " + strings.Join(what, ", ")
		out = append(out, c)
	}
	return out
}

// unloadedReason explains a write of an nginx file whose bytes are already
// right: an apply was killed between writing it and reloading nginx.
const unloadedReason = "nginx file written by an interrupted apply was never loaded (reload pending)"

// siteWriteStep is the step that writes content as the service's nginx
// file, and why, when nginx does not serve exactly content yet: the file is
// missing, differs, or was written but never loaded. It is nil otherwise.
func (pl *planner) siteWriteStep(sv *onHost, content []byte) (*Step, string) {
	var why string
	switch site := sv.site; {
	case site == nil:
		why = "nginx file missing"
	case !bytes.Equal(site.Content, content):
		why = "nginx file differs from the desired one (edited by hand, or listen/serverName/tls changed)"
	case site.Unloaded:
		why = unloadedReason
	default:
		return nil, ""
	}
	return &Step{Action: ActWriteNginx, Target: "nginx " + state.SiteFile(pl.d.Env, sv.Name), Site: pl.siteWrite(sv.DesiredService, pl.sitePath(sv.Name), content)}, why
}

func (pl *planner) site(service string) *state.Site {
	for i := range pl.o.Sites {
		if pl.o.Sites[i].Service == service {
			return &pl.o.Sites[i]
		}
	}
	return nil
}

func (pl *planner) sitePath(service string) string {
	return strings.TrimRight(pl.d.Nginx.ConfDir, "/") + "/" + state.SiteFile(pl.d.Env, service)
}

// render returns sv's nginx file with live as the color an upstream-only
// file points at.
func (pl *planner) render(sv *onHost, live state.Color) ([]byte, error) {
	p := templates.SiteParams{
		Env: pl.d.Env, Service: sv.Name, ConfDir: pl.d.Nginx.ConfDir,
		BluePort: sv.blue, GreenPort: sv.green,
		Listen: sv.Listen, ServerName: sv.ServerName, TLS: sv.TLS,
		LogDir:        pl.logDir(sv.DesiredService),
		SessionHeader: sv.SessionHeader,
	}
	if sv.Deploy.Strategy == state.Canary {
		for _, pct := range sv.Deploy.Steps {
			if pct < 100 {
				p.Canary = append(p.Canary, pct)
			}
		}
	}
	if sv.Listen == nil {
		p.Live = live // an upstream-only site names the live color in its file
	}
	b, err := templates.Site(p)
	if err != nil {
		return nil, fmt.Errorf("render nginx file for %s: %w", sv.Name, err)
	}
	return b, nil
}

// ports returns the service's loopback ports: kept from the site header or
// the containers when known, else allocated deterministically from the
// service's name, skipping every port in use.
func (pl *planner) ports(service string, site *state.Site, byColor map[state.Color]*state.Container) (blue, green int) {
	if site != nil {
		blue, green = site.BluePort, site.GreenPort
	}
	if blue == 0 && byColor[state.Blue] != nil {
		blue = byColor[state.Blue].HostPort
	}
	if green == 0 && byColor[state.Green] != nil {
		green = byColor[state.Green].HostPort
	}
	if blue > 0 && green > 0 {
		return blue, green
	}
	h := fnv.New32a()
	h.Write([]byte(pl.d.Env + "/" + service))
	start := int(h.Sum32() % portPairs)
	for i := 0; i < portPairs; i++ {
		p := portBase + ((start+i)%portPairs)*2
		if (blue == 0 && pl.used[p]) || (green == 0 && pl.used[p+1]) {
			continue
		}
		if blue == 0 {
			blue = p
			pl.used[p] = true
		}
		if green == 0 {
			green = p + 1
			pl.used[p+1] = true
		}
		break
	}
	return blue, green
}

func (pl *planner) checkForeign(name string, port int) error {
	for _, f := range pl.o.Foreign {
		if f.Name == name && f.Owner != "" {
			return fmt.Errorf("container name %s belongs to %s (its labels), not to env %s: the names collide (<env>-<service>); rename one of the services (reconciler never touches it)", name, f.Owner, pl.d.Env)
		}
		if f.Name == name {
			return fmt.Errorf("container name %s is taken by a container without reconciler labels for env %s: rename or remove it (reconciler never touches it)", name, pl.d.Env)
		}
		if port > 0 && slices.Contains(f.HostPorts, port) {
			return fmt.Errorf("port 127.0.0.1:%d, kept for %s, is published by container %s that is not ours: free the port or remove the service's nginx file to pick another", port, name, f.Name)
		}
	}
	return nil
}

// specReasons names every field that differs between two summaries. Values
// of env and secrets are never shown, only that they changed.
func specReasons(old, new state.Summary) []string {
	var r []string
	if old.Image == "" && old.Env == nil && old.Files == nil {
		return []string{"spec of the running container unknown (no reconciler.spec label)"}
	}
	if old.Image != new.Image {
		r = append(r, fmt.Sprintf("image %s → %s", old.Image, new.Image))
	}
	if !slices.Equal(old.Command, new.Command) {
		r = append(r, fmt.Sprintf("command %q → %q", old.Command, new.Command))
	}
	r = append(r, mapReasons("env", old.Env, new.Env)...)
	r = append(r, mapReasons("secret", old.Secrets, new.Secrets)...)
	r = append(r, mapReasons("file", old.Files, new.Files)...)
	if old.Memory != new.Memory {
		r = append(r, fmt.Sprintf("memory %s → %s", bytesString(old.Memory), bytesString(new.Memory)))
	}
	if old.ContainerPort != new.ContainerPort {
		r = append(r, fmt.Sprintf("containerPort %d → %d", old.ContainerPort, new.ContainerPort))
	}
	return r
}

func mapReasons(what string, old, new map[string]string) []string {
	var r []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range new {
		keys[k] = true
	}
	for _, k := range state.SortedKeys(keys) {
		o, inOld := old[k]
		n, inNew := new[k]
		switch {
		case !inOld:
			r = append(r, fmt.Sprintf("%s %s added", what, k))
		case !inNew:
			r = append(r, fmt.Sprintf("%s %s removed", what, k))
		case o != n:
			r = append(r, fmt.Sprintf("%s %s changed", what, k))
		}
	}
	return r
}

func bytesString(n int64) string {
	switch {
	case n == 0:
		return "no limit"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dg", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dm", n>>20)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
