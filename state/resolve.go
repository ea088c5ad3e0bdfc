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
	d := &Desired{Env: e.Environment, Commit: commit, Nginx: e.Nginx}
	var errs []error
	fail := func(f, field, format string, args ...any) {
		errs = append(errs, &FieldError{File: f, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	envFiles := map[string]*envFile{}

	for _, name := range SortedKeys(e.Services) {
		s := e.Services[name]
		sp := "services." + name
		spec := Spec{
			Image:         s.Image,
			Command:       slices.Clone(s.Command),
			Env:           map[string]string{},
			ContainerPort: s.ContainerPort,
		}
		if s.EnvFile != "" {
			ef, ok := envFiles[s.EnvFile]
			if !ok {
				data, err := readFile(fsys, s.EnvFile)
				if err != nil {
					fail(file, sp+".envFile", "%s: %v", quote(s.EnvFile), err)
				} else {
					var perrs []error
					ef, perrs = parseEnvFile(s.EnvFile, data)
					errs = append(errs, perrs...)
				}
				envFiles[s.EnvFile] = ef
			}
			if ef != nil {
				maps.Copy(spec.Env, ef.vars)
			}
		}
		maps.Copy(spec.Env, s.Env)
		if len(spec.Env) == 0 {
			spec.Env = nil
		}
		if len(s.Secrets) > 0 {
			spec.Secrets = make(map[string]string, len(s.Secrets))
			for _, k := range SortedKeys(s.Secrets) {
				v, ok := secretValues[s.Secrets[k]]
				if !ok {
					fail(file, sp+".secrets."+k, "no value was resolved for secret %s of service %s", k, name)
					continue
				}
				spec.Secrets[k] = v
			}
		}
		for i, f := range s.Files {
			data, err := readFile(fsys, f.Source)
			if err != nil {
				fail(file, fmt.Sprintf("%s.files[%d].source", sp, i), "%s: %v", quote(f.Source), err)
				continue
			}
			spec.Files = append(spec.Files, FileContent{Target: f.Target, Content: data})
		}
		sort.Slice(spec.Files, func(i, j int) bool { return spec.Files[i].Target < spec.Files[j].Target })
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
		d.Migrations = &DesiredJob{Spec: Spec{Image: m.Image, Command: slices.Clone(m.Command)}}
	}
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
		d.Notify = append(d.Notify, Notify{URL: url, Format: n.Format, Events: slices.Clone(n.Events)})
	}
	if len(errs) > 0 {
		return nil, joinSorted(file, errs)
	}
	return d, nil
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
	return s
}

func cloneDuration(d *Duration) *Duration {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}
