package state

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Resolve builds the Desired state of e at commit: services sorted by name,
// each with its env file read from fsys and overlaid by its env, its secrets
// looked up in secretValues (keyed by the references SecretRefs returns),
// its files read from fsys and sorted by target, its memory in bytes, its
// listen and maxErrorRate parsed and its durations as time.Duration.
// e must come from Load on the same fsys; Resolve does not change it and the
// Desired shares no maps or slices with it.
//
// A reference without a value in secretValues is an error naming the service
// and the variable, never a value. All problems are returned at once, joined,
// each a *FieldError.
func Resolve(e *Env, fsys fs.FS, commit string, secretValues map[SecretRef]string) (*Desired, error) {
	file := EnvPath(e.Environment)
	d := &Desired{Env: e.Environment, Commit: commit, Nginx: e.Nginx, Network: e.Network, Settings: Settings(e), Release: e.Release,
		Records: e.RecordSets(), SiteChecks: e.SiteHealthChecks()}
	if f := e.Fleet; f != nil && f.After != "" {
		d.Settings = append(d.Settings, afterSettings(fsys, f.After)...)
		sort.Slice(d.Settings, func(i, j int) bool { return d.Settings[i].Path < d.Settings[j].Path })
	}
	var errs []error
	fail := func(f, field, format string, args ...any) {
		errs = append(errs, &FieldError{File: f, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	rs := &resolver{file: file, fsys: fsys, secretValues: secretValues, envFiles: map[string]*envFile{}, fail: fail}

	for _, name := range SortedKeys(e.Services) {
		s := e.Services[name]
		sp := "services." + name
		spec := Spec{
			Image:         s.Image,
			Command:       slices.Clone(s.Command),
			ContainerPort: s.ContainerPort,
		}
		spec.Env, spec.Secrets, spec.Files = rs.vars(sp, "service "+name, s.EnvFile, s.Env, s.Secrets, s.Files)
		if s.Memory != "" {
			m, err := ParseMemory(s.Memory)
			if err != nil {
				fail(file, sp+".memory", "%v", err)
			}
			spec.Memory = m
		}
		ds := serviceParams(s)
		ds.Name, ds.Spec = name, spec
		if s.Listen != "" {
			if l, err := ParseListen(s.Listen); err != nil {
				fail(file, sp+".listen", "%v", err)
			} else {
				ds.Listen = &l
			}
		}
		rate, err := ParseRate(s.Deploy.MaxErrorRate)
		if err != nil {
			fail(file, sp+".deploy.maxErrorRate", "%v", err)
		}
		ds.Deploy.MaxErrorRate = rate
		d.Services = append(d.Services, ds)
	}
	if m := e.Migrations; m != nil {
		spec := Spec{Image: m.Image, Command: slices.Clone(m.Command)}
		spec.Env, spec.Secrets, spec.Files = rs.vars("migrations", "the migrations job", m.EnvFile, m.Env, m.Secrets, m.Files)
		d.Migrations = &DesiredJob{Spec: spec, Network: m.Network, Timeout: m.Timeout.D()}
		if m.Rollback != nil {
			d.Migrations.RollbackCommand = slices.Clone(m.Rollback.Command)
		}
		if m.DryRun != nil {
			d.Migrations.DryRunCommand = slices.Clone(m.DryRun.Command)
		}
		if m.Snapshot != nil {
			d.Migrations.SnapshotRDS = m.Snapshot.RDSInstance
			d.Migrations.SnapshotTimeout = m.Snapshot.Timeout.D()
		}
		d.Migrations.Irreversible = m.Irreversible
	}
	errs = append(errs, rs.errs...)
	for i, n := range e.Notify {
		url := n.URL
		if ref, err := ParseSecretRef(url); err == nil {
			v, ok := secretValues[ref]
			if !ok {
				errs = append(errs, &FieldError{File: file, Field: fmt.Sprintf("notify[%d].url", i), Msg: "secret reference has no value"})
				continue
			}
			if why := badValue(v); why != "" {
				errs = append(errs, &FieldError{File: file, Field: fmt.Sprintf("notify[%d].url", i), Msg: fmt.Sprintf("the value of %s %s: fix the secret (its value is not shown)", ref, why)})
				continue
			}
			url = v
		}
		d.Notify = append(d.Notify, Notify{URL: url, Format: n.Format, From: n.From, To: slices.Clone(n.To), Events: slices.Clone(n.Events)})
	}
	if len(errs) > 0 {
		return nil, joinSorted(file, errs)
	}
	return d, nil
}

// badValue says why a resolved secret value cannot go into a container's
// environment or a URL ("holds a NUL byte"); "" when it can. The engine
// would refuse it and quote it back in its error.
func badValue(v string) string {
	switch {
	case strings.IndexByte(v, 0) >= 0:
		return "holds a NUL byte"
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	}
	return ""
}

// resolver reads what services and the migrations job share: env files,
// secrets and files. Each env file is read once.
type resolver struct {
	file         string
	fsys         fs.FS
	secretValues map[SecretRef]string
	envFiles     map[string]*envFile
	fail         func(f, field, format string, args ...any)
	errs         []error // the env files' own parse errors
	total        int64   // bytes of files read so far (see MaxResolveBytes)
}

// MaxResolveBytes bounds the bytes of repository files one env resolves,
// every reference counted (a small env file can name one large file a
// thousand times through YAML anchors).
const MaxResolveBytes = 32 << 20

// read reads a repository file for the env, within MaxResolveBytes: the
// size is checked before the file is read.
func (rs *resolver) read(name string) ([]byte, error) {
	if fi, err := fs.Stat(rs.fsys, name); err == nil && rs.total+fi.Size() > MaxResolveBytes {
		return nil, fmt.Errorf("would take the files this env resolves over %d bytes (every reference counts); reference fewer or smaller files", MaxResolveBytes)
	}
	data, err := readFile(rs.fsys, name)
	rs.total += int64(len(data))
	if err == nil && rs.total > MaxResolveBytes {
		return nil, fmt.Errorf("takes the files this env resolves over %d bytes (every reference counts); reference fewer or smaller files", MaxResolveBytes)
	}
	return data, err
}

// vars returns the container environment (envFile overlaid by env), the
// secret values by variable and the files sorted by target, for the
// subject at path sp ("services.api", "migrations"); who names it in
// errors ("service api").
func (rs *resolver) vars(sp, who, envFileName string, env, secrets map[string]string, files []File) (map[string]string, map[string]string, []FileContent) {
	out := map[string]string{}
	if envFileName != "" {
		ef, ok := rs.envFiles[envFileName]
		if !ok {
			data, err := rs.read(envFileName)
			if err != nil {
				rs.fail(rs.file, sp+".envFile", "%s: %v", quote(envFileName), err)
			} else {
				var perrs []error
				ef, perrs = parseEnvFile(envFileName, data)
				rs.errs = append(rs.errs, perrs...)
			}
			rs.envFiles[envFileName] = ef
		}
		if ef != nil {
			maps.Copy(out, ef.vars)
		}
	}
	maps.Copy(out, env)
	if len(out) == 0 {
		out = nil
	}
	var sec map[string]string
	if len(secrets) > 0 {
		sec = make(map[string]string, len(secrets))
		for _, k := range SortedKeys(secrets) {
			// Load checked the reference: a bad one has no value either.
			ref, err := ParseSecretRef(secrets[k])
			v, ok := rs.secretValues[ref]
			if err != nil || !ok {
				rs.fail(rs.file, sp+".secrets."+k, "no value was resolved for secret %s of %s", k, who)
				continue
			}
			if why := badValue(v); why != "" {
				rs.fail(rs.file, sp+".secrets."+k, "the value of secret %s of %s (%s) %s: fix the secret (its value is not shown)", k, who, ref, why)
				continue
			}
			sec[k] = v
		}
	}
	var fc []FileContent
	for i, f := range files {
		data, err := rs.read(f.Source)
		if err != nil {
			rs.fail(rs.file, fmt.Sprintf("%s.files[%d].source", sp, i), "%s: %v", quote(f.Source), err)
			continue
		}
		fc = append(fc, FileContent{Target: f.Target, Content: data})
	}
	sort.Slice(fc, func(i, j int) bool { return fc[i].Target < fc[j].Target })
	return out, sec, fc
}

// serviceParams returns the settings of s that need no parsing, copied so
// that the Desired shares nothing mutable with the Env: everything of a
// DesiredService but its name, spec, listen and error rate.
func serviceParams(s Service) DesiredService {
	d := DesiredService{
		ServerName:    s.ServerName,
		Health:        s.healthParams(),
		Drain:         s.Drain.D(),
		DrainIdle:     s.DrainIdle.D(),
		SessionHeader: s.SessionHeader,
		Deploy: DeployParams{
			Strategy:  s.Deploy.Strategy,
			Bake:      s.Deploy.Bake.D(),
			Steps:     slices.Clone(s.Deploy.Steps),
			StepPause: s.Deploy.StepPause.D(),

			MaxLatency:        s.Deploy.MaxLatency.D(),
			LatencyPercentile: s.Deploy.LatencyPercentile,
			MinRequests:       s.Deploy.MinRequests,
		},
		Smoke:     slices.Clone(s.Smoke),
		DependsOn: resolveDependsOn(s.DependsOn),
	}
	for i := range d.Smoke {
		d.Smoke[i].Exec = slices.Clone(d.Smoke[i].Exec)
	}
	if s.TLS != nil {
		t := *s.TLS
		d.TLS = &t
	}
	if s.Route53 != nil {
		r := *s.Route53
		d.Route53 = &r
	}
	return d
}

// afterSettings are the settings by which this env's hosts reach the store
// of the region before them (fleet.after): that env's fleet.store,
// fleet.username and fleet.auth (a reference, hashed), as
// "fleet.after.store" and so on. This env's hosts send the password they
// resolve from that reference to that store, so a change of either in the
// other env's file is a change of this env's preview too. None when the
// file or its fleet is missing (validate refuses that).
func afterSettings(fsys fs.FS, env string) []Setting {
	file := EnvPath(env)
	data, err := readFile(fsys, file)
	if err != nil {
		return nil
	}
	pe, _, _ := decode(fsys, file, data)
	if pe == nil || pe.Fleet == nil {
		return nil
	}
	f := pe.Fleet
	var out []Setting
	for _, s := range Settings(&Env{Fleet: &Fleet{Store: f.Store, Auth: f.Auth, Username: f.Username}}) {
		s.Path = "fleet.after." + strings.TrimPrefix(s.Path, "fleet.")
		out = append(out, s)
	}
	return out
}
