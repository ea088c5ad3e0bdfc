package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadCorpusChangesNothing runs validate, diff and apply on every
// malformed env file of state/testdata/bad (whose messages are golden-tested
// in package state) against a host that serves v1: each exits 1 naming the
// file, and afterwards the containers, the nginx files and the reload count
// are what they were, and v1 still serves.
func TestBadCorpusChangesNothing(t *testing.T) {
	t.Parallel()
	cases, err := filepath.Glob("../../state/testdata/bad/*.yaml")
	if err != nil || len(cases) < 40 {
		t.Fatalf("bad corpus: %d files, %v; want at least 40", len(cases), err)
	}
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	w.wantServing("v1")
	good := w.envYAML(spec{version: "v1", config: "a: 1\n"})
	ids, reloads, conf := w.containers(), w.reloadCount(), confSnapshot(t, w.ngx.ConfDir)

	// The files the corpus references (env files, templates) beside it.
	if out, err := exec.Command("cp", "-r", "../../state/testdata/repo/.", w.repo.Dir).CombinedOutput(); err != nil {
		t.Fatalf("copy corpus repo: %v %s", err, out)
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		env := w.env
		if first, _, _ := strings.Cut(string(data), "\n"); strings.HasPrefix(first, "# env: ") {
			env = strings.TrimSpace(strings.TrimPrefix(first, "# env: ")) // a bad name itself
		} else {
			data = []byte(strings.Replace(string(data), "environment: test\n", "environment: "+w.env+"\n", 1))
		}
		if extra := strings.TrimSuffix(path, ".yaml") + ".files"; dirExists(extra) {
			if out, err := exec.Command("cp", "-r", extra+"/.", w.repo.Dir).CombinedOutput(); err != nil {
				t.Fatalf("copy %s: %v %s", extra, err, out)
			}
		}
		w.repo.Write("envs/"+w.env+".yaml", good) // the file of another env stays valid
		w.repo.Write("envs/"+env+".yaml", string(data))
		w.repo.Commit("bad: " + name)
		for _, cmd := range []string{"validate", "diff", "apply"} {
			var out, errb strings.Builder
			code := run(t.Context(), []string{cmd, "--env", env, "--repo", w.repo.Dir, "--state-dir", w.stateDir}, &out, &errb)
			if code != exitFailed {
				t.Errorf("%s: %s exited %d, want 1\n%s%s", name, cmd, code, out.String(), errb.String())
				continue
			}
			if !strings.Contains(errb.String(), "envs/") {
				t.Errorf("%s: %s error does not name the file:\n%s", name, cmd, errb.String())
			}
		}
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("bad input changed the containers: %v → %v", ids, got)
	}
	if n := w.reloadCount(); n != reloads {
		t.Errorf("bad input reloaded nginx %d times", n-reloads)
	}
	if got := confSnapshot(t, w.ngx.ConfDir); got != conf {
		t.Errorf("bad input changed confDir:\n%s\nwas:\n%s", got, conf)
	}
	w.wantServing("v1")
}

// confSnapshot lists the files of dir with their contents.
func confSnapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		fmt.Fprintf(&b, "%s %q\n", e.Name(), data)
	}
	return b.String()
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
