package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/termtext"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/reconciler/fleet/redisstore"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, fleetCmd) }

func fleetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Look at the hosts of an env that runs on several (the env file's fleet section)",
		// Runnable, so that cobra checks the arguments: a command with
		// subcommands and no RunE prints its help for any word, exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var f envFlags
	var output string
	status := &cobra.Command{
		Use:   "status --env NAME [--repo PATH] [-o text|json]",
		Short: "Show each host's applied commit, last result, health, the rollout lease holder and any halt, from the coordination store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o: want text or json, got %q", output)
			}
			src, e, err := loadEnv(cmd.Context(), f)
			if err != nil {
				return err
			}
			if e.Fleet == nil {
				return fmt.Errorf("%s has no fleet section: the env runs on one host (see reconciler status)", state.EnvPath(e.Environment))
			}
			st, err := openFleetStore(cmd.Context(), g, e)
			if err != nil {
				return err
			}
			defer st.Close()
			snap, err := st.Snapshot(cmd.Context(), e.Fleet.Hosts, e.Fleet.Parallel)
			if err != nil {
				return err
			}
			var region *regionView
			if e.Fleet.After != "" {
				region = regionStatus(cmd.Context(), g, src, e)
			}
			return printFleet(g, e, snap, region, output == "json")
		},
	}
	f.register(status)
	status.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(status)
	return cmd
}

// fleetView is fleet status -o json.
type fleetView struct {
	Env    string        `json:"env"`
	Hosts  []fleetHost   `json:"hosts"`
	Leases []fleet.Lease `json:"leases"`
	Halt   *fleet.Halt   `json:"halt,omitempty"`
	Store  string        `json:"store"`
	// After is the region before this one (fleet.after) and whether
	// this env may start the commit read, as its hosts' agents see it.
	After *regionView `json:"after,omitempty"`
}

// regionView is the turn of a region env with fleet.after.
type regionView struct {
	Env    string `json:"env"`
	Commit string `json:"commit"`
	// Waiting is why this env's hosts may not start Commit yet, "" when
	// the region before has it healthy past fleet.afterBake.
	Waiting string `json:"waiting,omitempty"`
}

// regionStatus reads the region before e (fleet.after) at the commit src
// as e's agents do, and says whether e may start that commit.
func regionStatus(ctx context.Context, g *globals, src host.Source, e *state.Env) *regionView {
	v := &regionView{Env: e.Fleet.After, Commit: src.Hash}
	gate := fleetGate(g, e.Environment, "", time.Minute, func(_ agent.Revision, env string) (*state.Env, error) {
		return state.Load(src.FS, env)
	}, nil)
	v.Waiting = gate.RegionTurn(ctx, agent.Revision{Hash: src.Hash}, e.Fleet)
	return v
}

type fleetHost struct {
	Host       string        `json:"host"`
	Canary     bool          `json:"canary,omitempty"`
	Applied    string        `json:"appliedCommit"`
	LastResult *fleet.Result `json:"lastResult,omitempty"`
	Health     string        `json:"health"` // healthy, unhealthy or unknown
	Problem    string        `json:"problem,omitempty"`
	LeaseSlot  *int          `json:"leaseSlot,omitempty"`
}

