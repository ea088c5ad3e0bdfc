package reconciler

import (
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/state"
)

// TestMigrationRuns: a forward run is added to the record; a desired
// state equal to an earlier run (a git revert) undoes the later runs with
// their own image and rollback command, newest first; an irreversible run
// or one without a rollback command refuses the plan; the rollback of a
// release undoes the runs of its commit.
func TestMigrationRuns(t *testing.T) {
	job := func(image string) *state.DesiredJob {
		return &state.DesiredJob{Spec: state.Spec{Image: image, Command: []string{"up"}, Env: map[string]string{"DB": "x"}},
			Network: "host", RollbackCommand: []string{"down", "1"}}
	}
	hash := func(j *state.DesiredJob) string { return j.Spec.Summarize(testKey).Hash() }
	j1, j2 := job("m:v1"), job("m:v2")
	runs := []state.MigrationRun{{Hash: hash(j1), Commit: "c1", Image: "m:v1", Rollback: []string{"down", "1"}},
		{Hash: hash(j2), Commit: "c2", Image: "m:v2", Rollback: []string{"down", "1"}}}
	setup := func(j *state.DesiredJob, runs []state.MigrationRun) (*state.Desired, *state.Observed) {
		d := desired("c3")
		o := applied(t, d, state.Blue)
		d.Migrations = j
		o.ImageIDs["m:v1"], o.ImageIDs["m:v2"], o.ImageIDs["m:v3"] = "sha256:1", "sha256:2", "sha256:3"
		o.LastMigration, o.MigrationRuns = runs[len(runs)-1].Hash, runs
		return d, o
	}

	d, o := setup(job("m:v3"), runs)
	p, err := Diff(d, o, testKey)
	if err != nil {
		t.Fatal(err)
	}
	rec := p.Changes[0].Steps[len(p.Changes[0].Steps)-1]
	if rec.Action != ActRecord || len(rec.MigrationRuns) != 3 || rec.MigrationRuns[2].Image != "m:v3" || rec.MigrationRuns[2].Commit != "c3" {
		t.Fatalf("forward run recorded as %+v", rec)
	}

	d, o = setup(job("m:v1"), runs)
	p, err = Diff(d, o, testKey)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Changes[0]
	if c.Kind != Migrate || len(c.Steps) != 2 {
		t.Fatalf("revert plan:\n%s", p)
	}
	down := c.Steps[0].Container
	if down.Spec.Image != "m:v2" || strings.Join(down.Spec.Command, " ") != "down 1" || down.Spec.Env["DB"] != "x" {
		t.Fatalf("the revert runs %s %q (env %v), want m:v2's recorded down with the env file's env", down.Spec.Image, down.Spec.Command, down.Spec.Env)
	}
	if r := c.Steps[1]; r.Hash != hash(j1) || len(r.MigrationRuns) != 1 {
		t.Fatalf("after the revert the record is %+v, want run 1 only", r)
	}

	irr := append([]state.MigrationRun{}, runs...)
	irr[1].Irreversible = true
	d, o = setup(job("m:v1"), irr)
	if _, err := Diff(d, o, testKey); err == nil || !strings.Contains(err.Error(), "irreversible: true") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("revert of an irreversible run: %v", err)
	}
	none := append([]state.MigrationRun{}, runs...)
	none[1].Rollback = nil
	d, o = setup(job("m:v1"), none)
	if _, err := Diff(d, o, testKey); err == nil || !strings.Contains(err.Error(), "no rollback.command") {
		t.Fatalf("revert of a run without rollback: %v", err)
	}

	d, o = setup(j2, runs)
	pl := planner{d: d, o: o, key: testKey, used: usedPorts(o)}
	if c, err := pl.migrationsRollback("c2"); err != nil || c == nil || c.Steps[0].Container.Spec.Image != "m:v2" {
		t.Fatalf("rollback of release c2: %v\n%+v", err, c)
	}
	if c, err := pl.migrationsRollback("c9"); err != nil || c != nil {
		t.Fatalf("rollback of a release that ran no migrations: %v, %+v", err, c)
	}
}
