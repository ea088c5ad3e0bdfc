package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestApplyGitAuth: apply reads a private repository with the same options
// as run: an https token from --git-token-file (never in the URL), or an
// ssh key with the host key checked. Without them the clone is refused and
// nothing changes; the token never reaches the output.
func TestApplyGitAuth(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	t.Cleanup(func() { testenv.RemoveEnvContainers(t, w.cli, w.env) })
	w.commit(spec{version: "v1", config: "a: 1\n"}, "deploy v1")
	bare := w.repo.Bare()
	const token = "apply-token-789"
	srv := testenv.StartGitServer(t, filepath.Dir(bare), token)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apply := func(args ...string) result {
		t.Helper()
		var out, errb bytes.Buffer
		full := append([]string{"apply", "--env", w.env, "--state-dir", w.stateDir}, args...)
		code := run(context.Background(), full, &out, &errb)
		return result{code, out.String(), errb.String()}
	}
	url := srv.URL + "/" + filepath.Base(bare)

	r := apply("--repo", url)
	if r.code != exitFailed || !strings.Contains(strings.ToLower(r.stderr), "authentication required") {
		t.Fatalf("apply without a token: exit %d, want 1 with authentication required\n%s", r.code, r.stderr)
	}
	if len(w.containers()) != 0 {
		t.Fatalf("a refused clone changed the host: %v", w.containers())
	}

	r = apply("--repo", url, "--git-token-file", tokenFile)
	if r.code != exitOK {
		t.Fatalf("apply with --git-token-file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	w.wantServing("v1")
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Fatalf("the token reached the output:\n%s%s", r.stdout, r.stderr)
	}

	// ssh, with the key and known_hosts as run takes them.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "deploy v2")
	w.repo.Push()
	sshURL, keyFile, knownHosts := testenv.StartSSHGit(t, bare)
	r = apply("--repo", sshURL, "--ssh-key-file", keyFile, "--known-hosts", knownHosts)
	if r.code != exitOK {
		t.Fatalf("apply over ssh: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	w.wantServing("v2")
}
