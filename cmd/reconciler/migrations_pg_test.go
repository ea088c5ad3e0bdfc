package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
)

// TestMigrationsBothWaysPostgres runs golang-migrate, built offline into
// images FROM scratch, against a real PostgreSQL:
//   - up runs before the services change;
//   - git revert of the commit that brought migration 2 runs that
//     release's recorded rollback.command (down 1, with its own image),
//     not the older image's up, before the older version serves: the
//     schema is back at version 1 and no request through nginx fails;
//   - a revert of migrations marked irreversible stops before any change
//     and says what to do;
//   - a failed up switches nothing and announces migration.failed;
//   - reconciler rollback of a release that ran migrations runs its down
//     too.
func TestMigrationsBothWaysPostgres(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t)
	w := newWorld(t)
	img := func(v string) string { return "reconciler-test-i15b/migrate-" + w.env + ":" + v }
	m1 := map[string]string{"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;"}
	m2 := map[string]string{"2_email.up.sql": "ALTER TABLE users ADD COLUMN email text;", "2_email.down.sql": "ALTER TABLE users DROP COLUMN email;"}
	m3 := map[string]string{"3_bad.up.sql": "ALTER TABLE nosuchtable ADD COLUMN x int;", "3_bad.down.sql": "SELECT 1;"}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	testenv.MigrateImage(t, img("v1"), m1)
	testenv.MigrateImage(t, img("v2"), merge(m1, m2))
	testenv.MigrateImage(t, img("v3"), merge(m1, m2, m3))

	var mu sync.Mutex
	var events []string
	hook := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		var e reconciler.Event
		_ = json.NewDecoder(r.Body).Decode(&e)
		mu.Lock()
		events = append(events, string(e.Name))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	top := "notify:\n  - url: " + hook.URL + "/hook\n    events: [migration.failed, deploy.rolled_back]\n"

	mig := func(v, extra string) string {
		args := fmt.Sprintf(`"-path", "/migrations", "-database", %q`, pg.DSN())
		return fmt.Sprintf("  image: %s\n  command: [%s, \"up\"]\n  rollback:\n    command: [%s, \"down\", \"1\"]\n  timeout: 1m\n%s", img(v), args, args, extra)
	}
	version := func() string { return pg.Query("SELECT version::text || ' ' || dirty::text FROM schema_migrations") }
	hasEmail := func() string {
		return pg.Query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'")
	}

	w.commit(spec{version: "v1", config: "a: 1\n", migrations: mig("v1", ""), top: top}, "v1")
	w.mustRun(exitOK, "apply", "--skip-checks")
	if v := version(); v != "1 false" {
		t.Fatalf("schema after v1: %q, want version 1", v)
	}
	w.wantServing("v1")

	bad := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", migrations: mig("v2", ""), top: top}, "v2: email column")
	r := w.mustRun(exitOK, "apply", "--skip-checks")
	if mi, wi := strings.Index(r.stdout, "> migrations"), strings.Index(r.stdout, "~ web"); mi < 0 || wi < mi {
		t.Fatalf("up must come before the service change:\n%s", r.stdout)
	}
	if v, e := version(), hasEmail(); v != "2 false" || e != "1" {
		t.Fatalf("schema after v2: version %q, email columns %s", v, e)
	}
	w.wantServing("v2")

	// git revert of the migration-bearing commit.
	w.repo.Git("revert", "--no-edit", bad)
	r = w.mustRun(exitChanges, "diff")
	for _, want := range []string{"undo the migrations of commit " + bad[:12], img("v2"), `"down" "1"`, "migrate migrations rollback " + bad[:12]} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("the revert's plan lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "run "+img("v1")) {
		t.Fatalf("the revert runs the older image's up:\n%s", r.stdout)
	}
	l := startLoad(t, w.port, 8)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 50 })
	w.mustRun(exitOK, "apply", "--skip-checks")
	n := l.ok.Load()
	waitFor(t, "load after the revert", 5*time.Second, func() bool { return l.ok.Load() > n+50 })
	wantNoFailures(t, l)
	if v, e := version(), hasEmail(); v != "1 false" || e != "0" {
		t.Fatalf("schema after the revert: version %q, email columns %s; want version 1 without email", v, e)
	}
	w.wantServing("v1")
	w.mustRun(exitOK, "diff")

	// Irreversible migrations: the revert stops before any change.
	irr := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", migrations: mig("v2", "  irreversible: true\n"), top: top}, "v2 again, irreversible")
	w.mustRun(exitOK, "apply", "--skip-checks")
	w.repo.Git("revert", "--no-edit", irr)
	r = w.mustRun(exitFailed, "apply", "--skip-checks")
	for _, want := range []string{"irreversible: true", "nothing was changed", "keep the migrations block as it is at commit " + irr[:12]} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("apply of the irreversible revert lacks %q:\n%s", want, r.stderr)
		}
	}
	if v := version(); v != "2 false" {
		t.Fatalf("schema after the refused revert: %q, want version 2", v)
	}
	w.wantServing("v2")

	// A failed up: nothing switched, migration.failed.
	w.commit(spec{image: "reconciler-test/app:v1", version: "v1", config: "a: 1\n", migrations: mig("v3", ""), top: top}, "v3: a broken migration")
	r = w.mustRun(exitFailed, "apply", "--skip-checks")
	if !strings.Contains(r.stderr, "no service was changed") {
		t.Fatalf("apply with a failing up:\n%s", r.stderr)
	}
	w.wantServing("v2")
	waitFor(t, "migration.failed", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(events, " "), "migration.failed")
	})
}

// TestRollbackRunsDownPostgres: reconciler rollback of a release that
// ran migrations runs that release's recorded down before the previous
// release serves again.
func TestRollbackRunsDownPostgres(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t)
	w := newWorld(t)
	img := func(v string) string { return "reconciler-test-i15b/migrate-" + w.env + ":" + v }
	m1 := map[string]string{"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;"}
	testenv.MigrateImage(t, img("v1"), m1)
	testenv.MigrateImage(t, img("v2"), map[string]string{"1_users.up.sql": m1["1_users.up.sql"], "1_users.down.sql": m1["1_users.down.sql"],
		"2_email.up.sql": "ALTER TABLE users ADD COLUMN email text;", "2_email.down.sql": "ALTER TABLE users DROP COLUMN email;"})
	mig := func(v string) string {
		args := fmt.Sprintf(`"-path", "/migrations", "-database", %q`, pg.DSN())
		return fmt.Sprintf("  image: %s\n  command: [%s, \"up\"]\n  rollback:\n    command: [%s, \"down\", \"1\"]\n", img(v), args, args)
	}
	w.commit(spec{version: "v1", config: "a: 1\n", migrations: mig("v1")}, "v1")
	w.mustRun(exitOK, "apply", "--skip-checks")
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", migrations: mig("v2")}, "v2")
	w.mustRun(exitOK, "apply", "--skip-checks")
	if v := pg.Query("SELECT version FROM schema_migrations"); v != "2" {
		t.Fatalf("schema after v2: %q", v)
	}
	r := w.mustRun(exitOK, "rollback")
	if mi, wi := strings.Index(r.stdout, "> migrations: undo 1 run(s)"), strings.Index(r.stdout, "~ web: roll back"); mi < 0 || wi < mi {
		t.Fatalf("the rollback must undo the release's migrations before the services:\n%s", r.stdout)
	}
	if v := pg.Query("SELECT version FROM schema_migrations"); v != "1" {
		t.Fatalf("schema after the rollback: %q, want 1", v)
	}
	w.wantServing("v1")
}
