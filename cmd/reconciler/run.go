package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/notify"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

func init() { commands = append(commands, runCmd) }

// runFlags are the agent's flags.
type runFlags struct {
	env, repo, branch          string
	interval, healInterval     time.Duration
	noHeal                     bool
	listen                     string
	webhookSecretFile          string
	gitTokenFile               string
	sshKeyFile, knownHostsFile string
	verifySignatures           bool
	trustedKeysFile            string
	lockTimeout                time.Duration
	checks                     checkFlags
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
		Long: `run keeps a shallow mirror of one branch under --state-dir/git/NAME, fetches it every
--interval (±10% jitter) or at once on a signed GitHub webhook, and deploys each new
commit once: a commit that fails is recorded and not retried, a newer commit always is.
Every --heal-interval it converges the host to the applied commit again (--no-heal
only reports drift). Every attempt goes to the history (reconciler history).

Secrets: the git token comes from --git-token-file or $` + envGitToken + `, the webhook
secret from --webhook-secret-file or $` + envWebhookSecret + `; neither is ever logged.`,
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
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the GitHub webhook secret (or $"+envWebhookSecret+"); none disables /hooks/github")
	fl.StringVar(&f.gitTokenFile, "git-token-file", "", "file holding an https token for the repo (or $"+envGitToken+")")
	fl.StringVar(&f.sshKeyFile, "ssh-key-file", "", "private key for ssh:// and scp-style repos")
	fl.StringVar(&f.knownHostsFile, "known-hosts", "", "known_hosts file checked for ssh repos (default: ssh's)")
	fl.BoolVar(&f.verifySignatures, "verify-signatures", false, "deploy only commits signed by a key in --trusted-keys")
	fl.StringVar(&f.trustedKeysFile, "trusted-keys", "", "armored OpenPGP public keys trusted to sign commits")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 10*time.Minute, "how long a sync waits for a manual apply of the same env")
	f.checks.register(cmd, true)
	_ = cmd.MarkFlagRequired("env")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

// readSecret reads a secret from a file, else from an environment variable.
func readSecret(file, envVar string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return strings.TrimSpace(os.Getenv(envVar)), nil
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
	token, err := readSecret(f.gitTokenFile, envGitToken)
	if err != nil {
		return fmt.Errorf("--git-token-file: %w", err)
	}
	secret, err := readSecret(f.webhookSecretFile, envWebhookSecret)
	if err != nil {
		return fmt.Errorf("--webhook-secret-file: %w", err)
	}
	auth, err := gitrepo.Auth(repoURL, gitrepo.AuthOptions{Token: token, SSHKeyFile: f.sshKeyFile, KnownHostsFile: f.knownHostsFile})
	if err != nil {
		return err
	}

	dir, err := statedir.Open(g.stateDir)
	if err != nil {
		return err
	}
	// One agent per env and host: a second one fails at once.
	unlock, err := dir.Lock(ctx, f.env+".agent", "reconciler run --env "+f.env, 0)
	if err != nil {
		return fmt.Errorf("another agent runs for env %s: %w", f.env, err)
	}
	defer unlock()
	key, err := dir.HashKey()
	if err != nil {
		return err
	}
	mirror, err := gitrepo.OpenMirror(gitrepo.MirrorDir(g.stateDir, f.env), repoURL, f.branch, auth)
	if err != nil {
		return err
	}
	histPath := history.Path(g.stateDir, f.env)
	past, _, err := history.Read(histPath)
	if err != nil {
		return err
	}
	hist, err := history.Open(histPath)
	if err != nil {
		return err
	}
	defer hist.Close()

	s := &syncer{g: g, env: f.env, mirror: mirror, dir: dir, key: key, lockTimeout: f.lockTimeout, checks: f.checks, log: log}
	defer s.close()
	cfg := agent.Config{
		Env: f.env, Interval: f.interval, HealInterval: f.healInterval, Repair: !f.noHeal,
		Fetch: s.fetch, Sync: s.sync, History: hist, Past: past, Log: log,
	}
	if f.verifySignatures {
		cfg.Verify = func(_ context.Context, rev agent.Revision) error {
			c, err := mirror.Commit(rev.Hash)
			if err != nil {
				return err
			}
			fp, err := c.Verify(trusted)
			if err != nil {
				return err
			}
			log.Info("signature verified", zap.String("commit", shortCommit(rev.Hash)), zap.String("key", fp))
			return nil
		}
	}
	// Container resources are read from the engine at most once per
	// interval, when /metrics is scraped.
	cfg.Metrics = agent.NewMetrics()
	cfg.Metrics.Registry.MustRegister(agent.NewResourceCollector(f.env, func(ctx context.Context, env string) ([]state.Resources, error) {
		cli, err := s.docker(ctx)
		if err != nil {
			return nil, err
		}
		return docker.New(cli, nil).Resources(ctx, env)
	}, f.interval, log.Named("resources")))
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
		zap.Bool("verifySignatures", f.verifySignatures))

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

