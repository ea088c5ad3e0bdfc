package reconciler

import (
	"fmt"
	"slices"

	"github.com/developer-mesh/reconciler/state"
)

// defaultJobTimeout bounds an undo job whose run recorded no timeout.
const defaultJobTimeout = state.DefaultMigrationsTimeout

// runs returns the record of the migrations runs applied with this
// plan's run (hash) added last, the oldest dropped beyond
// state.MaxMigrationRuns. A host that recorded only the hash (before the
// record of runs) starts its record here.
func (pl *planner) runsWith(hash string) []state.MigrationRun {
	m := pl.d.Migrations
	runs := slices.Clone(pl.o.MigrationRuns)
	if n := len(runs); n > 0 && runs[n-1].Hash != pl.o.LastMigration {
		runs = nil // the record does not end with the last run: start again
	}
	runs = append(runs, state.MigrationRun{Hash: hash, Commit: pl.d.Commit, Image: m.Spec.Image,
		Rollback: slices.Clone(m.RollbackCommand), Irreversible: m.Irreversible, Network: m.Network, Timeout: m.Timeout})
	if n := len(runs); n > state.MaxMigrationRuns {
		runs = runs[n-state.MaxMigrationRuns:]
	}
	return runs
}

// runsNow is the record of runs as observed, never nil (an ActRecord step
// with nil runs leaves the record alone).
func (pl *planner) runsNow() []state.MigrationRun {
	return append([]state.MigrationRun{}, pl.o.MigrationRuns...)
}

// migrationsRevert is the change of a git revert of a commit that ran
// migrations: the desired migrations are those of an earlier run the host
// recorded, under the last one. Their image's up would meet a newer
// schema; instead each later run is undone, newest first, with the image
// and rollback.command its own release recorded (and the env, secrets and
// files of the env file being applied). A run marked irreversible, or one
// without a rollback command, stops the plan before any change. nil when
// the desired migrations are not such an earlier run.
func (pl *planner) migrationsRevert() (*Change, error) {
	m, runs := pl.d.Migrations, pl.o.MigrationRuns
	if m == nil || len(runs) < 2 || runs[len(runs)-1].Hash != pl.o.LastMigration {
		return nil, nil
	}
	hash := m.Spec.Summarize(pl.key).Hash()
	if hash == pl.o.LastMigration {
		return nil, nil
	}
	for k := len(runs) - 2; k >= 0; k-- {
		if runs[k].Hash == hash {
			c, err := pl.undoRuns(k+1, "revert to the migrations of commit "+state.ShortHash(runs[k].Commit))
			if err != nil {
				return nil, fmt.Errorf("migrations: %w", err)
			}
			return c, nil
		}
	}
	return nil, nil
}

// migrationsRollback is the change of reconciler rollback that undoes the
// migrations release ran (the last runs recorded at that commit), by the
// rule of migrationsRevert; nil when it ran none.
func (pl *planner) migrationsRollback(release string) (*Change, error) {
	runs := pl.o.MigrationRuns
	if len(runs) == 0 || runs[len(runs)-1].Hash != pl.o.LastMigration {
		return nil, nil
	}
	from := len(runs)
	for from > 0 && runs[from-1].Commit == release {
		from--
	}
	if from == len(runs) {
		return nil, nil
	}
	c, err := pl.undoRuns(from, "rollback of release "+state.ShortHash(release))
	if err != nil {
		return nil, fmt.Errorf("rollback of release %s: %w", state.ShortHash(release), err)
	}
	return c, nil
}

// undoRuns is the change that undoes the recorded runs from index from
// on, newest first, then records the runs before from as applied.
func (pl *planner) undoRuns(from int, why string) (*Change, error) {
	runs := pl.o.MigrationRuns
	name := pl.d.Env + "-migrations"
	var base state.Spec
	var sum state.Summary
	if m := pl.d.Migrations; m != nil {
		base, sum = m.Spec, m.Spec.Summarize(pl.key)
	}
	c := &Change{Kind: Migrate, Subject: "migrations", Reasons: []string{why}}
	if m := pl.d.Migrations; m != nil && m.SnapshotRDS != "" {
		c.Steps = append(c.Steps, Step{Action: ActSnapshot, Target: "rds " + m.SnapshotRDS, Name: m.SnapshotRDS, Snapshot: SnapshotID(pl.d.Env, pl.d.Commit)})
	}
	var images []string
	for i := len(runs) - 1; i >= from; i-- {
		r := runs[i]
		switch {
		case r.Irreversible:
			return nil, fmt.Errorf("the migrations of commit %s (image %s) are marked irreversible: true and cannot be undone; nothing was changed. "+
				"To run the older services, keep the migrations block as it is at commit %s in the env file (revert only the services' images: they must work with the newer schema), "+
				"or restore the database from a backup taken before commit %s yourself", state.ShortHash(r.Commit), r.Image, state.ShortHash(r.Commit), state.ShortHash(r.Commit))
		case len(r.Rollback) == 0:
			return nil, fmt.Errorf("the migrations of commit %s (image %s) recorded no rollback.command, so nothing can undo them; nothing was changed. "+
				"Keep the migrations block as it is at commit %s in the env file (revert only the services' images), or restore the database from a backup yourself", state.ShortHash(r.Commit), r.Image, state.ShortHash(r.Commit))
		}
		spec := base
		spec.Image, spec.Command = r.Image, slices.Clone(r.Rollback)
		timeout := r.Timeout
		if timeout <= 0 {
			timeout = defaultJobTimeout
		}
		c.Reasons = append(c.Reasons, fmt.Sprintf("undo the migrations of commit %s: %s %q (its own recorded rollback.command, not the older image's up)", state.ShortHash(r.Commit), r.Image, r.Rollback))
		c.Steps = append(c.Steps, Step{Action: ActMigrate, Target: "migrations rollback " + state.ShortHash(r.Commit), Name: name, Container: &ContainerSpec{
			Name: name, Spec: spec, Labels: pl.labels("migrations", "migrations", "", sum, sum.Hash(), 0),
			Network: r.Network, Timeout: timeout,
		}})
		images = append(images, r.Image)
	}
	to := ""
	if from > 0 {
		to = runs[from-1].Hash
	}
	c.Steps = append(c.Steps, Step{Action: ActRecord, Target: "migrations", Hash: to, MigrationRuns: append([]state.MigrationRun{}, runs[:from]...)})
	c.Summary = fmt.Sprintf("undo %d run(s) with %v", len(runs)-from, images)
	return c, nil
}
