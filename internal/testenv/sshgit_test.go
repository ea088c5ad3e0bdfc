package testenv

import "testing"

// TestUploadPackPath: only git-upload-pack of a path in the served
// repository runs; other commands and paths outside it are refused.
func TestUploadPackPath(t *testing.T) {
	s := &sshGitServer{root: "/srv/repo.git"}
	for _, tc := range []struct {
		command, want string
		ok            bool
	}{
		{"git-upload-pack '/srv/repo.git'", "/srv/repo.git", true},
		{"git-upload-pack '/srv/repo.git/'", "/srv/repo.git", true},
		{"git-upload-pack /srv/repo.git", "/srv/repo.git", true},
		{"git-upload-pack '/srv/other.git'", "", false},
		{"git-upload-pack '/srv/repo.git/../other.git'", "", false},
		{"git-upload-pack 'repo.git'", "", false},
		{`git-upload-pack '/srv/repo.git'\''; rm -rf /'`, "", false},
		{"git-receive-pack '/srv/repo.git'", "", false},
		{"sh -c id", "", false},
	} {
		got, err := s.uploadPackPath(tc.command)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("uploadPackPath(%q) = %q, %v; want %q, ok %v", tc.command, got, err, tc.want, tc.ok)
		}
	}
}
