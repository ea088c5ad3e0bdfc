package state

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
)

// Resolve builds the Desired state of e at commit: services sorted by name,
// each with its env file read from fsys and overlaid by its env, its secrets
// looked up in secretValues (keyed by reference, as SecretRefs lists them),
// its files read from fsys and sorted by target, and its memory in bytes.
// e must come from Load on the same fsys; Resolve does not change it and the
// Desired shares no maps or slices with it.
//
// A reference without a value in secretValues is an error naming the service
// and the variable, never a value. All problems are returned at once, joined,
// each a *FieldError.
func Resolve(e *Env, fsys fs.FS, commit string, secretValues map[string]string) (*Desired, error) {
	file := EnvPath(e.Environment)
	d := &Desired{Env: e.Environment, Commit: commit, Nginx: e.Nginx, Network: e.Network}
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
		d.Services = append(d.Services, DesiredService{Name: name, Config: cloneService(s), Spec: spec})
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
		}
	}
	errs = append(errs, rs.errs...)
	for i, n := range e.Notify {
		url := n.URL
		if IsSecretRef(url) {
			v, ok := secretValues[url]
			if !ok {
				errs = append(errs, &FieldError{File: file, Field: fmt.Sprintf("notify[%d].url", i), Msg: "secret reference has no value"})
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

// resolver reads what services and the migrations job share: env files,
// secrets and files. Each env file is read once.
type resolver struct {
	file         string
	fsys         fs.FS
	secretValues map[string]string
	envFiles     map[string]*envFile
	fail         func(f, field, format string, args ...any)
	errs         []error // the env files' own parse errors
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
			data, err := readFile(rs.fsys, envFileName)
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
			v, ok := rs.secretValues[secrets[k]]
			if !ok {
				rs.fail(rs.file, sp+".secrets."+k, "no value was resolved for secret %s of %s", k, who)
				continue
			}
			sec[k] = v
		}
	}
	var fc []FileContent
	for i, f := range files {
		data, err := readFile(rs.fsys, f.Source)
		if err != nil {
			rs.fail(rs.file, fmt.Sprintf("%s.files[%d].source", sp, i), "%s: %v", quote(f.Source), err)
			continue
		}
		fc = append(fc, FileContent{Target: f.Target, Content: data})
	}
	sort.Slice(fc, func(i, j int) bool { return fc[i].Target < fc[j].Target })
	return out, sec, fc
}

// cloneService copies s deeply enough that the Desired shares nothing
// mutable with the Env.
func cloneService(s Service) Service {
	s.Command = slices.Clone(s.Command)
	s.Env = maps.Clone(s.Env)
	s.Secrets = maps.Clone(s.Secrets)
	s.Files = slices.Clone(s.Files)
	if s.TLS != nil {
		t := *s.TLS
		s.TLS = &t
	}
	s.Health.Interval = cloneDuration(s.Health.Interval)
	s.Health.Timeout = cloneDuration(s.Health.Timeout)
	s.Health.StartTimeout = cloneDuration(s.Health.StartTimeout)
	s.Drain = cloneDuration(s.Drain)
	s.Deploy.Bake = cloneDuration(s.Deploy.Bake)
	s.Deploy.Steps = slices.Clone(s.Deploy.Steps)
	s.Deploy.StepPause = cloneDuration(s.Deploy.StepPause)
	s.Smoke = slices.Clone(s.Smoke)
	for i := range s.Smoke {
		s.Smoke[i].Exec = slices.Clone(s.Smoke[i].Exec)
	}
	if s.Route53 != nil {
		r := *s.Route53
		s.Route53 = &r
	}
	return s
}

func cloneDuration(d *Duration) *Duration {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}
