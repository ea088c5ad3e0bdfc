package docker

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker/docker/api/types/registry"
)

func TestRegistryAuthLookup(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cfg := configFile{Auths: map[string]registry.AuthConfig{
		"https://index.docker.io/v1/": {Auth: b64("hub:hubpw")},
		"ghcr.io":                     {Username: "gh", Password: "ghpw"},
		"http://127.0.0.1:5000/":      {Auth: b64("loc:al:pw")},
		"empty.example":               {},
		"bad.example":                 {Auth: "!!"},
	}}
	tests := []struct {
		host, user, pass, server string
		found, wantErr           bool
	}{
		{host: "docker.io", user: "hub", pass: "hubpw", server: dockerHubServer, found: true},
		{host: "ghcr.io", user: "gh", pass: "ghpw", server: "ghcr.io", found: true},
		{host: "127.0.0.1:5000", user: "loc", pass: "al:pw", server: "127.0.0.1:5000", found: true},
		{host: "empty.example"},
		{host: "quay.io"},
		{host: "bad.example", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			ac, found, err := cfg.lookup(tc.host)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %t", err, tc.wantErr)
			}
			if found != tc.found || ac.Username != tc.user || ac.Password != tc.pass || (found && ac.ServerAddress != tc.server) {
				t.Errorf("lookup = %+v %t, want %s/%s at %s, found %t", ac, found, tc.user, tc.pass, tc.server, tc.found)
			}
		})
	}
}

func TestRegistryAuthFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if got, err := registryAuth("ghcr.io"); err != nil || got != "" {
		t.Fatalf("no config file: %q %v, want anonymous", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"ghcr.io":{"username":"u","password":"p"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := registryAuth("ghcr.io")
	if err != nil || got == "" {
		t.Fatalf("auth = %q %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"reconciler-test-missing"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := registryAuth("ghcr.io"); err == nil {
		t.Errorf("a missing credential helper gave no error")
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/": "docker.io",
		"registry-1.docker.io":        "docker.io",
		"https://ghcr.io":             "ghcr.io",
		"127.0.0.1:5000/v2/":          "127.0.0.1:5000",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}
