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
func BuildAWSHelper(dir string) (string, error) {
	gobin, err := exec.LookPath("go") // go test puts its own first in PATH
	if err != nil {
		return "", fmt.Errorf("build reconciler-aws: no go command: %w", err)
	}
	out := filepath.Join(dir, "reconciler-aws")
	cmd := exec.Command(gobin, "build", "-o", out, "github.com/developer-mesh/reconciler/cmd/reconciler-aws")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build reconciler-aws: %w\n%s", err, b)
	}
	return out, nil
}
