package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadSecretSources: a flag's file wins and must exist; then the
// variable; then the systemd credential, whose absence means "not used".
func TestReadSecretSources(t *testing.T) {
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, "git-token"), []byte("from-cred\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const envVar = "RECONCILER_TEST_SECRET"
	tests := []struct {
		name, file, env, credDir, cred string
		want                           string
		wantErr                        bool
	}{
		{name: "flag file", file: file, env: "from-env", credDir: creds, cred: "git-token", want: "from-file"},
		{name: "flag names a missing file", file: file + ".missing", credDir: creds, cred: "git-token", wantErr: true},
		{name: "variable before credential", env: "from-env", credDir: creds, cred: "git-token", want: "from-env"},
		{name: "credential", credDir: creds, cred: "git-token", want: "from-cred"},
		{name: "credential not loaded", credDir: creds, cred: "webhook-secret", want: ""},
		{name: "no credentials directory", cred: "git-token", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envVar, tc.env)
			t.Setenv(credentialsDirEnv, tc.credDir)
			got, err := readSecret(tc.file, envVar, tc.cred)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("readSecret = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
