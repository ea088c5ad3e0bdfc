package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/backup"
)

// These tests set process environment variables (the AWS SDK's default
// chain, DOCKER_CONFIG) with t.Setenv, so they are not parallel; Go runs
// them before the parallel tests of this package start.

// withSecrets returns the env file of s with secrets for web and a backup
// section added.
func (w *world) withSecrets(s spec, secrets, backupYAML string) string {
	y := w.envYAML(s)
	y = strings.Replace(y, "    files:\n", "    secrets:\n"+secrets+"    files:\n", 1)
	return y + backupYAML
}

func randomValue(t *testing.T, prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// ownImages imports the app's v1 and v2 variants under tags of this test
// alone: another package's tests may re-tag the shared reconciler-test/app
// tags at any time, which would look like a moved tag to diff.
func (w *world) ownImages() (v1, v2 string) {
	v1, v2 = "reconciler-test/app:"+w.env+"-v1", "reconciler-test/app:"+w.env+"-v2"
	testenv.AppImageVariant(w.t, v1, "v1")
	testenv.AppImageVariant(w.t, v2, "v2")
	w.t.Cleanup(func() {
		for _, ref := range []string{v1, v2} {
			w.cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true})
		}
	})
	return v1, v2
}

func sha(v string) string {
	d := sha256.Sum256([]byte(v))
	return hex.EncodeToString(d[:])
}

// TestSecretsFromAWS: secrets from SSM and Secrets Manager (the real SDK
// against a loopback endpoint) reach the container; rotating one redeploys
// and diff names it; no value is in any output stream, label, nginx file,
// state dir file or backup; invalid credentials fail clearly, changing
// nothing.
func TestSecretsFromAWS(t *testing.T) {
	w := newWorld(t)
	aws := testenv.FakeAWS(t)
	aws.Setenv(t)
	dbParam := "/devops-mcp/" + w.env + "/database_password"
	pw1, token := randomValue(t, "pw1-"), randomValue(t, "tok-")
	aws.SetParameter(dbParam, pw1)
	aws.SetSecret(w.env+"/tokens", `{"api":"`+token+`"}`)
	secrets := "      DATABASE_PASSWORD: ssm:" + dbParam + "\n      API_TOKEN: secretsmanager:" + w.env + "/tokens#api\n"
	rcv := newReceiver(t)
	backupYAML := "backup:\n  keep: 2\n  s3: s3://backups/reconciler\n" +
		"notify:\n  - url: " + rcv.srv.URL + "/hook\n  - url: " + rcv.srv.URL + "/slack\n    format: slack\n"
	v1, _ := w.ownImages()
	commit := func(msg string) {
		w.repo.Write("envs/"+w.env+".yaml", w.withSecrets(spec{image: v1, version: "v1", config: "a: 1\n"}, secrets, backupYAML))
		w.repo.Commit(msg)
	}
	commit("v1 with secrets")

	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.stdout, r.stderr); return r }
	r := keep(w.mustRun(exitOK, "check"))
	for _, want := range []string{"ok   aws: credentials valid for arn:aws:iam::123456789012:user/reconciler-test", "ok   secrets and plan: 2 secret(s) resolved", "ok   memory:", "ok   nginx:"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("check output lacks %q:\n%s", want, r.stdout)
		}
	}
	keep(w.mustRun(exitOK, "apply", "--log-format", "json", "--log-level", "debug"))
	w.wantServing("v1") // apply returns once nginx serves the new site
	if code, body := w.get("/envhash?name=DATABASE_PASSWORD"); code != 200 || strings.TrimSpace(body) != sha(pw1) {
		t.Fatalf("DATABASE_PASSWORD in the container: %d %q, want the hash of the SSM value", code, body)
	}
	if code, body := w.get("/envhash?name=API_TOKEN"); code != 200 || strings.TrimSpace(body) != sha(token) {
		t.Fatalf("API_TOKEN in the container: %d %q", code, body)
	}
	keep(w.mustRun(exitOK, "diff"))

	// Rotate the password: diff names the secret, apply redeploys.
	pw2 := randomValue(t, "pw2-")
	aws.SetParameter(dbParam, pw2)
	r = keep(w.mustRun(exitChanges, "diff", "--log-level", "debug"))
	if !strings.Contains(r.stdout, "secret DATABASE_PASSWORD changed") || strings.Contains(r.stdout, "API_TOKEN") {
		t.Fatalf("diff after rotation:\n%s", r.stdout)
	}
	keep(w.mustRun(exitChanges, "diff", "-o", "json"))
	keep(w.mustRun(exitOK, "apply", "--log-level", "debug"))
	if code, body := w.get("/envhash?name=DATABASE_PASSWORD"); code != 200 || strings.TrimSpace(body) != sha(pw2) {
		t.Fatalf("after rotation the container has %d %q, want the new value's hash", code, body)
	}
	keep(w.mustRun(exitOK, "status", "-o", "json"))
	keep(w.mustRun(exitOK, "status"))

	// Invalid credentials: exit 1 with a clear message, nothing changed.
	pw3 := randomValue(t, "pw3-")
	aws.SetParameter(dbParam, pw3)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDWRONGWRONG")
	ids, reloads := w.containers(), w.reloadCount()
	r = keep(w.mustRun(exitFailed, "apply"))
	if !strings.Contains(r.stderr, "AWS credentials are not valid") || !strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("apply with invalid credentials:\n%s", r.stderr)
	}
	r = keep(w.mustRun(exitFailed, "diff"))
	if !strings.Contains(r.stderr, "UnrecognizedClientException") {
		t.Fatalf("diff with invalid credentials:\n%s", r.stderr)
	}
	keep(w.mustRun(exitFailed, "check"))
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) || w.reloadCount() != reloads {
		t.Fatalf("invalid credentials changed the host: %v → %v", ids, got)
	}
	if code, body := w.get("/envhash?name=DATABASE_PASSWORD"); code != 200 || strings.TrimSpace(body) != sha(pw2) {
		t.Fatalf("after the failed apply the container has %d %q", code, body)
	}

	// Backups: the last two in the state dir, each also in S3.
	local, err := backup.List(filepath.Join(w.stateDir, "backups", w.env))
	if err != nil || len(local) != 2 {
		t.Fatalf("local backups %v, %v; want 2", local, err)
	}
	objects := aws.Objects()
	if len(objects) != 2 {
		t.Fatalf("S3 objects: %d, want 2", len(objects))
	}

	// Nothing anywhere holds a value.
	var where []string
	check := func(what string, data []byte) {
		for _, v := range []string{pw1, pw2, pw3, token} {
			if bytes.Contains(data, []byte(v)) {
				where = append(where, what)
			}
		}
	}
	// Notifications (JSON and Slack) of every deploy above.
	waitFor(t, "notifications", 10*time.Second, func() bool { return len(rcv.names()) >= 4 })
	rcv.mu.Lock()
	outputs = append(outputs, rcv.raw...)
	rcv.mu.Unlock()
	for i, o := range outputs {
		check(fmt.Sprintf("output %d", i), []byte(o))
	}
	ctx := context.Background()
	for name, id := range w.containers() {
		ci, err := w.cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		check("labels of "+name, []byte(fmt.Sprint(ci.Config.Labels)))
		check("name of "+name, []byte(ci.Name))
	}
	for _, dir := range []string{w.stateDir, w.ngx.Dir} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				check(p, b)
			}
			return nil
		})
	}
	files := 0
	for key, obj := range objects {
		zr, err := gzip.NewReader(bytes.NewReader(obj))
		if err != nil {
			t.Fatalf("S3 object %s: %v", key, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			check("s3 "+key+" "+h.Name, b)
			files++
		}
	}
	// The first backup (empty host) holds specs.json; the second the nginx
	// file and marker too.
	if files < 3 {
		t.Errorf("the S3 backups hold %d files, want at least 3", files)
	}
	if len(where) > 0 {
		t.Fatalf("a secret value leaked into: %v", where)
	}
}

