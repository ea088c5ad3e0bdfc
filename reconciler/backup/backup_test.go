package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

type memUploader map[string][]byte

func (m memUploader) Put(_ context.Context, key string, body []byte) (string, error) {
	m[key] = body
	return "mem://" + key, nil
}

func TestTakeKeepsLastN(t *testing.T) {
	root, confDir := filepath.Join(t.TempDir(), "backups", "prod"), t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, state.MarkerFile("prod", "api")), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o := &state.Observed{
		Containers: []state.Container{{Name: "prod-api-green", Service: "api", Color: "green", Commit: "c0ffee", SpecHash: "h1",
			Spec: state.Summary{Image: "app:v1", Secrets: map[string]string{"DB": "hmac"}}, State: "running"}},
		Sites: []state.Site{{Service: "api", Path: filepath.Join(confDir, "prod-api.conf"), Content: []byte("upstream x {}\n"), Live: "green"}},
	}
	up := memUploader{}
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var last Result
	for i := 0; i < 4; i++ {
		r, err := Take(context.Background(), root, o, "prod", "0123456789abcdef", confDir, 3, up, start.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	all, err := List(root)
	if err != nil || len(all) != 3 {
		t.Fatalf("backups = %v, %v; want the last 3", all, err)
	}
	if filepath.Base(all[2]) != "20250102T030705.000Z-0123456789ab" || all[2] != last.Dir {
		t.Errorf("newest backup %s, result %s", all[2], last.Dir)
	}
	if b, _ := os.ReadFile(filepath.Join(last.Dir, "nginx", "prod-api.conf")); string(b) != "upstream x {}\n" {
		t.Errorf("nginx file = %q", b)
	}
	if _, err := os.Stat(filepath.Join(last.Dir, "nginx", "prod-api.green")); err != nil {
		t.Errorf("marker not backed up: %v", err)
	}
	var specs Specs
	b, _ := os.ReadFile(filepath.Join(last.Dir, "specs.json"))
	if err := json.Unmarshal(b, &specs); err != nil || len(specs.Containers) != 1 || specs.Live["api"] != "green" || specs.Containers[0].Spec.Secrets["DB"] != "hmac" {
		t.Fatalf("specs.json = %s (%v)", b, err)
	}
	if len(up) != 4 || last.URL != "mem://prod/20250102T030705.000Z-0123456789ab.tar.gz" {
		t.Fatalf("uploads %d, url %s", len(up), last.URL)
	}
	zr, err := gzip.NewReader(bytes.NewReader(up["prod/20250102T030705.000Z-0123456789ab.tar.gz"]))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if len(names) != 3 {
		t.Errorf("archive holds %v", names)
	}
}
