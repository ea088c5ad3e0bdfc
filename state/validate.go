package state

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/developer-mesh/reconciler/internal/lazyre"
)

// MinMemory is the smallest memory limit Docker accepts: 6 MiB.
const MinMemory = 6 << 20

// maxNameLen bounds environment and service names: container names are
// <env>-<service>-<color> and must stay readable.
const maxNameLen = 40

const dnsLabelRule = "a lowercase DNS label (a-z, 0-9 and '-', starting with a letter, not ending with '-', at most 40 characters)"

// CheckEnvName returns an error when name cannot name an environment (the
// rule of checkName): every command checks --env with it before the name
// reaches a path (envs/NAME.yaml, the state dir's NAME.lock).
func CheckEnvName(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("invalid environment name %q: want %s", name, dnsLabelRule)
	}
	return nil
}

// checkName checks an environment or service name: a DNS label that is not
// reserved. Container names are <env>-<service>-<color> and the migrations
// job is <env>-migrations, so "migrations" and names ending in a color could
// collide with ours.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name; want %s", dnsLabelRule)
	case len(name) > maxNameLen || !isDNSLabel(name):
		return fmt.Errorf("invalid name %q: want %s", name, dnsLabelRule)
	case name == "migrations":
		return fmt.Errorf("%q is reserved for the migrations job; choose another name", name)
	case strings.HasSuffix(name, "-"+string(Blue)) || strings.HasSuffix(name, "-"+string(Green)):
		return fmt.Errorf("%q ends in a color (-blue, -green), which container names use; choose another name", name)
	}
	return nil
}

// ParseMemory parses a memory size in Docker's syntax: a non-negative integer
// with an optional, case-insensitive unit b, k, m or g (also kb, mb, gb and
// ki, mi, gi, kib, mib, gib), all powers of 1024: "384m" is 402653184. A
// bare number is bytes. It does not enforce MinMemory; validation does.
func ParseMemory(s string) (int64, error) {
	m := memoryRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("want a size such as \"384m\", \"1g\" or \"512Mi\", got %s", quote(s))
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %s is too large", quote(s))
	}
	var mult int64
	switch strings.ToLower(m[2]) {
	case "", "b":
		mult = 1
	case "k", "kb", "ki", "kib":
		mult = 1 << 10
	case "m", "mb", "mi", "mib":
		mult = 1 << 20
	case "g", "gb", "gi", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("unknown unit %q in %s; want b, k, m or g", m[2], quote(s))
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("size %s is too large", quote(s))
	}
	return n * mult, nil
}

var memoryRE = lazyre.New(`^([0-9]+) ?([A-Za-z]*)$`)

// ImageRef is a parsed image reference:
// [domain[:port]/]path[:tag][@sha256:<64 hex>].
type ImageRef struct {
	Domain string // registry host[:port]; empty for Docker Hub
	Path   string // repository path, lowercase components joined by "/"
	Tag    string // empty when absent
	Digest string // "sha256:<hex>", empty when absent
}

var (
	domainRE = lazyre.New(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	digestRE = lazyre.New(`^sha256:[a-f0-9]{64}$`)
)

// ParseImageRef parses an image reference following the grammar of
// github.com/distribution/reference, restricted to sha256 digests. The first
// path component is the registry when it holds a "." or ":" or is
// "localhost". It does not require a tag.
func ParseImageRef(s string) (ImageRef, error) {
	var r ImageRef
	if s == "" {
		return r, errors.New("empty image reference")
	}
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		r.Digest, rest = rest[i+1:], rest[:i]
		if !digestRE.MatchString(r.Digest) {
			return r, fmt.Errorf("digest %s: want sha256: and 64 lowercase hex digits", quote(r.Digest))
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		r.Tag, rest = rest[i+1:], rest[:i]
		if !isImageTag(r.Tag) {
			return r, fmt.Errorf("tag %s: want letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')", quote(r.Tag))
		}
	}
	if len(rest) > 255 {
		return r, errors.New("name longer than 255 characters")
	}
	parts := strings.Split(rest, "/")
	if first := parts[0]; len(parts) > 1 && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		if !domainRE.MatchString(first) {
			return r, fmt.Errorf("registry %s: want a host name or IP with an optional :port", quote(first))
		}
		r.Domain, parts = first, parts[1:]
	}
	for _, p := range parts {
		switch {
		case p == "":
			return r, errors.New("empty path component (\"//\", or a leading or trailing \"/\")")
		case strings.ToLower(p) != p && isPathComponent(strings.ToLower(p)):
			return r, fmt.Errorf("path component %s must be lowercase", quote(p))
		case !isPathComponent(p):
			return r, fmt.Errorf("path component %s: want lowercase letters and digits, separated by '.', '_', '__' or '-'", quote(p))
		}
	}
	r.Path = strings.Join(parts, "/")
	return r, nil
}