// TestMemoryCheck: a deploy whose new color would not fit beside what runs
// is refused before any change.
func TestMemoryCheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v1, v2 := w.ownImages()
	w.commit(spec{image: v1, version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	w.wantServing("v1")
	ids, reloads := w.containers(), w.reloadCount()
	w.commit(spec{image: v2, version: "v2", config: "a: 1\n"}, "v2")
	// Other tests' containers run on this engine too; a host of 1m with no
	// reserve fits nothing.
	r := w.mustRun(exitFailed, "apply", "--host-memory", "1m", "--memory-reserve", "0")
	if !strings.Contains(r.stderr, "pre-deploy check memory failed: the deploy needs up to") || !strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("apply over the memory:\n%s", r.stderr)
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) || w.reloadCount() != reloads {
		t.Fatalf("a refused deploy changed the host: %v → %v", ids, got)
	}
	if b, _ := backup.List(filepath.Join(w.stateDir, "backups", w.env)); len(b) != 1 {
		t.Fatalf("backups %v: want only the first deploy's", b)
	}
	w.wantServing("v1")
	r = w.mustRun(exitFailed, "check", "--host-memory", "1m", "--memory-reserve", "0")
	if !strings.Contains(r.stdout, "FAIL memory: the deploy needs up to") {
		t.Fatalf("check output:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply", "--host-memory", "1m", "--skip-checks")
	w.wantServing("v2")
}

// TestNoAWSGuidance: on a machine never set up for AWS (no variables, no
// shared files, the metadata service disabled so nothing leaves it), every
// command that needs AWS fails with one line saying what it tried, what to
// set and that diff --base needs no AWS; diff --base itself works.
func TestNoAWSGuidance(t *testing.T) {
	home := t.TempDir()
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_STS", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	w := newWorld(t)
	secrets := "      DATABASE_PASSWORD: ssm:/reconciler-test/db\n"
	w.repo.Write(filepath.Join("envs", w.env+".yaml"), w.withSecrets(spec{version: "v1", config: "a: 1\n"}, secrets, "aws:\n  region: us-east-1\n"))
	w.repo.Commit("v1 with a secret")
	w.repo.Write(filepath.Join("envs", w.env+".yaml"), w.withSecrets(spec{version: "v2", config: "a: 1\n"}, secrets, "aws:\n  region: us-east-1\n"))
	w.repo.Commit("v2")
	for _, args := range [][]string{{"diff"}, {"apply"}, {"check"}} {
		r := w.mustRun(exitFailed, args...)
		errLine := strings.TrimSpace(r.stderr[strings.LastIndex(r.stderr, "error: "):])
		for _, want := range []string{"no AWS credentials: tried AWS_ACCESS_KEY_ID", "EC2 instance role", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
			"aws.profile in envs/" + w.env + ".yaml", "`reconciler diff --base` previews without AWS"} {
			if !strings.Contains(errLine, want) {
				t.Errorf("%s: error lacks %q:\n%s", args[0], want, r.stderr)
			}
		}
		if strings.Contains(errLine, "\n") || strings.Contains(r.stderr, "operation error") {
			t.Errorf("%s: want one line of guidance, no SDK error:\n%s", args[0], r.stderr)
		}
	}
	if got := w.containers(); len(got) != 0 {
		t.Fatalf("a failed apply without AWS started %v", got)
	}
	w.mustRun(exitChanges, "diff", "--base", "HEAD~1")
}
