package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/reconciler/github"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/reconciler/notify"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

func init() { commands = append(commands, runCmd) }

// runFlags are the agent's flags.
type runFlags struct {
	env, repo, branch      string
	interval, healInterval time.Duration
	noHeal                 bool
	listen                 string
	webhookSecretFile      string
	git                    gitAuthFlags
	verifySignatures       bool
	allowRewrite           bool
	requireChecks          []string
	githubRepo, githubAPI  string
	trustedKeysFile        string
	lockTimeout            time.Duration
	checks                 checkFlags
	host                   string
}

// Environment variables that may carry secrets instead of files.
const (
	envGitToken      = "RECONCILER_GIT_TOKEN"
	envWebhookSecret = "RECONCILER_WEBHOOK_SECRET"
)

func runCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --env NAME --repo URL [--ref BRANCH] [--interval 1m] [--listen 127.0.0.1:9100]",
		Short: "Run the GitOps agent: deploy each new commit of the branch, repair drift, serve health and metrics",
		Long: `run keeps a mirror of one branch under --state-dir/git/NAME, fetches it every
--interval (±10% jitter) or at once on a signed GitHub webhook, and deploys each new
commit once: a commit that fails is recorded and not retried, a newer commit always is.
Only a tip that descends from the applied commit deploys: a force-push or an older
commit pushed again is refused (history, /status, deploy.refused) until the branch
descends from the applied commit again or the agent runs with --allow-rewrite.
With --verify-signatures every commit after the applied one up to the tip is verified.
Every --heal-interval it converges the host to the applied commit again (--no-heal
only reports drift). Every attempt goes to the history (reconciler history).

Secrets: the git token comes from --git-token-file, $` + envGitToken + ` or the systemd
credential ` + credGitToken + `; the webhook secret from --webhook-secret-file,
$` + envWebhookSecret + ` or the credential ` + credWebhookSecret + `. A credential that systemd
did not load means the feature is not used. Neither secret is ever logged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(cmd.Context(), g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.env, "env", "", "environment name: deploys envs/NAME.yaml (required)")
	fl.StringVar(&f.repo, "repo", "", "git remote: file://, https://, ssh:// or user@host:path; a local path means file:// (required)")
	fl.StringVar(&f.branch, "ref", "main", "branch to follow")
	fl.DurationVar(&f.interval, "interval", time.Minute, "poll period (jittered ±10%)")
	fl.DurationVar(&f.healInterval, "heal-interval", time.Minute, "drift check period; 0 disables")
	fl.BoolVar(&f.noHeal, "no-heal", false, "report drift without repairing it")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9100", "address of /healthz, /readyz, /status, /metrics and /hooks/github; empty disables")
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the GitHub webhook secret (or $"+envWebhookSecret+", or the systemd credential "+credWebhookSecret+"); none disables /hooks/github")
	f.git.register(cmd)
	fl.BoolVar(&f.verifySignatures, "verify-signatures", false, "deploy only commits signed by a key in --trusted-keys")
	fl.BoolVar(&f.allowRewrite, "allow-rewrite", false, "deploy a tip that does not descend from the applied commit (a force-push, an older commit); with --verify-signatures only that tip is verified")
	fl.StringVar(&f.trustedKeysFile, "trusted-keys", "", "armored OpenPGP public keys trusted to sign commits")
	fl.StringSliceVar(&f.requireChecks, "require-checks", nil, "deploy only commits whose GitHub check runs or statuses of these names passed (e.g. test,lint); waits while they run, refuses when one failed; the API token is the git token")
	fl.StringVar(&f.githubRepo, "github-repo", "", "owner/name whose checks --require-checks reads (default: from a github.com --repo)")
	fl.StringVar(&f.githubAPI, "github-api", github.DefaultAPI, "GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3)")
	fl.StringVar(&f.host, "host", "", "this host's name in the env file's fleet.hosts (an env with a fleet section needs it)")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 10*time.Minute, "how long a sync waits for a manual apply of the same env")
	f.checks.register(cmd, true)
	_ = cmd.MarkFlagRequired("env")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

func runAgent(ctx context.Context, g *globals, f runFlags) error {
	log := g.log.Named("agent").With(zap.String("env", f.env))
	if f.interval <= 0 {
		return fmt.Errorf("--interval: want a positive duration, got %s", f.interval)
	}
	repoURL := f.repo
	if !gitrepo.IsURL(repoURL) {
		abs, err := filepath.Abs(repoURL)
		if err != nil {
			return fmt.Errorf("--repo: %w", err)
		}
		repoURL = "file://" + abs
	}
	var trusted string
	if f.verifySignatures {
		if f.trustedKeysFile == "" {
			return errors.New("--verify-signatures needs --trusted-keys FILE")
		}
		b, err := os.ReadFile(f.trustedKeysFile)
		if err != nil {
			return fmt.Errorf("--trusted-keys: %w", err)
		}
		trusted = string(b)
	}
	authOpts, err := f.git.options()
	if err != nil {
		return err
	}
	var ci *github.Checks
	if len(f.requireChecks) > 0 {
		repo := f.githubRepo
		if repo == "" {
			repo = github.RepoFromURL(f.repo)
		}
		if repo == "" {
			return errors.New("--require-checks needs --github-repo OWNER/NAME (--repo is not a github.com URL)")
		}
		ci = &github.Checks{API: f.githubAPI, Repo: repo, Token: authOpts.Token, Required: f.requireChecks}
	}
	secret, err := readSecret(f.webhookSecretFile, envWebhookSecret, credWebhookSecret)
	if err != nil {
		return fmt.Errorf("--webhook-secret-file: %w", err)
	}
	auth, err := gitrepo.Auth(repoURL, authOpts)
	if err != nil {
		return err
	}

	dir, err := statedir.Open(g.stateDir)
	if err != nil {
		return err
	}
	// One agent per env and host: a second one fails at once.
	unlock, err := dir.Lock(ctx, f.env+".agent", "reconciler run --env "+f.env, 0)
	if errors.Is(err, statedir.ErrLocked) {
		return fmt.Errorf("another agent runs for env %s: %w", f.env, err)
	}
	if err != nil {
		// A read-only or unwritable state dir, say: not another agent.
		return fmt.Errorf("agent lock for env %s in state dir %s: %w", f.env, g.stateDir, err)
	}
	defer unlock()
	m, err := gitrepo.OpenMirror(dir.MirrorDir(f.env), repoURL, f.branch, auth)
	if err != nil {
		return err
	}
	histPath := dir.HistoryPath(f.env)
	past, _, err := history.Read(histPath)
	if err != nil {
		return err
	}
	hist, err := history.Open(histPath)
	if err != nil {
		return err
	}
	defer hist.Close()

	conn := &docker.Conn{}
	defer conn.Close()
	var cur *rig // the host of the sync under way (syncs run one at a time)
	s := &host.Syncer{
		Env: f.env, Mirror: mirror{m}, Dir: dir, LockTimeout: f.lockTimeout,
		Open: func(ctx context.Context, e *state.Env) (*host.Host, error) {
			cli, err := conn.Get(ctx)
			if err != nil {
				return nil, err
			}
			if cur, err = newHost(cli, g, dir, e); err != nil {
				return nil, err
			}
			return cur.Host, nil
		},
		Down: conn.Down,
		Notifier: func(targets []state.Notify) host.Notifier {
			return notify.New(targets, g.log.Named("notify")).WithMailer(awscloud.Mailer{Loader: g.aws})
		},
		Cloud: cloud{awscloud.Cloud{Loader: g.aws}}, Log: log,
	}
	if !f.checks.skip {
		s.Checks = func(ctx context.Context, _ *host.Host, e *state.Env) (host.Checks, error) {
			return f.checks.checker(ctx, g, cur, e)
		}
	}
	// An env with a fleet section deploys in its fleet's order (a
	// pass-through for one without).
	gate := fleetGate(g, f.env, f.host, max(f.interval, f.healInterval), func(rev agent.Revision, env string) (*state.Env, error) {
		c, err := m.Commit(rev.Hash)
		if err != nil {
			return nil, err
		}
		return state.Load(c.FS, env)
	}, s.Sync)
	cfg := agent.Config{
		Env: f.env, Interval: f.interval, HealInterval: f.healInterval, Repair: !f.noHeal,
		Fetch: s.Fetch, Sync: gate.Sync, History: hist, Past: past, Log: log,
		Fleet: func() any {
			if st := gate.Status(); st.Fleet != nil || st.StoreError != "" || st.Waiting != "" {
				return st
			}
			return nil
		},
		AllowRewrite: f.allowRewrite, Refused: s.Refused,
		// Between syncs the agent holds only its mirror's and the
		// server's state; what a sync allocated (parsed env, engine
		// answers, git objects) goes back to the system at once instead
		// of through the runtime's slow scavenger: the idle agent's RSS
		// (bench/agent-idle.sh). A collection of this small heap every
		// interval costs about a millisecond.
		Idle: debug.FreeOSMemory,
		Ancestry: func(ctx context.Context, applied, tip string) ([]agent.Revision, error) {
			cs, err := m.Ancestry(ctx, applied, tip)
			if errors.Is(err, gitrepo.ErrNotDescendant) {
				return nil, fmt.Errorf("%w: %w", agent.ErrNotDescendant, err)
			}
			if err != nil {
				return nil, err
			}
			revs := make([]agent.Revision, len(cs))
			for i, c := range cs {
				revs[i] = agent.Revision{Hash: c.Hash, Author: c.Author, Message: c.Message}
			}
			return revs, nil
		},
	}
	if f.verifySignatures {
		cfg.Verify = func(_ context.Context, rev agent.Revision) error {
			c, err := m.Commit(rev.Hash)
			if err != nil {
				return err
			}
			fp, err := c.Verify(trusted)
			if err != nil {
				return err
			}
			log.Info("signature verified", zap.String("commit", state.ShortHash(rev.Hash)), zap.String("key", fp))
			return nil
		}
	}
	if ci != nil {
		cfg.RequireCI = func(ctx context.Context, rev agent.Revision) error {
			err := ci.Verify(ctx, rev.Hash)
			if errors.Is(err, github.ErrPending) || errors.Is(err, github.ErrAPI) {
				return agent.Transient(err)
			}
			return err
		}
	}
	// Container resources are read from the engine at most once per
	// interval, when /metrics is scraped.
	cfg.Metrics = agent.NewMetrics()
	cfg.Metrics.Registry.MustRegister(agent.NewResourceCollector(f.env, func(ctx context.Context, env string) ([]state.Resources, error) {
		cli, err := conn.Get(ctx)
		if err != nil {
			return nil, err
		}
		return docker.New(cli, nil).Resources(ctx, env)
	}, f.interval, log.Named("resources")))
	cfg.Metrics.Registry.MustRegister(fleet.NewCollector(f.env, gate))
	a := agent.New(cfg)

	var srv *http.Server
	srvDone := make(chan error, 1)
	if f.listen != "" {
		l, err := net.Listen("tcp", f.listen)
		if err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		srv = &http.Server{Handler: a.Handler(agent.WebhookConfig{Secret: []byte(secret), Branch: f.branch}),
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
		go func() { srvDone <- srv.Serve(l) }()
		log.Info("listening", zap.String("addr", l.Addr().String()), zap.Bool("webhook", secret != ""))
	}
	log.Info("agent started", zap.String("repo", gitrepo.Redact(repoURL)), zap.String("branch", f.branch),
		zap.Duration("interval", f.interval), zap.Duration("healInterval", f.healInterval), zap.Bool("heal", !f.noHeal),
		zap.Bool("verifySignatures", f.verifySignatures), zap.Bool("allowRewrite", f.allowRewrite), zap.Strings("requireChecks", f.requireChecks))

	runErr := a.Run(ctx)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
		if err := <-srvDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("http server", zap.Error(err))
		}
	}
	log.Info("agent stopped")
	return runErr
}

// mirror is the agent's git mirror as the application layer reads it.
type mirror struct{ m *gitrepo.Mirror }

func (m mirror) Fetch(ctx context.Context) (host.Source, error) {
	c, err := m.m.Fetch(ctx)
	if err != nil {
		return host.Source{}, err
	}
	return source(c), nil
}

func (m mirror) Commit(hash string) (host.Source, error) {
	c, err := m.m.Commit(hash)
	if err != nil {
		return host.Source{}, err
	}
	return source(c), nil
}