// SecretRef is a parsed secret reference, the value side of a service's
// secrets: where the reconciler reads the secret at deploy time.
// It is comparable: the secrets backend returns values keyed by it, and
// Resolve looks them up by it.
type SecretRef struct {
	// Scheme is SchemeSSM, SchemeSecretsManager, SchemeEnv or SchemeFile.
	Scheme string
	// Name is the SSM parameter name ("/devops-mcp/prod/database_password"),
	// the Secrets Manager secret name or ARN, the variable of the
	// reconciler's own environment, or the absolute file path on the host.
	Name string
	// Key is the JSON key inside a Secrets Manager secret; empty for the
	// whole secret string.
	Key string
}

// Secret reference schemes.
const (
	SchemeSSM            = "ssm"
	SchemeSecretsManager = "secretsmanager"
	SchemeEnv            = "env"
	SchemeFile           = "file"
)

// String returns the reference as written in the env file; ParseSecretRef
// of it returns r again. It holds no secret value, so errors may show it.
func (r SecretRef) String() string {
	if r.Key != "" {
		return r.Scheme + ":" + r.Name + "#" + r.Key
	}
	return r.Scheme + ":" + r.Name
}

const secretForms = "ssm:/path, secretsmanager:NAME, secretsmanager:NAME#jsonKey, env:VAR or file:/absolute/path"

var (
	ssmNameRE = lazyre.New(`^(/[A-Za-z0-9_.-]+)+$`)
	smNameRE  = lazyre.New(`^[A-Za-z0-9/_+=.@:-]+$`)
)

// ParseSecretRef parses a secret reference: "ssm:/path",
// "secretsmanager:NAME", "secretsmanager:NAME#jsonKey", "env:VAR" or
// "file:/absolute/path". Its errors show the reference only when it starts
// with a known scheme: anything else may be a secret pasted by mistake.
func ParseSecretRef(s string) (SecretRef, error) {
	scheme, name, ok := strings.Cut(s, ":")
	r := SecretRef{Scheme: scheme, Name: name}
	switch {
	case !ok:
		return r, fmt.Errorf("not a secret reference (value not shown); want %s", secretForms)
	case scheme == SchemeSSM:
		if len(name) > 2048 || !ssmNameRE.MatchString(name) {
			return r, fmt.Errorf("want ssm:/path with a parameter name of letters, digits, '_', '.', '-' and '/' starting with '/', got %s", quote(s))
		}
	case scheme == SchemeSecretsManager:
		r.Name, r.Key, _ = strings.Cut(name, "#")
		if len(r.Name) > 2048 || !smNameRE.MatchString(r.Name) {
			return r, fmt.Errorf("want secretsmanager:NAME or secretsmanager:NAME#jsonKey with a secret name or ARN of letters, digits and /_+=.@:-, got %s", quote(s))
		}
		if strings.Contains(name, "#") && r.Key == "" {
			return r, fmt.Errorf("empty JSON key after '#' in %s; want secretsmanager:NAME#jsonKey", quote(s))
		}
	case scheme == SchemeEnv:
		if !isEnvVarName(name) {
			return r, fmt.Errorf("want env:VAR with a variable name such as env:DATABASE_PASSWORD, got %s", quote(s))
		}
	case scheme == SchemeFile:
		if !absClean(name) || name == "/" {
			return r, fmt.Errorf("want file:/absolute/path with a clean absolute path, got %s", quote(s))
		}
	default:
		return r, fmt.Errorf("not a secret reference (value not shown); want %s", secretForms)
	}
	return r, nil
}

func absClean(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p
}

// nginxUnsafe are characters that would end or escape an nginx directive if
// a value holding them were written into a config file.
const nginxUnsafe = ";{}\"'\\$#` \t\r\n"

// checker validates a decoded, defaulted Env against the document it came
// from, collecting every problem.
type checker struct {
	file    string
	envName string
	fsys    fs.FS
	doc     *document
	errs    []error
	// envFiles caches each env file's parse, so that a file shared by several
	// services is reported once.
	envFiles map[string]*envFile
}

func newChecker(file, envName string, fsys fs.FS, doc *document) *checker {
	return &checker{file: file, envName: envName, fsys: fsys, doc: doc, envFiles: map[string]*envFile{}}
}