func printFleet(g *globals, e *state.Env, snap fleet.Snapshot, region *regionView, asJSON bool) error {
	v := fleetView{Env: e.Environment, Leases: snap.Leases, Halt: snap.Halt, Store: e.Fleet.Store, After: region}
	for _, h := range e.Fleet.Hosts {
		hs := snap.Hosts[h]
		fh := fleetHost{Host: h, Canary: h == e.Fleet.Canary, Applied: hs.Applied.Commit, Health: "unknown"}
		if hs.Last.Commit != "" {
			last := hs.Last
			fh.LastResult = &last
		}
		if hs.Health != nil {
			fh.Health, fh.Problem = "healthy", hs.Health.Problem
			if !hs.Health.Healthy {
				fh.Health = "unhealthy"
			}
		}
		for _, l := range snap.Leases {
			if holderHost(l.Holder) == h {
				slot := l.Slot
				fh.LeaseSlot = &slot
			}
		}
		v.Hosts = append(v.Hosts, fh)
	}
	if asJSON {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(g.stdout, string(b))
		return nil
	}
	// The store's text (results, errors, holders) is shown with its
	// control characters escaped: a deploy error quoting a program's
	// output, or a value written in the store, cannot move the cursor,
	// clear the screen or add lines of its own to the table.
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tAPPLIED\tLAST RESULT\tHEALTH\tLEASE")
	for _, h := range v.Hosts {
		name := h.Host
		if h.Canary {
			name += " (canary)"
		}
		last := "-"
		if r := h.LastResult; r != nil {
			last = fmt.Sprintf("%s %s %s", r.Result, state.ShortHash(r.Commit), r.At.UTC().Format(time.RFC3339))
		}
		health := h.Health
		if h.Problem != "" {
			health += ": " + h.Problem
		}
		lease := "-"
		for _, l := range v.Leases {
			if holderHost(l.Holder) == h.Host {
				lease = fmt.Sprintf("held by %s (token %d)", l.Holder, l.Token)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, termtext.Escape(dash(state.ShortHash(h.Applied))), termtext.Escape(last), termtext.Escape(health), termtext.Escape(lease))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if v.Halt != nil {
		fmt.Fprintf(g.stdout, "halted: the rollout of %s stopped at %s (%s); a newer commit clears it\n",
			termtext.Escape(state.ShortHash(v.Halt.Commit)), termtext.Escape(v.Halt.Host), termtext.Escape(v.Halt.Error))
	}
	if r := v.After; r != nil {
		if r.Waiting != "" {
			fmt.Fprintf(g.stdout, "region: after %s: this env does not start %s yet: %s\n", r.Env, state.ShortHash(r.Commit), termtext.Escape(r.Waiting))
		} else {
			fmt.Fprintf(g.stdout, "region: after %s: %s runs %s healthy past fleet.afterBake; this env may start it\n", r.Env, r.Env, state.ShortHash(r.Commit))
		}
	}
	return nil
}

// holderHost is the host of a lease holder "host/pid".
func holderHost(holder string) string {
	for i := range len(holder) {
		if holder[i] == '/' {
			return holder[:i]
		}
	}
	return holder
}

// openFleetStore connects to e's coordination store, with the password of
// fleet.auth resolved like any secret reference, and pings it.
func openFleetStore(ctx context.Context, g *globals, e *state.Env) (*redisstore.Store, error) {
	opts := redisstore.Options{URL: e.Fleet.Store, Username: e.Fleet.Username}
	if ref, ok := e.Fleet.AuthRef(); ok {
		g.aws.Use(awsSettings(e))
		vals, err := g.secrets().Resolve(ctx, []state.SecretRef{ref})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", fleet.ErrAuth, err)
		}
		if vals[ref] == "" {
			// No AUTH would be sent: a store that wants one refuses every
			// command, one that does not is open to anyone.
			return nil, fmt.Errorf("%w: %s is empty; want the store's password there, or no fleet.auth for a store without AUTH", fleet.ErrAuth, ref)
		}
		opts.Password = vals[ref]
	}
	st, err := redisstore.Open(e.Environment, opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("coordination store %s: %w", e.Fleet.Store, err)
	}
	return st, nil
}

// fleetGate wraps the agent's sync in its env's fleet (a pass-through for
// an env without one).
// load reads an env file at a revision: this env's, or (fleet.after) the
// region's before it.
func fleetGate(g *globals, env, hostName string, interval time.Duration, load func(rev agent.Revision, env string) (*state.Env, error), inner fleet.SyncFunc) *fleet.Gate {
	return &fleet.Gate{Env: env, Host: hostName, Inner: inner,
		Load:    func(rev agent.Revision) (*state.Env, error) { return load(rev, env) },
		LoadEnv: load,
		OpenEnv: func(ctx context.Context, other *state.Env) (fleet.Store, error) {
			st, err := openFleetStore(ctx, g, other)
			if err != nil {
				return nil, err
			}
			return st, nil
		},
		HealthTTL: 3 * max(interval, time.Minute), Log: g.log.Named("fleet").With(zap.String("env", env), zap.String("host", hostName)),
		Open: func(ctx context.Context, e *state.Env) (fleet.Store, error) {
			st, err := openFleetStore(ctx, g, e)
			if err != nil {
				return nil, err
			}
			return st, nil
		}}
}