// syncer is the pipeline of one env for the agent: the commit from the
// mirror, load, resolve, observe, diff, apply, under the env's apply lock.
type syncer struct {
	g           *globals
	env         string
	mirror      *gitrepo.Mirror
	dir         *statedir.Dir
	key         []byte
	lockTimeout time.Duration
	checks      checkFlags
	log         *zap.Logger

	mu  sync.Mutex
	cli *client.Client // kept between syncs; reconnected after a failed ping

	// applied is the commit this process last applied; the agent runs one
	// sync at a time.
	applied string
	// looping are the crash-looping containers already reported, by
	// container ID.
	looping map[string]bool
}

// crashLoops returns the containers that restarted CrashLoopRestarts times
// or more, and notifies container.crash_looping once for each. The engine's
// restart policy (unless-stopped) keeps restarting them with its backoff;
// a deploy replaces them.
func (s *syncer) crashLoops(ctx context.Context, d *state.Desired, o *state.Observed) []string {
	var names []string
	var fresh []reconciler.EventService
	if s.looping == nil {
		s.looping = map[string]bool{}
	}
	for _, c := range o.Containers {
		if c.RestartCount < agent.CrashLoopRestarts {
			continue
		}
		names = append(names, c.Name)
		if !s.looping[c.ID] {
			s.looping[c.ID] = true
			fresh = append(fresh, reconciler.EventService{Name: c.Service, NewImage: c.Spec.Image})
			s.log.Warn("container is crash-looping", zap.String("container", c.Name), zap.Int("restarts", c.RestartCount), zap.String("state", c.State))
		}
	}
	if len(fresh) > 0 {
		n := notify.New(d.Notify, s.g.log.Named("notify"))
		n.Notify(context.WithoutCancel(ctx), reconciler.Event{Name: "container.crash_looping", Env: d.Env, Commit: d.Commit, Services: fresh,
			Error: fmt.Sprintf("%d container(s) restarted %d or more times: %s", len(fresh), agent.CrashLoopRestarts, strings.Join(names, ", "))})
		n.Close(15 * time.Second)
	}
	return names
}

func (s *syncer) fetch(ctx context.Context) (agent.Revision, error) {
	c, err := s.mirror.Fetch(ctx)
	if err != nil {
		return agent.Revision{}, err
	}
	return agent.Revision{Hash: c.Hash, Author: c.Author, Message: c.Message}, nil
}

// docker returns the engine client, connecting when needed.
func (s *syncer) docker(ctx context.Context) (*client.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli != nil {
		return s.cli, nil
	}
	cli, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	s.cli = cli
	return cli, nil
}

