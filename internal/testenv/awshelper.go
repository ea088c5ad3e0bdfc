package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildAWSHelper builds the AWS helper (cmd/reconciler-aws) into dir and
// returns its path, for the tests of the code that runs it
// (awscloud.Loader.Helper). Call it once per test binary, from TestMain:
// the build takes seconds when the SDK is in the build cache.
func BuildAWSHelper(dir string) (string, error) { return BuildAWSHelperRelease(dir, "") }

// BuildAWSHelperRelease is BuildAWSHelper with the release stamped in as
// the release build does (-X main.version=release); "" stamps nothing.
func BuildAWSHelperRelease(dir, release string) (string, error) {
	gobin, err := exec.LookPath("go") // go test puts its own first in PATH
	if err != nil {
		return "", fmt.Errorf("build reconciler-aws: no go command: %w", err)
	}
	out := filepath.Join(dir, "reconciler-aws")
	args := []string{"build", "-o", out}
	if release != "" {
		args = append(args, "-ldflags", "-X main.version="+release)
	}
	cmd := exec.Command(gobin, append(args, "github.com/developer-mesh/reconciler/cmd/reconciler-aws")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build reconciler-aws: %w\n%s", err, b)
	}
	return out, nil
}
