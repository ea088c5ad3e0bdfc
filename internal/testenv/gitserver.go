package testenv

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Bare makes a bare repository in a temp dir, adds it to r as remote
// "origin" and pushes r's branch main there. It returns the bare repo's path;
// "file://"+path is its URL.
func (r *Repo) Bare() string {
	r.t.Helper()
	dir := filepath.Join(r.t.TempDir(), "remote.git")
	out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", dir).CombinedOutput()
	if err != nil {
		r.t.Fatalf("git init --bare: %v\n%s", err, out)
	}
	r.Git("remote", "add", "origin", dir)
	if r.Git("rev-list", "--all", "--max-count=1") != "" {
		r.Push()
	}
	return dir
}

// Push pushes branch main to remote origin (force: tests rewrite history).
func (r *Repo) Push() {
	r.t.Helper()
	r.Git("push", "-q", "-f", "origin", "main")
}

// GitServer is a smart-HTTP git server on 127.0.0.1 (git http-backend
// behind net/http/cgi, in process) serving the bare repositories under a
// directory, optionally behind a bearer-style token (HTTP basic auth with
// the token as password).
type GitServer struct {
	// URL is the server's base: URL + "/remote.git" is a repository.
	URL string
}

// StartGitServer serves the bare repositories under root until t ends.
// With a non-empty token every request must carry it as the basic-auth
// password, else 401. It skips (fails under CI=true) when git is missing.
func StartGitServer(t testing.TB, root, token string) *GitServer {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		SkipOrFail(t, "git not installed: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	h := http.Handler(backend)
	if token != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, pass, ok := req.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			backend.ServeHTTP(w, req)
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("git server: %v", err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &GitServer{URL: "http://" + l.Addr().String()}
}
