package state

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// extendsFS returns testdata/extends (the example of docs/scale.md) with
// the files of extra added or replaced.
func extendsFS(t *testing.T, extra map[string]string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	addDir(t, m, "testdata/extends")
	for name, data := range extra {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return m
}

// TestExtendsDocExample loads the example of docs/scale.md and compares the
// merged env with a golden; the example files must stand in the page as
// they are in testdata, so that the page shows what is tested.
func TestExtendsDocExample(t *testing.T) {
	page, err := os.ReadFile("../docs/scale.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"prod-base.yaml", "prod-us-east-1.yaml"} {
		data, err := os.ReadFile("testdata/extends/envs/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(page), string(data)) {
			t.Errorf("docs/scale.md does not hold testdata/extends/envs/%s as it is", f)
		}
	}
	e, err := Load(extendsFS(t, nil), "prod-us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(e, "", "  ")
	got = append(got, '\n')
	golden := "testdata/extends/prod-us-east-1.golden.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("merged env:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}

func TestExtendsMergeRule(t *testing.T) {
	base := `environment: base
keepImages: 5
network: shared
services:
  api:
    image: ghcr.io/acme/api:v1
    containerPort: 8080
    command: ["/a", "b"]
    env: {A: "1", B: "2"}
    health: {path: /healthz, interval: 5s}
  worker:
    image: ghcr.io/acme/worker:v1
`
	for _, tc := range []struct {
		name, child string
		check       func(t *testing.T, e *Env)
	}{
		{"scalars of the child win", "keepImages: 2\n", func(t *testing.T, e *Env) {
			if e.KeepImages != 2 || e.Network != "shared" {
				t.Errorf("keepImages %d network %q, want 2 and shared", e.KeepImages, e.Network)
			}
		}},
		{"maps merge key by key", "services:\n  api:\n    env: {B: \"20\", C: \"3\"}\n", func(t *testing.T, e *Env) {
			got := e.Services["api"].Env
			if got["A"] != "1" || got["B"] != "20" || got["C"] != "3" || len(got) != 3 {
				t.Errorf("env %v, want A=1 B=20 C=3", got)
			}
		}},
		{"nested maps merge", "services:\n  api:\n    health: {interval: 1s}\n", func(t *testing.T, e *Env) {
			h := e.Services["api"].Health
			if h.Path != "/healthz" || h.Interval.D().String() != "1s" {
				t.Errorf("health %+v, want path /healthz, interval 1s", h)
			}
		}},
		{"lists replace", "services:\n  api:\n    command: [\"/c\"]\n", func(t *testing.T, e *Env) {
			if got := e.Services["api"].Command; len(got) != 1 || got[0] != "/c" {
				t.Errorf("command %v, want [/c]", got)
			}
		}},
		{"services merge by name", "services:\n  cron:\n    image: ghcr.io/acme/cron:v1\n  worker:\n    image: ghcr.io/acme/worker:v2\n", func(t *testing.T, e *Env) {
			if len(e.Services) != 3 || e.Services["worker"].Image != "ghcr.io/acme/worker:v2" || e.Services["api"].Image != "ghcr.io/acme/api:v1" {
				t.Errorf("services %v, want api (base), worker v2 (child), cron", SortedKeys(e.Services))
			}
		}},
		{"environment is not inherited", "", func(t *testing.T, e *Env) {
			if e.Environment != "child" || e.Extends != "base.yaml" {
				t.Errorf("environment %q extends %q, want child and base.yaml", e.Environment, e.Extends)
			}
		}},
		{"merge keys of the child still merge", "x-a: &a {env: {A: \"9\"}}\nservices:\n  api:\n    <<: *a\n", func(t *testing.T, e *Env) {
			if got := e.Services["api"].Env; got["A"] != "9" || got["B"] != "2" {
				t.Errorf("env %v, want A=9 B=2", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"envs/base.yaml":  {Data: []byte(base)},
				"envs/child.yaml": {Data: []byte("extends: base.yaml\nenvironment: child\n" + tc.child)},
			}
			e, err := Load(fsys, "child")
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, e)
		})
	}
}

// chainFiles returns n files, envs/child.yaml extending envs/c1.yaml and
// so on, the last holding a service: a chain of n files.
func chainFiles(n int) map[string]string {
	files := map[string]string{}
	name := "child"
	for i := 1; i < n; i++ {
		files["envs/"+name+".yaml"] = fmt.Sprintf("extends: c%d.yaml\n", i)
		name = fmt.Sprintf("c%d", i)
	}
	files["envs/child.yaml"] += "environment: child\n"
	files["envs/"+name+".yaml"] = "services:\n  api:\n    image: ghcr.io/acme/api:v1\n"
	return files
}

// TestExtendsChainOf8 loads a chain of 8 files, the longest allowed.
func TestExtendsChainOf8(t *testing.T) {
	fsys := fstest.MapFS{}
	for name, data := range chainFiles(8) {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	if _, err := Load(fsys, "child"); err != nil {
		t.Fatal(err)
	}
}

func TestExtendsErrors(t *testing.T) {
	valid := "environment: %s\nservices:\n  api:\n    image: ghcr.io/acme/api:v1\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			"a field of the base names the base's line",
			map[string]string{
				"envs/base.yaml":  "services:\n  api:\n    image: ghcr.io/acme/api:v1\n    memory: lots\n",
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\n",
			},
			[]string{`envs/base.yaml:4: services.api.memory: `},
		},
		{
			"an unknown field of the base under a service of both files",
			map[string]string{
				"envs/base.yaml":  "services:\n  api:\n    image: ghcr.io/acme/api:v1\n    port: 80\n",
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\nservices:\n  api:\n    containerPort: 8080\n",
			},
			[]string{`envs/base.yaml:4: services.api.port: unknown field`},
		},
		{
			"a field of the child names the child's line",
			map[string]string{
				"envs/base.yaml":  "services:\n  api:\n    image: ghcr.io/acme/api:v1\n",
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\nservices:\n  api:\n    containerPort: 99999\n",
			},
			[]string{`envs/child.yaml:5: services.api.containerPort: want an integer 1-65535`},
		},
		{
			"a missing field names the service's line where the service is",
			map[string]string{
				"envs/base.yaml":  "services:\n  api:\n    containerPort: 8080\n",
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\n",
			},
			[]string{`envs/base.yaml:2: services.api.image: required`},
		},
		{
			"a syntax error of the base",
			map[string]string{
				"envs/base.yaml":  "services:\n  api: [\n",
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\n",
			},
			[]string{`envs/base.yaml:`, `invalid YAML`},
		},
		{
			"a missing base",
			map[string]string{"envs/child.yaml": "extends: nope.yaml\nenvironment: child\n"},
			[]string{`envs/child.yaml:1: extends: envs/nope.yaml: not found at this commit`},
		},
		{
			"a path leaving envs",
			map[string]string{"envs/child.yaml": "extends: ../secrets/x.yaml\nenvironment: child\n"},
			[]string{`envs/child.yaml:1: extends: want a file inside envs/; "../secrets/x.yaml" leaves it`},
		},
		{
			"an absolute path",
			map[string]string{"envs/child.yaml": "extends: /etc/passwd.yaml\nenvironment: child\n"},
			[]string{`envs/child.yaml:1: extends: want a path relative to envs/`},
		},
		{
			"a loop",
			map[string]string{
				"envs/a.yaml":     "extends: b.yaml\n",
				"envs/b.yaml":     "\n\nextends: a.yaml\n",
				"envs/child.yaml": "extends: a.yaml\nenvironment: child\nservices:\n  api:\n    image: ghcr.io/acme/api:v1\n",
			},
			[]string{`envs/b.yaml:3: extends: extends loops: envs/a.yaml → envs/b.yaml → envs/a.yaml`},
		},
		{
			"extending itself",
			map[string]string{"envs/child.yaml": "extends: child.yaml\n" + strings.Replace(valid, "%s", "child", 1)},
			[]string{`envs/child.yaml:1: extends: extends loops: envs/child.yaml → envs/child.yaml`},
		},
		{
			"a null in the child does not remove the base's mapping",
			map[string]string{
				"envs/base.yaml":  "services:\n  api:\n    image: ghcr.io/acme/api:v1\n    env: {A: \"1\"}\n",
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\nservices:\n  api:\n    env: ~\n",
			},
			[]string{`envs/child.yaml:5: services.api.env: null would remove the value inherited from envs/base.yaml`},
		},
		{
			"an empty key in the child does not remove the base's scalar",
			map[string]string{
				"envs/base.yaml":  "keepImages: 5\n" + strings.Replace(valid, "environment: %s\n", "", 1),
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\nkeepImages:\n",
			},
			[]string{`envs/child.yaml:3: keepImages: null would remove the value inherited from envs/base.yaml`},
		},
		{
			"a null fleet in a region's file does not make it a single host",
			map[string]string{
				"envs/base.yaml":  "fleet:\n  store: redis://10.0.0.5\n  hosts: [a, b]\n" + strings.Replace(valid, "environment: %s\n", "", 1),
				"envs/child.yaml": "extends: base.yaml\nenvironment: child\nfleet:\n",
			},
			[]string{`envs/child.yaml:3: fleet: null would remove the value inherited from envs/base.yaml`},
		},
		{
			"a chain longer than 8 files",
			chainFiles(9),
			[]string{`envs/c7.yaml:1: extends: more than 8 files extend one another`},
		},
		{
			"a base's extends that is not a string",
			map[string]string{
				"envs/base.yaml":  "extends: [x]\n",
				"envs/child.yaml": "extends: base.yaml\n" + strings.Replace(valid, "%s", "child", 1),
			},
			[]string{`envs/base.yaml:1: extends: want a file name`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			_, err := Load(fsys, "child")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
