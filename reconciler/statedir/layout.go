package statedir

import (
	"fmt"
	"path/filepath"
)

// The layout of a state directory, owned here alone:
//
//	hash.key               the key of the secret and env hashes (0600)
//	<env>.lock             the apply lock of env (flock)
//	<env>.agent.lock       the lock of env's agent: one agent per env and host
//	<env>.migrations       the spec hash of env's last successful migrations run
//	<env>.images           the images each of env's services ran, JSON (retention)
//	<env>.settings         the env file's settings the last apply recorded (hashed where secret)
//	<env>.paused           set by reconciler rollback: the agent deploys nothing of the rolled-back commits (JSON)
//	<env>.migrations.json  the migrations runs that are applied, oldest first, for reverts and rollbacks (JSON)
//	names/<env>/<service>  the color a service's name proxy forwards to
//	history/<env>.jsonl    every deploy attempt of env (append-only)
//	backups/<env>/<time>-<commit>/   nginx files and running specs before a deploy
//	git/<env>/             the agent's mirror of env's branch

// NamesDir is the absolute directory of env's name markers (the name
// proxies bind-mount it, so it must be absolute).
func (d *Dir) NamesDir(env string) (string, error) {
	abs, err := filepath.Abs(filepath.Join(d.path, "names", env))
	if err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	return abs, nil
}

// HistoryPath is the history file of env.
func (d *Dir) HistoryPath(env string) string { return HistoryPath(d.path, env) }

// HistoryPath is the history file of env in the state directory at path,
// for readers that must not create the directory (reconciler history).
func HistoryPath(path, env string) string { return filepath.Join(path, "history", env+".jsonl") }

// BackupDir is the directory of env's backups.
func (d *Dir) BackupDir(env string) string { return filepath.Join(d.path, "backups", env) }

// MirrorDir is the agent's git mirror of env's branch.
func (d *Dir) MirrorDir(env string) string { return filepath.Join(d.path, "git", env) }
