// Package backup keeps a copy of what a deploy is about to change: the nginx
// files reconciler owns for the environment and the specs of its running
// containers (their labels hold hashes only, never secret values). Backups
// go to <state dir>/backups/<env>/<UTC time>-<commit>/, the last N are kept,
// and each can also be uploaded as one .tar.gz.
package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// Uploader stores a backup archive elsewhere (S3).
type Uploader interface {
	// Put stores body under key and returns where it went.
	Put(ctx context.Context, key string, body []byte) (string, error)
}

// Container is a running container's record in specs.json.
type Container struct {
	Name     string        `json:"name"`
	Service  string        `json:"service"`
	Color    state.Color   `json:"color"`
	Commit   string        `json:"commit"`
	SpecHash string        `json:"specHash"`
	Spec     state.Summary `json:"spec"`
	ImageID  string        `json:"imageId"`
	State    string        `json:"state"`
}

// Specs is the content of specs.json.
type Specs struct {
	Env        string      `json:"env"`
	Taken      time.Time   `json:"taken"`
	Deploying  string      `json:"deploying"` // the commit about to be applied
	Containers []Container `json:"containers"`
	// Live is the color each service's traffic goes to, by service.
	Live map[string]state.Color `json:"live"`
}

// Result says where a backup went.
type Result struct {
	Dir string // local directory
	URL string // upload location, "" when none
}

// Take writes a backup of o (env's observed state) before commit is
// deployed into root, env's backup directory (statedir.Dir.BackupDir),
// removes all but the newest keep backups there, and uploads the archive
// through up when it is not nil. The nginx files are copied as they
// are on disk, marker files included.
func Take(ctx context.Context, root string, o *state.Observed, env, commit, confDir string, keep int, up Uploader, now time.Time) (Result, error) {
	name := now.UTC().Format("20060102T150405.000Z") + "-" + commit[:min(12, len(commit))]
	dir := filepath.Join(root, name)
	files := map[string][]byte{}
	specs := Specs{Env: env, Taken: now.UTC(), Deploying: commit, Containers: []Container{}, Live: map[string]state.Color{}}
	for _, c := range o.Containers {
		specs.Containers = append(specs.Containers, Container{Name: c.Name, Service: c.Service, Color: c.Color, Commit: c.Commit,
			SpecHash: c.SpecHash, Spec: c.Spec, ImageID: c.ImageID, State: c.State})
	}
	for _, s := range o.Sites {
		files["nginx/"+filepath.Base(s.Path)] = s.Content
		specs.Live[s.Service] = s.Live
		marker := state.MarkerFile(env, s.Service)
		if _, err := os.Stat(filepath.Join(confDir, marker)); err == nil {
			files["nginx/"+marker] = nil
		}
	}
	js, err := json.MarshalIndent(specs, "", "  ")
	if err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	files["specs.json"] = append(js, '\n')

	tmp := dir + ".tmp"
	if err := os.MkdirAll(filepath.Join(tmp, "nginx"), 0o700); err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	for p, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, p), b, 0o600); err != nil {
			os.RemoveAll(tmp)
			return Result{}, fmt.Errorf("backup: %w", err)
		}
	}
	// A directory appears whole or not at all.
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	// Read it back: a backup that says "taken" holds what it claims.
	for p, b := range files {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || !bytes.Equal(got, b) {
			return Result{}, fmt.Errorf("backup: %s does not read back as written (%v)", filepath.Join(dir, p), err)
		}
	}
	res := Result{Dir: dir}
	if err := prune(root, keep); err != nil {
		return res, err
	}
	if up != nil {
		archive, err := tarGz(name, files)
		if err != nil {
			return res, fmt.Errorf("backup archive: %w", err)
		}
		url, err := up.Put(ctx, env+"/"+name+".tar.gz", archive)
		if err != nil {
			return res, fmt.Errorf("backup: %w", err)
		}
		res.URL = url
	}
	return res, nil
}

// List returns the backups in root, an env's backup directory, oldest first.
func List(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
			out = append(out, filepath.Join(root, e.Name()))
		}
	}
	sort.Strings(out) // names start with a sortable UTC time
	return out, nil
}

func prune(root string, keep int) error {
	all, err := List(root)
	if err != nil {
		return err
	}
	for len(all) > max(keep, 1) {
		if err := os.RemoveAll(all[0]); err != nil {
			return fmt.Errorf("remove old backup: %w", err)
		}
		all = all[1:]
	}
	return nil
}

func tarGz(name string, files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + p, Mode: 0o600, Size: int64(len(files[p])), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[p]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
