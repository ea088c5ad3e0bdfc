package state

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden from the current output")

// repoFS returns the files of testdata/repo (an env file and templates that
// the cases reference) plus the env file content at envs/<env>.yaml.
func repoFS(t testing.TB, env string, content []byte) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	addDir(t, m, "testdata/repo")
	m[EnvPath(env)] = &fstest.MapFile{Data: content}
	return m
}

// addDir copies the files under dir into m, keyed by their path below dir.
func addDir(t testing.TB, m fstest.MapFS, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// errorList splits a joined error into its parts.
func errorList(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestLoadValid(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Load(repoFS(t, "test", data), "test")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	d := func(v time.Duration) *Duration { return &Duration{v} }
	deploy := Deploy{Strategy: BlueGreen, Bake: d(0), MaxErrorRate: DefaultMaxErrorRate, StepPause: d(DefaultStepPause), LatencyPercentile: DefaultLatencyPercentile, MinRequests: DefaultMinRequests}
	want := &Env{
		Environment: "test", Network: "test", KeepImages: DefaultKeepImages, Release: ReleasePerService,
		Nginx: Nginx{ConfDir: "/etc/nginx/sites", Test: DefaultTest, Reload: DefaultReload, LogDir: DefaultLogDir},
		Services: map[string]Service{
			"api": {
				Image:         "ghcr.io/example/api:v1.2.3",
				ContainerPort: 8080,
				Listen:        "443 ssl",
				ServerName:    "api.example.com",
				TLS:           &TLS{Certificate: "/etc/ssl/api.pem", Key: "/etc/ssl/api.key"},
				Command:       []string{"/app/api", "serve"},
				EnvFile:       "envs/test.env",
				Env:           map[string]string{"LOG_LEVEL": "info", "VERSION": "1.10", "FEATURE": "yes"},
				Secrets:       map[string]string{"DB_PASSWORD": "ssm:/test/db_password", "TOKEN": "secretsmanager:test/tokens#api"},
				Files:         []File{{Source: "templates/worker.yaml", Target: "/etc/z.yaml"}, {Source: "templates/app.yaml", Target: "/app/config.yaml"}},
				Memory:        "512m",
				Health: Health{
					Path: DefaultHealthPath, Interval: d(5 * time.Second), Timeout: d(DefaultTimeout),
					HealthyThreshold: 3, UnhealthyThreshold: DefaultUnhealthyThreshold, StartTimeout: d(DefaultStartTimeout),
				},
				Drain:     d(10 * time.Second),
				DrainIdle: d(DefaultDrainIdle),
				Deploy:    deploy,
			},
			"worker": {
				Image:   "registry.local:5000/example/worker@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Secrets: map[string]string{"DB_PASSWORD": "ssm:/test/db_password"},
				Health: Health{
					Path: DefaultHealthPath, Interval: d(DefaultInterval), Timeout: d(DefaultTimeout),
					HealthyThreshold: DefaultHealthyThreshold, UnhealthyThreshold: DefaultUnhealthyThreshold, StartTimeout: d(DefaultStartTimeout),
				},
				Drain:     d(DefaultDrain),
				DrainIdle: d(DefaultDrainIdle),
				Deploy:    deploy,
			},
		},
		Migrations: &Migrations{Image: "ghcr.io/example/api:v1.2.3", Command: []string{"/app/migrate", "up"},
			Network: DefaultMigrationsNetwork, Timeout: d(DefaultMigrationsTimeout)},
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", e, want)
	}

	// Defaults are already applied: applying them again changes nothing.
	again := *e
	again.Services = map[string]Service{}
	for k, v := range e.Services {
		again.Services[k] = v
	}
	again.Default()
	if !reflect.DeepEqual(&again, want) {
		t.Errorf("Default is not idempotent on a loaded env")
	}

	if got, want := e.SecretRefs(), []SecretRef{{Scheme: SchemeSecretsManager, Name: "test/tokens", Key: "api"}, {Scheme: SchemeSSM, Name: "/test/db_password"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("SecretRefs = %q, want %q", got, want)
	}
}

// TestLoadBad loads every testdata/bad/NAME.yaml and compares the errors,
// one line each, with NAME.golden. The case is loaded as envs/test.yaml,
// or as envs/X.yaml when its first line is "# env: X"; the files of
// testdata/repo and of testdata/bad/NAME.files/ are beside it.
func TestLoadBad(t *testing.T) {
	cases, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Errorf("only %d bad cases; want at least 40", len(cases))
	}
	multi := 0
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			env := "test"
			if first, _, _ := strings.Cut(string(data), "\n"); strings.HasPrefix(first, "# env: ") {
				env = strings.TrimSpace(strings.TrimPrefix(first, "# env: "))
			}
			fsys := repoFS(t, env, data)
			if extra := strings.TrimSuffix(path, ".yaml") + ".files"; dirExists(extra) {
				addDir(t, fsys, extra)
			}
			e, err := Load(fsys, env)
			if err == nil {
				t.Fatalf("Load succeeded; want errors")
			}
			if e != nil {
				t.Errorf("Load returned an Env with errors")
			}
			errs := errorList(err)
			if len(errs) > 1 {
				multi++
			}
			for _, e := range errs {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("error %q is a %T, want a *FieldError", e, e)
				}
			}
			got := err.Error() + "\n"
			// Checked before -update, so that a leak fails the run that would
			// write it into a golden file.
			if strings.Contains(got, "hunter2") {
				t.Errorf("a secret value reached an error message")
			}
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
	if multi < 5 {
		t.Errorf("only %d cases report several errors at once; want at least 5", multi)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func TestLoadFileProblems(t *testing.T) {
	fsys := fstest.MapFS{
		"envs/dir.yaml/x": &fstest.MapFile{Data: []byte("x")},
	}
	for _, tc := range []struct {
		name, env, want string
	}{
		{"missing", "prod", "envs/prod.yaml: not found at this commit"},
		{"directory", "dir", "envs/dir.yaml: is a directory at this commit; want a file"},
		{"bad name", "../etc", `envs/../etc.yaml: invalid environment name "../etc": want a lowercase DNS label (a-z, 0-9 and '-', starting with a letter, not ending with '-', at most 40 characters)`},
		{"reserved name", "prod-blue", `envs/prod-blue.yaml: invalid environment name "prod-blue": want a lowercase DNS label (a-z, 0-9 and '-', starting with a letter, not ending with '-', at most 40 characters)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(fsys, tc.env)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Load = %v, want %s", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error is a %T, want a *FieldError", err)
			}
		})
	}
}

func TestFieldErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  FieldError
		want string
	}{
		{FieldError{"envs/prod.yaml", 14, "services.api.containerPort", `want an integer 1-65535, got "eighty"`}, `envs/prod.yaml:14: services.api.containerPort: want an integer 1-65535, got "eighty"`},
		{FieldError{"envs/prod.yaml", 3, "", "invalid YAML: x"}, "envs/prod.yaml:3: invalid YAML: x"},
		{FieldError{"envs/prod.yaml", 0, "", "not found at this commit"}, "envs/prod.yaml: not found at this commit"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// TestRepoEnvs loads the repository's own environments, as committed.
func TestRepoEnvs(t *testing.T) {
	fsys := os.DirFS("..")
	for _, env := range []string{"dev", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			e, err := Load(fsys, env)
			if err != nil {
				t.Fatalf("Load:\n%v", err)
			}
			if _, ok := e.Services["mcp-server"]; !ok {
				t.Errorf("no mcp-server service")
			}
			values := map[SecretRef]string{}
			for _, ref := range e.SecretRefs() {
				if ref.Scheme != SchemeSSM || !strings.HasPrefix(ref.Name, "/devops-mcp/"+env+"/") {
					t.Errorf("secret %s is outside /devops-mcp/%s/", ref, env)
				}
				values[ref] = "x"
			}
			d, err := Resolve(e, fsys, "HEAD", values)
			if err != nil {
				t.Fatalf("Resolve:\n%v", err)
			}
			var total int64
			for _, s := range d.Services {
				total += s.Spec.Memory
				if s.Spec.Memory == 0 {
					t.Errorf("%s has no memory limit", s.Name)
				}
			}
			var most int64
			for _, s := range d.Services {
				most = max(most, s.Spec.Memory)
			}
			// Two colors of the largest service beside the others must leave
			// at least 512 MiB of the 2 GiB host for the OS and nginx.
			if peak := total + most; peak > (2048-512)<<20 {
				t.Errorf("peak memory %d MiB leaves less than 512 MiB of 2 GiB", peak>>20)
			}
		})
	}
}