func (c *checker) errf(path, format string, args ...any) {
	file, line := c.doc.where(path)
	c.errs = append(c.errs, &FieldError{File: file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// ok reports whether the field at path was not rejected while decoding;
// rules that read a rejected field stay quiet, since its error is reported.
func (c *checker) ok(paths ...string) bool {
	if len(c.doc.bad) == 0 {
		// A file without rejected fields (every valid one): nothing to look up.
		return true
	}
	for _, p := range paths {
		for q := p; q != ""; q = parentPath(q) {
			if c.doc.bad[q] {
				return false
			}
		}
	}
	return true
}

// healthCheckID is a Route 53 health check id.
var healthCheckID = lazyre.New(`^[a-zA-Z0-9-]{1,64}$`)

// rdsInstanceID is an RDS DB instance identifier.
var rdsInstanceID = lazyre.New(`^[a-zA-Z][a-zA-Z0-9-]{0,62}$`)

func (c *checker) check(e *Env) {
	switch {
	case !c.ok("environment"):
	case e.Environment == "":
		c.errf("environment", "required; want %q (the file's name)", c.envName)
	case e.Environment != c.envName:
		c.errf("environment", "want %q (the file is %s), got %s", c.envName, c.file, quote(e.Environment))
	}
	c.checkNginx(e.Nginx)
	if c.ok("network") && e.Network != "" {
		switch {
		case !isNetworkName(e.Network):
			c.errf("network", "want a Docker network name (letters, digits, '_', '.', '-'), got %s", quote(e.Network))
		case e.Network == "host" || e.Network == "none" || e.Network == "bridge" || e.Network == "default":
			c.errf("network", "want a network of this environment's own; %q is one of Docker's built-in networks", e.Network)
		}
	}
	if c.ok("keepImages") && e.KeepImages < 0 {
		c.errf("keepImages", "want a number of images to keep, 1 or more, got %d", e.KeepImages)
	}

	c.checkAWS(e.AWS)
	c.checkFleet(e.Fleet)
	c.checkRelease(e)

	if c.ok("services") && len(e.Services) == 0 {
		c.errf("services", "required: want at least one service")
	}
	for _, name := range SortedKeys(e.Services) {
		c.checkService(name, e.Services[name])
	}
	c.checkDependsOn(e.Services)
	c.checkSites(e)
	c.checkNotify(e.Notify)
	c.checkRoute53Sites(e.Route53)
	c.checkRecords(e)

	if e.Migrations != nil {
		m := e.Migrations
		c.checkImage("migrations.image", m.Image)
		c.checkCommand("migrations.command", m.Command)
		c.checkVars("migrations", Service{Env: m.Env, EnvFile: m.EnvFile, Secrets: m.Secrets})
		c.checkFiles("migrations", m.Files)
		if c.ok("migrations.network") && !isNetworkName(m.Network) { // host, bridge and none match too
			c.errf("migrations.network", "want a Docker network name such as \"host\" (the default) or \"bridge\", got %s", quote(m.Network))
		}
		if c.ok("migrations.timeout") && m.Timeout.D() <= 0 {
			c.errf("migrations.timeout", "want a duration greater than 0 such as \"10m\", got %s", m.Timeout.D())
		}
		if m.Rollback != nil && c.ok("migrations.rollback.command") {
			if len(m.Rollback.Command) == 0 {
				c.errf("migrations.rollback.command", "required; want the command that undoes the migrations, such as [\"/app/migrate\", \"down\"]")
			} else {
				c.checkCommand("migrations.rollback.command", m.Rollback.Command)
			}
		}
		if m.DryRun != nil && c.ok("migrations.dryRun.command") {
			if len(m.DryRun.Command) == 0 {
				c.errf("migrations.dryRun.command", "required; want a command that checks the migrations without applying them, such as [\"/app/migrate\", \"up\", \"--dry-run\"]")
			} else {
				c.checkCommand("migrations.dryRun.command", m.DryRun.Command)
			}
		}
		if m.Snapshot != nil && c.ok("migrations.snapshot.timeout") && m.Snapshot.Timeout.D() <= 0 {
			c.errf("migrations.snapshot.timeout", "want a duration greater than 0 such as \"10m\", got %s", m.Snapshot.Timeout.D())
		}
		if m.Snapshot != nil && c.ok("migrations.snapshot.rdsInstance") && !rdsInstanceID.MatchString(m.Snapshot.RDSInstance) {
			c.errf("migrations.snapshot.rdsInstance", "want an RDS DB instance identifier (a letter, then letters, digits and hyphens, at most 63), got %s", quote(m.Snapshot.RDSInstance))
		}
	}
	if e.Backup != nil {
		c.checkBackup(*e.Backup)
	}
}

var s3URLRE = lazyre.New(`^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]*)?$`)

func (c *checker) checkBackup(b Backup) {
	if v, ok := c.doc.rawInt("backup.keep"); ok && v < 1 {
		c.errf("backup.keep", "want an integer of at least 1, got %d (leave keep out for %d)", v, DefaultBackupKeep)
	}
	if c.ok("backup.s3") && c.doc.has("backup.s3") && !s3URLRE.MatchString(b.S3) {
		c.errf("backup.s3", "want s3://bucket/prefix such as \"s3://my-backups/reconciler\", got %s", quote(b.S3))
	}
}

// BackupKeep returns how many backups to keep: backup.keep, or
// DefaultBackupKeep.
func (e *Env) BackupKeep() int {
	if e.Backup != nil && e.Backup.Keep > 0 {
		return e.Backup.Keep
	}
	return DefaultBackupKeep
}

func (c *checker) checkNginx(n Nginx) {
	if c.ok("nginx.confDir") {
		if !absClean(n.ConfDir) || n.ConfDir == "/" || strings.ContainsAny(n.ConfDir, nginxUnsafe) {
			c.errf("nginx.confDir", "want a clean absolute directory such as %q, got %s", DefaultConfDir, quote(n.ConfDir))
		}
	}
	if c.ok("nginx.logDir") && (!absClean(n.LogDir) || strings.ContainsAny(n.LogDir, nginxUnsafe)) {
		c.errf("nginx.logDir", "want a clean absolute directory such as %q, got %s", DefaultLogDir, quote(n.LogDir))
	}
	for _, f := range []struct{ path, v string }{{"nginx.test", n.Test}, {"nginx.reload", n.Reload}} {
		if c.ok(f.path) && strings.TrimSpace(f.v) == "" {
			c.errf(f.path, "want a shell command; leave it out for the default")
		}
	}
}

func (c *checker) checkService(name string, s Service) {
	sp := "services." + name
	if err := checkName(name); err != nil {
		c.errf(sp, "service name: %v", err)
	}
	if c.ok(sp+".image") && !c.doc.has(sp+".image") {
		c.errf(sp+".image", "required; want an image reference such as \"ghcr.io/org/app:v1.2.3\"")
	} else {
		c.checkImage(sp+".image", s.Image)
	}

	port := sp + ".containerPort"
	hasPort := c.doc.has(port)
	if v, ok := c.doc.rawInt(port); ok && (v < 1 || v > 65535) {
		hint := ""
		if v == 0 {
			hint = " (leave containerPort out for a worker)"
		}
		c.errf(port, "want an integer 1-65535, got %d%s", v, hint)
	}
	if !hasPort && c.ok(port) {
		for _, f := range []string{"listen", "serverName", "tls"} {
			if c.doc.has(sp + "." + f) {
				c.errf(sp+"."+f, "needs containerPort: a service without one is a worker, with nothing for nginx to reach")
			}
		}
		// A worker settles when it runs without a restart for
		// healthyThreshold checks interval apart, within startTimeout.
		for _, f := range []string{"path", "timeout", "unhealthyThreshold"} {
			if c.doc.has(sp + ".health." + f) {
				c.errf(sp+".health."+f, "needs containerPort: a worker has no port to check; it settles when it runs without a restart for healthyThreshold checks interval apart (set interval, healthyThreshold, startTimeout)")
			}
		}
	}
	c.checkListen(sp, s)
	c.checkCommand(sp+".command", s.Command)
	c.checkVars(sp, s)
	c.checkFiles(sp, s.Files)

	if c.ok(sp+".memory") && c.doc.has(sp+".memory") {
		switch m, err := ParseMemory(s.Memory); {
		case err != nil:
			c.errf(sp+".memory", "%v", err)
		case m < MinMemory:
			hint := "leave memory out for no limit"
			if strings.Trim(s.Memory, "0123456789") == "" && m > 0 {
				hint = "a bare number is bytes; write " + s.Memory + "m for MiB"
			}
			c.errf(sp+".memory", "want at least 6m (Docker's minimum), got %s (%s)", quote(s.Memory), hint)
		}
	}
	if hasPort {
		c.checkHealth(sp+".health", s.Health)
	}
	if c.ok(sp+".drain") && s.Drain.D() < 0 {
		c.errf(sp+".drain", "want a duration of 0s (no drain) or more such as \"30s\", got %s", s.Drain.D())
	}
	c.checkSessions(sp, s)
	c.checkDeploy(sp, s, hasPort)
	c.checkSmoke(sp, s)
	if s.Route53 != nil && c.ok(sp+".route53.healthCheckId") {
		switch {
		case s.Listen == "":
			c.errf(sp+".route53", "needs listen: the health check probes the service's public nginx address")
		case !healthCheckID.MatchString(s.Route53.HealthCheckID):
			c.errf(sp+".route53.healthCheckId", "want a Route 53 health check id such as \"abcdef12-3456-7890-abcd-ef1234567890\", got %s", quote(s.Route53.HealthCheckID))
		}
	}
}

func (c *checker) checkDeploy(sp string, s Service, hasPort bool) {
	dp := sp + ".deploy"
	if !hasPort {
		for _, f := range []string{"strategy", "bake", "maxErrorRate", "steps", "stepPause", "maxLatency", "latencyPercentile", "minRequests"} {
			if c.doc.has(dp + "." + f) {
				c.errf(dp+"."+f, "needs containerPort: a worker gets no traffic to move or watch")
			}
		}
		return
	}
	d := s.Deploy
	if c.ok(dp+".strategy") && d.Strategy != BlueGreen && d.Strategy != Canary {
		c.errf(dp+".strategy", "want %q or %q, got %s", BlueGreen, Canary, quote(d.Strategy))
	}
	if c.ok(dp+".bake") && d.Bake.D() < 0 {
		c.errf(dp+".bake", "want a duration of 0 or more such as \"5m\", got %s", d.Bake.D())
	}
	if c.ok(dp+".stepPause") && d.StepPause.D() <= 0 {
		c.errf(dp+".stepPause", "want a duration greater than 0 such as \"1m\", got %s", d.StepPause.D())
	}
	c.checkGates(dp, d)
	if c.ok(dp + ".maxErrorRate") {
		if _, err := ParseRate(d.MaxErrorRate); err != nil {
			c.errf(dp+".maxErrorRate", "%v", err)
		}
	}
	if c.ok(dp+".steps") && c.doc.has(dp+".steps") {
		if d.Strategy != Canary {
			c.errf(dp+".steps", "only for strategy %q; set deploy.strategy: canary or leave steps out", Canary)
			return
		}
		prev := 0
		for i, p := range d.Steps {
			if p <= prev || p > 100 {
				c.errf(fmt.Sprintf("%s.steps[%d]", dp, i), "want increasing percentages from 1 to 100 such as [10, 50, 100], got %d", p)
				return
			}
			prev = p
		}
		if prev != 100 {
			c.errf(dp+".steps", "want the last step to be 100 (all traffic), got %v", d.Steps)
		}
	}
	if d.Strategy == Canary && s.Listen == "" && c.ok(sp+".listen") {
		c.errf(dp+".strategy", "canary needs listen: weights are set in the service's own nginx server block")
	}
}

func (c *checker) checkSmoke(sp string, s Service) {
	for i, sm := range s.Smoke {
		p := fmt.Sprintf("%s.smoke[%d]", sp, i)
		if s.Listen == "" {
			c.errf(p, "needs listen: smoke checks run after the switch of the service's public nginx address")
			continue
		}
		if len(sm.Exec) > 0 {
			if sm.Path != "" || sm.Status != 0 {
				c.errf(p, "want either path (a request through nginx) or exec (a command in the new container), not both")
			}
			if strings.TrimSpace(sm.Exec[0]) == "" {
				c.errf(p+".exec[0]", "want the program to run, such as \"/app/server\", got an empty string")
			}
			continue
		}
		if c.ok(p+".path") && sm.Path == "" {
			c.errf(p, "want path (a URL path such as \"/health\") or exec (a command such as [\"/app/server\", \"selftest\"])")
			continue
		}
		if c.ok(p+".path") && (!strings.HasPrefix(sm.Path, "/") || strings.ContainsAny(sm.Path, " \t\r\n")) {
			c.errf(p+".path", "want a URL path starting with '/' such as \"/health\", got %s", quote(sm.Path))
		}
		if c.ok(p+".status") && (sm.Status < 100 || sm.Status > 599) {
			c.errf(p+".status", "want an HTTP status code 100-599 such as 200, got %d", sm.Status)
		}
	}
}

func (c *checker) checkNotify(ns []Notify) {
	known := map[EventName]bool{}
	names := make([]string, len(Events))
	for i, e := range Events {
		known[e] = true
		names[i] = string(e)
	}
	for i, n := range ns {
		p := fmt.Sprintf("notify[%d]", i)
		if n.Format == "email" {
			c.checkEmail(p, n)
		} else if len(n.To) > 0 || n.From != "" {
			c.errf(p, "from and to are for format email, not %s", quote(n.Format))
		}
		if n.Format != "email" && c.ok(p+".url") {
			if _, err := ParseSecretRef(n.URL); err != nil && !strings.HasPrefix(n.URL, "http://") && !strings.HasPrefix(n.URL, "https://") {
				// The URL may hold a token: never echo it.
				c.errf(p+".url", "want an http(s) URL or a secret reference (env:VAR, file:/path, ssm:/path, secretsmanager:NAME)")
			}
		}
		if c.ok(p+".format") && n.Format != "json" && n.Format != "slack" && n.Format != "email" {
			c.errf(p+".format", "want \"json\", \"slack\" or \"email\", got %s", quote(n.Format))
		}
		for j, e := range n.Events {
			if !known[e] {
				c.errf(fmt.Sprintf("%s.events[%d]", p, j), "want one of %s, got %s", strings.Join(names, ", "), quote(string(e)))
			}
		}
	}
}

// emailAddress is what notify accepts as an email address: no display
// name, one @, no spaces.
var emailAddress = lazyre.New(`^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$`)

// checkEmail checks a notify receiver of format email.
func (c *checker) checkEmail(p string, n Notify) {
	if n.URL != "" {
		c.errf(p+".url", "format email sends through Amazon SES and takes no url; set from and to")
	}
	if c.ok(p+".from") && !emailAddress.MatchString(n.From) {
		c.errf(p+".from", "required for format email; want the sender address, an identity verified in SES, such as \"deploys@example.com\", got %s", quote(n.From))
	}
	if len(n.To) == 0 {
		c.errf(p+".to", "required for format email; want at least one recipient address")
	}
	if len(n.To) > 50 {
		c.errf(p+".to", "SES takes at most 50 recipients per message, got %d", len(n.To))
	}
	for j, to := range n.To {
		if !emailAddress.MatchString(to) {
			c.errf(fmt.Sprintf("%s.to[%d]", p, j), "want an email address such as \"ops@example.com\", got %s", quote(to))
		}
	}
}

func (c *checker) checkImage(p, image string) {
	if !c.ok(p) {
		return
	}
	if image == "" {
		c.errf(p, "required; want an image reference such as \"ghcr.io/org/app:v1.2.3\"")
		return
	}
	// An unpinned tag ("app", "app:latest") is allowed, as Docker allows it:
	// the planner compares image IDs, so a tag that moved is still a change.
	if _, err := ParseImageRef(image); err != nil {
		c.errf(p, "want an image reference such as \"ghcr.io/org/app:v1.2.3\" or \"ghcr.io/org/app@sha256:<64 hex>\", got %s: %v", quote(image), err)
	}
}

func (c *checker) checkCommand(p string, cmd []string) {
	if !c.ok(p) {
		return
	}
	if c.doc.has(p) && len(cmd) == 0 {
		c.errf(p, "empty list; leave command out to use the image's own")
	}
	for i, a := range cmd {
		if ip := fmt.Sprintf("%s[%d]", p, i); a == "" && c.ok(ip) {
			c.errf(ip, "empty argument; want a non-empty string")
		}
	}
}

var serverNameRE = lazyre.New(`^(?:\*\.)?(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*(?:\.\*)?$`)

func (c *checker) checkListen(sp string, s Service) {
	lp, np, tp := sp+".listen", sp+".serverName", sp+".tls"
	if c.ok(lp) && c.doc.has(lp) {
		if l, err := ParseListen(s.Listen); err != nil {
			c.errf(lp, "%v", err)
		} else if l.SSL() && s.TLS == nil && c.ok(tp) {
			c.errf(lp, "has ssl but the service has no tls; add tls: {certificate: /path/fullchain.pem, key: /path/privkey.pem}")
		}
	}
	if c.ok(np) && c.doc.has(np) {
		names := strings.Fields(s.ServerName)
		if len(names) == 0 {
			c.errf(np, "empty; want a host name such as \"api.example.com\", or leave serverName out")
		}
		for _, n := range names {
			if n != "_" && !serverNameRE.MatchString(strings.ToLower(n)) {
				c.errf(np, "want host names separated by spaces, such as \"api.example.com\" or \"*.example.com\", got %s", quote(n))
			}
		}
		if !c.doc.has(lp) && c.ok(lp) && c.doc.has(sp+".containerPort") {
			c.errf(np, "needs listen: without it nginx gets only an upstream for this service, no server block to name")
		}
	}
	if s.TLS != nil && c.ok(tp) {
		for _, f := range []struct{ path, v, ex string }{
			{tp + ".certificate", s.TLS.Certificate, "/etc/letsencrypt/live/NAME/fullchain.pem"},
			{tp + ".key", s.TLS.Key, "/etc/letsencrypt/live/NAME/privkey.pem"},
		} {
			switch {
			case !c.ok(f.path):
			case f.v == "":
				c.errf(f.path, "required; want an absolute path on the host such as %q", f.ex)
			case !absClean(f.v) || strings.ContainsAny(f.v, nginxUnsafe):
				c.errf(f.path, "want a clean absolute path on the host such as %q, got %s", f.ex, quote(f.v))
			}
		}
		if c.ok(lp) && c.doc.has(sp+".containerPort") {
			// A listen with a bad parameter is reported above; whether
			// ssl is missing is still known from the address on.
			l, addrOK, _ := scanListen(s.Listen)
			switch {
			case !c.doc.has(lp):
				c.errf(tp, "needs listen with ssl, such as \"443 ssl\"")
			case addrOK && !l.SSL():
				c.errf(tp, "is set but listen %s has no ssl parameter; write \"443 ssl\" or remove tls", quote(s.Listen))
			}
		}
	}
}

// checkSites reports two services nginx would serve on the same address
// under the same name (no name counts as the same name).
func (c *checker) checkSites(e *Env) {
	seen := map[[2]string]string{}
	for _, name := range SortedKeys(e.Services) {
		s := e.Services[name]
		sp := "services." + name
		if !c.doc.has(sp+".listen") || !c.ok(sp+".listen", sp+".serverName") {
			continue
		}
		l, addrOK, _ := scanListen(s.Listen)
		if !addrOK {
			continue
		}
		addr := l.addrKey()
		names := strings.Fields(strings.ToLower(s.ServerName))
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			k := [2]string{addr, n}
			if other, dup := seen[k]; dup {
				what := "no serverName"
				if n != "" {
					what = "serverName " + quote(n)
				}
				c.errf(sp+".listen", "services %s and %s both listen on %s with %s; nginx would send this traffic to one of them only; give each its own serverName or listen", other, name, quote(s.Listen), what)
				continue
			}
			seen[k] = name
		}
	}
}

func (c *checker) checkVars(sp string, s Service) {
	for _, k := range SortedKeys(s.Env) {
		if !isEnvVarName(k) {
			c.errf(sp+".env."+k, "invalid variable name; want letters, digits and '_', not starting with a digit")
		}
	}
	var ef *envFile
	if c.ok(sp+".envFile") && c.doc.has(sp+".envFile") {
		ef = c.loadEnvFile(sp+".envFile", s.EnvFile)
	}
	for _, k := range SortedKeys(s.Secrets) {
		p := sp + ".secrets." + k
		if !isEnvVarName(k) {
			c.errf(p, "invalid variable name; want letters, digits and '_', not starting with a digit")
		}
		if _, dup := s.Env[k]; dup {
			c.errf(p, "also set in env; a variable is either plain or secret, remove one")
		}
		if ef != nil {
			if l, dup := ef.lines[k]; dup {
				c.errf(p, "also set in %s (line %d); a variable is either plain or secret, remove one", s.EnvFile, l)
			}
		}
		if c.ok(p) {
			if _, err := ParseSecretRef(s.Secrets[k]); err != nil {
				c.errf(p, "%v", err)
			}
		}
	}
}

// checkRepoPath checks a repository-relative path and that a file is there
// at this commit; it returns false when it reported a problem.
func (c *checker) checkRepoPath(p, v, example string) bool {
	if v == "" || !fs.ValidPath(v) || v == "." {
		c.errf(p, "want a path relative to the repository root such as %q (no leading '/', no '..'), got %s", example, quote(v))
		return false
	}
	fi, err := fs.Stat(c.fsys, v)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.errf(p, "%s not found at this commit", quote(v))
		return false
	case err != nil:
		c.errf(p, "%s: %v", quote(v), err)
		return false
	case fi.IsDir():
		c.errf(p, "%s is a directory at this commit; want a file", quote(v))
		return false
	default:
		// What Resolve (readFile) would refuse, validate refuses too.
		if why := fileProblem(fi); why != "" {
			c.errf(p, "%s %s", quote(v), why)
			return false
		}
	}
	return true
}

func (c *checker) loadEnvFile(p, name string) *envFile {
	if ef, done := c.envFiles[name]; done {
		return ef
	}
	var ef *envFile
	if c.checkRepoPath(p, name, "envs/"+c.envName+".env") {
		data, err := readFile(c.fsys, name)
		if err != nil {
			c.errf(p, "%s: %v", quote(name), err)
		} else {
			var errs []error
			ef, errs = parseEnvFile(name, data)
			c.errs = append(c.errs, errs...)
		}
	}
	c.envFiles[name] = ef
	return ef
}

func (c *checker) checkFiles(sp string, files []File) {
	targets := map[string]int{}
	for i, f := range files {
		fp := fmt.Sprintf("%s.files[%d]", sp, i)
		if !c.ok(fp) {
			continue
		}
		switch {
		case !c.ok(fp + ".source"):
		case f.Source == "":
			c.errf(fp+".source", "required; want a path in the repository such as \"templates/config.yaml\"")
		default:
			c.checkRepoPath(fp+".source", f.Source, "templates/config.yaml")
		}
		switch {
		case !c.ok(fp + ".target"):
		case f.Target == "":
			c.errf(fp+".target", "required; want an absolute path in the container such as \"/app/configs/config.yaml\"")
		case strings.IndexFunc(f.Target, unicode.IsControl) >= 0:
			c.errf(fp+".target", "holds a control character (a newline, say), which no file name in a container needs: got %s", quote(f.Target))
		case !absClean(f.Target) || f.Target == "/":
			c.errf(fp+".target", "want a clean absolute path in the container such as \"/app/configs/config.yaml\", got %s", quote(f.Target))
		default:
			if j, dup := targets[f.Target]; dup {
				c.errf(fp+".target", "%s is also the target of files[%d]; each file needs its own target", quote(f.Target), j)
			} else {
				targets[f.Target] = i
			}
		}
	}
}

func (c *checker) checkHealth(hp string, h Health) {
	if c.ok(hp+".path") && (!strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n")) {
		c.errf(hp+".path", "want a URL path starting with '/' such as %q, got %s", DefaultHealthPath, quote(h.Path))
	}
	durs := []struct {
		name string
		d    *Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}, {"startTimeout", h.StartTimeout}}
	positive := true
	for _, d := range durs {
		if p := hp + "." + d.name; c.ok(p) && d.d.D() <= 0 {
			c.errf(p, "want a duration greater than 0 such as \"2s\", got %s", d.d.D())
			positive = false
		}
	}
	for _, name := range []string{"healthyThreshold", "unhealthyThreshold"} {
		if v, ok := c.doc.rawInt(hp + "." + name); ok && v < 1 {
			c.errf(hp+"."+name, "want an integer of at least 1, got %d", v)
			positive = false
		}
	}
	if !positive || !c.ok(hp+".interval", hp+".timeout", hp+".startTimeout", hp+".healthyThreshold") {
		return
	}
	iv, st := h.Interval.D(), h.StartTimeout.D()
	if need := iv * time.Duration(h.HealthyThreshold); st < need {
		c.errf(hp+".startTimeout", "%s is too short for %d passing checks %s apart; want at least %s", st, h.HealthyThreshold, iv, need)
	}
}

