package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestRepoFilesRefused: validate and diff refuse, naming the field, a file
// source that is a symbolic link in the repository (it became a file
// holding the link's text), a file over the size limit (validate passed
// it and apply refused it), and a files[].target with a control
// character (a newline and a fence broke out of the PR comment's code
// block).
func TestRepoFilesRefused(t *testing.T) {
	t.Parallel()
	env := func(source, target string) string {
		return "environment: rf14\nservices:\n  api:\n    image: ghcr.io/acme/api:v1\n    files:\n      - source: " + source + "\n        target: " + target + "\n"
	}
	cases := []struct {
		name, yaml, want string
		setup            func(r *testenv.Repo)
	}{
		{"symlink", env("config/link.yaml", "/app/c.yaml"), `services.api.files[0].source: "config/link.yaml" is a symbolic link`, func(r *testenv.Repo) {
			if err := os.Symlink("/etc/shadow", filepath.Join(r.Dir, "config/link.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"oversize", env("config/big.yaml", "/app/c.yaml"), `services.api.files[0].source: "config/big.yaml" is 1048577 bytes; want at most 1048576`, func(r *testenv.Repo) {
			r.Write("config/big.yaml", strings.Repeat("a", 1<<20+1))
		}},
		{"control character", env("config/ok.yaml", `"/app/c.yaml\n`+"```"+`\nINJECTED"`), `services.api.files[0].target: holds a control character`, func(*testenv.Repo) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.NewRepo(t)
			r.Write("config/ok.yaml", "a: 1\n")
			r.Write("envs/rf14.yaml", tc.yaml)
			tc.setup(r)
			r.Commit("files")
			for _, cmd := range []string{"validate", "diff"} {
				code, out, errOut := runCLI(t, cmd, "--env", "rf14", "--repo", r.Dir, "--state-dir", t.TempDir())
				if code != 1 || !strings.Contains(errOut, tc.want) {
					t.Errorf("%s: exit %d, want 1 and %q\n%s%s", cmd, code, tc.want, out, errOut)
				}
				if strings.Contains(out+errOut, "\nINJECTED") {
					t.Errorf("%s: output holds the raw newline of the target:\n%s%s", cmd, out, errOut)
				}
			}
		})
	}
}