// dockerDown reports whether the engine does not answer; it drops the
// client so that the next sync reconnects.
func (s *syncer) dockerDown(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli == nil {
		return true
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.cli.Ping(pctx); err != nil {
		s.cli.Close()
		s.cli = nil
		return true
	}
	return false
}

func (s *syncer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli != nil {
		s.cli.Close()
	}
}

// sync implements agent.Config.Sync. Bad input (validation, a missing
// file, a plan error) fails the commit; an unreachable engine or a held
// lock is transient.
func (s *syncer) sync(ctx context.Context, rev agent.Revision, apply bool) (agent.Outcome, error) {
	var out agent.Outcome
	c, err := s.mirror.Commit(rev.Hash)
	if err != nil {
		return out, agent.Transient(err)
	}
	e, err := state.Load(c.FS, s.env)
	if err != nil {
		return out, listErrors(err)
	}
	cli, err := s.docker(ctx)
	if err != nil {
		return out, agent.Transient(err)
	}
	unlock, err := s.dir.Lock(ctx, s.env, "reconciler run --env "+s.env, s.lockTimeout)
	if err != nil {
		return out, agent.Transient(err)
	}
	defer unlock()
	h := newHost(cli, s.dir, s.key, e, s.g.log)
	d, o, p, err := h.plan(ctx, s.g, c, e)
	if err != nil {
		if s.dockerDown(ctx) {
			return out, agent.Transient(err)
		}
		return out, err
	}
	out.Services = services(o)
	out.CrashLooping = s.crashLoops(ctx, d, o)
	out.Changes = planLines(p)
	if !apply || p.Empty() {
		return out, nil
	}
	p.Author, p.Message = rev.Author, rev.Message // the mirror's view of the commit
	var checks *preflight.Checker
	if !s.checks.skip {
		if checks, err = s.checks.checker(ctx, s.g, h, e); err != nil {
			return out, err
		}
	}
	n := notify.New(d.Notify, s.g.log.Named("notify"))
	defer n.Close(15 * time.Second)
	// A sync of the commit already applied is a repair: it is announced as
	// drift.repaired, not as a deploy.
	heal := rev.Hash == s.applied
	var deployEvents reconciler.Notifier = n
	if heal {
		deployEvents = nil
	}
	ap := h.applier(s.g, deployEvents)
	ap.Log = s.log.Named("apply").With(zap.String("commit", shortCommit(rev.Hash)))
	backedUp, res, pruned, err := deploy(ctx, s.g, h, e, d, o, p, checks, ap)
	for _, t := range res.Watched {
		out.Requests += t.Requests
		out.Errors += t.Errors
	}
	if backedUp != "" {
		s.log.Info("backed up before the deploy", zap.String("to", backedUp))
	}
	if err == nil {
		if heal {
			e := p.Event("drift.repaired")
			e.Services = nil // every repaired subject, not only replaced services
			for _, c := range p.Changes {
				e.Services = append(e.Services, reconciler.EventService{Name: c.Subject})
			}
			n.Notify(context.WithoutCancel(ctx), e)
		}
		s.applied = rev.Hash
		if len(pruned.Removed) > 0 {
			s.log.Info("pruned images", zap.Int("removed", len(pruned.Removed)), zap.Int64("freedBytes", pruned.Freed))
		}
	}
	if err != nil && ctx.Err() == nil && s.dockerDown(ctx) {
		err = agent.Transient(err)
	}
	if ctx.Err() == nil {
		if o2, oerr := h.observe(ctx, d); oerr == nil {
			out.Services = services(o2)
		}
	}
	return out, err
}

// planLines is the plan as history steps: one line per change.
func planLines(p *reconciler.Plan) []string {
	var lines []string
	for _, c := range p.Changes {
		steps := make([]string, len(c.Steps))
		for i, st := range c.Steps {
			steps[i] = st.String()
		}
		line := fmt.Sprintf("%s %s: %s", c.Kind.Symbol(), c.Subject, c.Summary)
		if len(c.Reasons) > 0 {
			line += " (" + strings.Join(c.Reasons, "; ") + ")"
		}
		lines = append(lines, line+" [steps: "+strings.Join(steps, ", ")+"]")
	}
	return lines
}

// services is the observed containers for /status.
func services(o *state.Observed) []agent.Service {
	live := map[string]string{}
	for _, s := range o.Sites {
		live[s.Service] = s.Live
	}
	out := []agent.Service{}
	for _, c := range o.Containers {
		out = append(out, agent.Service{Service: c.Service, Container: c.Name, Color: c.Color, State: c.State,
			Image: c.Spec.Image, Commit: c.Commit, Live: live[c.Service] == c.Color})
	}
	return out
}
