package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// credentialsDirEnv names the directory where systemd puts a unit's
// LoadCredential= files (%d in the unit).
const credentialsDirEnv = "CREDENTIALS_DIRECTORY"

// Names of the systemd credentials (LoadCredential=NAME:PATH) that run and
// apply look up when no flag or variable gives the secret.
const (
	credGitToken      = "git-token"
	credWebhookSecret = "webhook-secret"
)

// readSecret returns a secret, from the first source that is set:
//   - file (a flag): a missing or unreadable file is an error, since the
//     operator named it;
//   - the environment variable envVar;
//   - the systemd credential cred in $CREDENTIALS_DIRECTORY: a credential
//     that is absent means "not used", so commenting out its
//     LoadCredential= line in the unit turns the feature off instead of
//     stopping the agent at every start.
//
// "" means no secret. The value is never logged or put into an error.
func readSecret(file, envVar, cred string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if v := strings.TrimSpace(os.Getenv(envVar)); v != "" {
		return v, nil
	}
	dir := os.Getenv(credentialsDirEnv)
	if dir == "" || cred == "" {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(dir, cred))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read credential %s: %w", cred, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// gitAuthFlags are the flags that authenticate to a git remote; run and
// apply share them.
type gitAuthFlags struct {
	tokenFile      string
	sshKeyFile     string
	knownHostsFile string
}

func (f *gitAuthFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.tokenFile, "git-token-file", "", "file holding an https token for the repo (or $"+envGitToken+", or the systemd credential "+credGitToken+")")
	fl.StringVar(&f.sshKeyFile, "ssh-key-file", "", "private key for ssh:// and scp-style repos")
	fl.StringVar(&f.knownHostsFile, "known-hosts", "", "known_hosts file checked for ssh repos (default: ssh's)")
}

// options reads the token (see readSecret) and returns the auth options.
func (f *gitAuthFlags) options() (gitrepo.AuthOptions, error) {
	token, err := readSecret(f.tokenFile, envGitToken, credGitToken)
	if err != nil {
		return gitrepo.AuthOptions{}, fmt.Errorf("--git-token-file: %w", err)
	}
	return gitrepo.AuthOptions{Token: token, SSHKeyFile: f.sshKeyFile, KnownHostsFile: f.knownHostsFile}, nil
}

// auth returns the git auth method for repo: nil for a local path.
func (f *gitAuthFlags) auth(repo string) (transport.AuthMethod, error) {
	if !gitrepo.IsURL(repo) {
		return nil, nil
	}
	o, err := f.options()
	if err != nil {
		return nil, err
	}
	return gitrepo.Auth(repo, o)
}
