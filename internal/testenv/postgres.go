package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
)

// pgBin is where Debian's postgresql package puts its programs.
const pgBin = "/usr/lib/postgresql/15/bin"

// Postgres is a PostgreSQL server a test started on 127.0.0.1:Port, in
// its own data directory, stopped and removed when the test ends.
type Postgres struct {
	Port int
	dir  string
	t    testing.TB
}

// DSN is the server's connection string for the database postgres, as
// the migration tool takes it (no TLS).
func (p *Postgres) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

// StartPostgres runs initdb and pg_ctl from Debian's package, as the
// postgres user when the test runs as root (the server refuses root), on a
// free loopback port: containers on the host network (the migrations
// job's default) reach it there. It fails under CI=true when PostgreSQL
// is not installed, and skips otherwise.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is not installed (%s): %v", pgBin, err)
		}
		t.Skipf("PostgreSQL is not installed (%s)", pgBin)
	}
	dir, err := os.MkdirTemp("", "reconciler-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p := &Postgres{Port: FreePort(t), dir: dir, t: t}
	data := filepath.Join(dir, "data")
	p.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off", p.Port, dir)
	p.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "30", "start")
	t.Cleanup(func() { p.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop") })
	return p
}

// run runs a PostgreSQL program as the server's user.
func (p *Postgres) run(prog string, args ...string) string {
	p.t.Helper()
	argv := append([]string{filepath.Join(pgBin, prog)}, args...)
	if os.Geteuid() == 0 {
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Query runs sql with psql and returns its unaligned, tuples-only output,
// trimmed.
func (p *Postgres) Query(sql string) string {
	p.t.Helper()
	return strings.TrimSpace(p.run("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", "postgres", "-At", "-c", sql))
}

// MigrateVersion is the golang-migrate module MigrateImage builds, one of
// the versions the module proxy holds.
const MigrateVersion = "v4.18.3"

var migrateBin struct {
	once sync.Once
	bin  []byte
	err  error
}

// migrateBinary builds golang-migrate's CLI with its postgres driver, once
// per process, as a static binary (from the module proxy or the module
// cache; never committed).
func migrateBinary() ([]byte, error) {
	migrateBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "reconciler-migrate-")
		if err != nil {
			migrateBin.err = err
			return
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "install", "-tags", "postgres", "-trimpath", "github.com/golang-migrate/migrate/v4/cmd/migrate@"+MigrateVersion)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
		if b, err := cmd.CombinedOutput(); err != nil {
			migrateBin.err = fmt.Errorf("go install golang-migrate: %w\n%s", err, b)
			return
		}
		migrateBin.bin, migrateBin.err = os.ReadFile(filepath.Join(dir, "migrate"))
	})
	return migrateBin.bin, migrateBin.err
}

// MigrateImage imports an image ref FROM scratch holding golang-migrate's
// CLI as /migrate (its entrypoint) and the files of migrations (name →
// SQL) under /migrations, and removes it when the test ends.
func MigrateImage(t testing.TB, ref string, migrations map[string]string) {
	t.Helper()
	bin, err := migrateBinary()
	if err != nil {
		t.Fatal(err)
	}
	cli := Docker(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	add := func(name string, mode int64, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("migrate", 0o755, bin)
	if err := tw.WriteHeader(&tar.Header{Name: "migrations/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(migrations))
	for n := range migrations {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		add("migrations/"+n, 0o644, []byte(migrations[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{
		Changes: []string{`ENTRYPOINT ["/migrate"]`}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := drain(rc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true}) })
}