// envFile is a parsed env file: its variables and the line of each.
type envFile struct {
	name  string
	vars  map[string]string
	lines map[string]int
}

// parseEnvFile parses KEY=VALUE lines. Blank lines and lines starting with
// '#' are skipped; "export " before the key is allowed; a value may be
// wrapped in single or double quotes, which are removed (in double quotes,
// \" \\ and \n are escapes). The rest of the line is the value as written:
// there are no inline comments and no variable expansion. Errors never show
// a value.
func parseEnvFile(name string, data []byte) (*envFile, []error) {
	ef := &envFile{name: name, vars: map[string]string{}, lines: map[string]int{}}
	var errs []error
	bad := func(line int, field, format string, args ...any) {
		errs = append(errs, &FieldError{File: name, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimLeft(rest, " \t")
		}
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok {
			bad(n, "", "want KEY=VALUE, found no '='")
			continue
		}
		if !isEnvVarName(key) {
			bad(n, "", "invalid variable name %s; want letters, digits and '_', not starting with a digit", quote(key))
			continue
		}
		v, err := unquoteEnv(strings.TrimSpace(val))
		if err != nil {
			bad(n, key, "%v", err)
			continue
		}
		if first, dup := ef.lines[key]; dup {
			bad(n, key, "set twice (first at line %d); keep one", first)
			continue
		}
		ef.vars[key], ef.lines[key] = v, n
	}
	return ef, errs
}

func unquoteEnv(v string) (string, error) {
	if v == "" {
		return v, nil
	}
	q := v[0]
	if q != '"' && q != '\'' {
		return v, nil
	}
	if len(v) < 2 || v[len(v)-1] != q {
		return "", fmt.Errorf("unterminated %c quote; want the value to end with %c", q, q)
	}
	inner := v[1 : len(v)-1]
	if q == '\'' {
		return inner, nil
	}
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		ch := inner[i]
		if ch == '"' {
			return "", errors.New("unescaped \" inside double quotes; write \\\"")
		}
		if ch != '\\' || i+1 == len(inner) {
			b.WriteByte(ch)
			continue
		}
		i++
		switch inner[i] {
		case 'n':
			b.WriteByte('\n')
		case '"', '\\':
			b.WriteByte(inner[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(inner[i])
		}
	}
	return b.String(), nil
}

// SecretRefs returns the parsed secret references of every service, of the
// migrations job and of notify URLs, sorted by their written form and
// without duplicates: what the secrets backend must resolve before Resolve.
// e must come from Load, which checked every reference; a notify URL that
// is not a reference is left out.
func (e *Env) SecretRefs() []SecretRef {
	set := map[SecretRef]bool{}
	add := func(v string) {
		if ref, err := ParseSecretRef(v); err == nil {
			set[ref] = true
		}
	}
	for _, s := range e.Services {
		for _, v := range s.Secrets {
			add(v)
		}
	}
	if e.Migrations != nil {
		for _, v := range e.Migrations.Secrets {
			add(v)
		}
	}
	for _, n := range e.Notify {
		add(n.URL)
	}
	refs := slices.Collect(maps.Keys(set))
	slices.SortFunc(refs, func(a, b SecretRef) int { return strings.Compare(a.String(), b.String()) })
	return refs
}

// awsRegion is the shape of an AWS region name: us-east-1, us-gov-west-1,
// ap-southeast-2.
var awsRegion = lazyre.New(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// awsProfile is the shape of a profile name of the shared config files.
var awsProfile = lazyre.New(`^[A-Za-z0-9_.+=@-]{1,64}$`)

func (c *checker) checkAWS(a *AWS) {
	if a == nil {
		return
	}
	if c.ok("aws.region") && a.Region != "" && !awsRegion.MatchString(a.Region) {
		c.errf("aws.region", "want an AWS region such as \"us-east-1\", got %s", quote(a.Region))
	}
	if c.ok("aws.profile") && a.Profile != "" && !awsProfile.MatchString(a.Profile) {
		c.errf("aws.profile", "want a profile name of ~/.aws/config (letters, digits, '-', '_', '.'), got %s", quote(a.Profile))
	}
}

// sessionHeader is an HTTP header name nginx can match as $http_<name>.
var sessionHeader = lazyre.New(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)

// checkSessions checks drainIdle and the session pinning of s.
func (c *checker) checkSessions(sp string, s Service) {
	if c.ok(sp+".drainIdle") && s.DrainIdle.D() < 0 {
		c.errf(sp+".drainIdle", "want a duration of 0s (wait the whole drain) or more such as \"5s\", got %s", s.DrainIdle.D())
	}
	if !c.ok(sp+".sessionHeader") || s.SessionHeader == "" {
		return
	}
	switch {
	case s.Listen == "" && c.doc.has(sp+".sessionHeader"):
		c.errf(sp+".sessionHeader", "needs listen: sessions are pinned by the service's nginx server block")
	case !sessionHeader.MatchString(s.SessionHeader):
		c.errf(sp+".sessionHeader", "want an HTTP header name of letters, digits and '-' such as %q, got %s", DefaultSessionHeader, quote(s.SessionHeader))
	}
}
