package state

import "time"

// MigrationRun is one migrations run the host applied and has not undone:
// what a revert or a rollback needs to undo it later, recorded when it
// succeeded. It holds no secret: the undo runs with the env, secrets and
// files of the env file being applied.
type MigrationRun struct {
	// Hash is the spec hash of the run (Observed.LastMigration after it).
	Hash string `json:"hash"`
	// Commit is the commit whose deploy ran it.
	Commit string `json:"commit"`
	// Image ran it; Rollback is that release's rollback.command (nil for
	// none), run with Image to undo it.
	Image    string   `json:"image"`
	Rollback []string `json:"rollback,omitempty"`
	// Irreversible is the release's migrations.irreversible.
	Irreversible bool          `json:"irreversible,omitempty"`
	Network      string        `json:"network,omitempty"`
	Timeout      time.Duration `json:"timeout,omitempty"`
}

// MaxMigrationRuns is how many runs the host remembers; the oldest go
// first (a revert further back than that finds no record and runs up).
const MaxMigrationRuns = 20
