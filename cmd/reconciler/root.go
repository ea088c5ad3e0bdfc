package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/developer-mesh/reconciler/internal/progress"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// Exit codes, decided here only (see docs/reference.md).
const (
	exitOK      = 0
	exitFailed  = 1
	exitChanges = 2 // diff: the host is not in sync
)

// exitError carries an exit code other than 1; a nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// version is stamped in by the release build (-ldflags -X main.version=...).
var version = "dev"

// globals are the flags every command shares.
type globals struct {
	logFormat string
	logLevel  string
	stateDir  string
	// secretEnvAllow, when set, are the only variables env: secrets read.
	secretEnvAllow []string
	stdout         io.Writer
	stderr         io.Writer
	log            *zap.Logger

	// aws loads the AWS configuration once per process, when first needed.
	aws *awscloud.Loader

	// progressEvery is how often a long step is logged when stderr is not
	// a terminal (--progress-interval).
	progressEvery time.Duration
	// term shows long steps as updating lines when stderr is an
	// interactive terminal and logs are console; nil otherwise.
	term *progress.Terminal
}

// secrets resolves secret references (services' and fleet.auth) as
// every command does: AWS through the helper, only when a reference needs
// it; file: never inside the state dir; env: within --secret-env-allow.
func (g *globals) secrets() secrets.OnDemand {
	return secrets.OnDemand{AWS: g.aws.Secrets, Guard: secrets.Guard{DenyDirs: []string{g.stateDir}, AllowEnv: g.secretEnvAllow}}
}

// progress is how the executor's long steps are shown: an updating line
// on a terminal, else a log line every progressEvery.
func (g *globals) progress() reconciler.Progress {
	if g.term != nil {
		return g.term
	}
	return &progress.Log{Log: g.log.Named("progress"), Every: g.progressEvery}
}

// envFlags are the flags that name a desired state.
type envFlags struct {
	env  string
	repo string
	ref  string
	git  gitAuthFlags // for a repo URL, as run has them
}

func (f *envFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.env, "env", "", "environment name: reads envs/NAME.yaml (required)")
	cmd.Flags().StringVar(&f.repo, "repo", ".", "git repository: a path or a URL")
	cmd.Flags().StringVar(&f.ref, "ref", "", "git revision of the desired state (default HEAD)")
	f.git.register(cmd)
	_ = cmd.MarkFlagRequired("env")
}

// commands are the subcommands; each file of a subcommand adds its
// constructor in an init func, so adding a command touches no other file.
var commands []func(*globals) *cobra.Command

// testAWSHelper is the AWS helper the tests built; "" (always, outside
// the tests) looks for reconciler-aws beside the executable, then in $PATH.
var testAWSHelper string

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr, aws: &awscloud.Loader{Helper: testAWSHelper, Release: version}}
	root := &cobra.Command{
		Use:           "reconciler",
		Short:         "Deploy Docker containers blue-green from desired state in git",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Annotations[annotOneShot] == "true" {
				oneShotGC()
			}
			logOut := stderr
			if g.logFormat == "console" && progress.IsTerminal(stderr) {
				// Log lines go above the line of the step under way.
				g.term = progress.NewTerminal(stderr)
				logOut = g.term
			}
			if g.progressEvery <= 0 {
				return fmt.Errorf("--progress-interval: want a duration greater than 0 such as 10s, got %s", g.progressEvery)
			}
			log, err := newLogger(g.logFormat, g.logLevel, logOut)
			if err != nil {
				return err
			}
			g.log = log
			// --env becomes part of paths in the state dir (locks, the
			// mirror, records): check it before any command uses it.
			if fl := cmd.Flags().Lookup("env"); fl != nil && fl.Changed {
				if err := state.CheckEnvName(fl.Value.String()); err != nil {
					return fmt.Errorf("--env: %w", err)
				}
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	defaultState := statedir.DefaultDir
	if v := os.Getenv("RECONCILER_STATE_DIR"); v != "" {
		defaultState = v
	}
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "console", "log format: console or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().DurationVar(&g.progressEvery, "progress-interval", progress.DefaultEvery, "how often a long step (pull, health wait, bake, canary step, drain) is logged when stderr is not a terminal")
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", defaultState, "directory for locks and host state (env RECONCILER_STATE_DIR)")
	root.PersistentFlags().StringSliceVar(&g.secretEnvAllow, "secret-env-allow", nil, "the only variables env: secrets may read (default: any but RECONCILER_* and the AWS credentials)")
	for _, c := range commands {
		root.AddCommand(c(g))
	}

	err := root.ExecuteContext(ctx)
	if g.log != nil {
		_ = g.log.Sync()
	}
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintln(stderr, "error:", ee.err)
		}
		return ee.code
	default:
		fmt.Fprintln(stderr, "error:", err)
		return exitFailed
	}
}

func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", level)
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = func(t time.Time, e zapcore.PrimitiveArrayEncoder) { e.AppendString(t.Format("15:04:05.000")) }
		cfg.EncodeCaller = nil
		cfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return nil, fmt.Errorf("--log-format: want console or json, got %q", format)
	}
	// Lock: notifications and the agent log from several goroutines, and w
	// (a test's buffer, say) need not be safe for concurrent writes.
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}
