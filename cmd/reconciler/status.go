package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler/httpprobe"
	"github.com/developer-mesh/reconciler/reconciler/nameproxy"
	"github.com/developer-mesh/reconciler/state"
)

// serviceStatus is one row of reconciler status.
type serviceStatus struct {
	Service      string    `json:"service"`
	DesiredImage string    `json:"desiredImage,omitempty"`
	RunningImage string    `json:"runningImage,omitempty"`
	Color        string    `json:"color,omitempty"`
	Container    string    `json:"container,omitempty"`
	State        string    `json:"state"`
	Health       string    `json:"health"`
	Commit       string    `json:"commit,omitempty"`
	Since        time.Time `json:"since,omitempty"`
	Others       []string  `json:"others,omitempty"` // other colors present (draining or leftover)
	// MemoryBytes is what the live container uses now; MemoryLimitBytes
	// its limit (the host's memory when it has none). 0 when unknown.
	MemoryBytes      int64 `json:"memoryBytes,omitempty"`
	MemoryLimitBytes int64 `json:"memoryLimitBytes,omitempty"`
}

func init() { commands = append(commands, statusCmd) }

func statusCmd(g *globals) *cobra.Command {
	var f envFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status --env NAME [--repo PATH|URL] [--ref REV] [-o text|json]",
		Short: "Show each service's desired and running image, color, health, commit and since when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o: want text or json, got %q", output)
			}
			ctx := cmd.Context()
			_, e, err := loadEnv(ctx, f)
			if err != nil {
				// Status is for looking at a host, often from outside the
				// deployment repo: show what runs without the desired state.
				g.log.Warn("desired state unavailable; showing what runs on the host (nginx files in the default confDir)", zap.Error(err))
				e = &state.Env{Environment: f.env}
				e.Default()
			}
			h, err := openHost(ctx, g, e)
			if err != nil {
				return err
			}
			var images []string
			for _, name := range state.SortedKeys(e.Services) {
				images = append(images, e.Services[name].Image)
			}
			snap, err := h.rt.Observe(ctx, e.Environment, images)
			if err != nil {
				return err
			}
			sites, err := h.edge.Observe(ctx, e.Environment, e.Nginx.ConfDir)
			if err != nil {
				return err
			}
			rows := statusRows(cmd, e, snap.Containers, sites)
			// Memory is a nicety: status still answers when stats do not.
			res, err := h.rt.Resources(ctx, e.Environment)
			if err != nil {
				g.log.Warn("reading memory use", zap.Error(err))
			}
			for i := range rows {
				for _, r := range res {
					if r.Name == rows[i].Container && r.Running {
						rows[i].MemoryBytes, rows[i].MemoryLimitBytes = r.MemoryBytes, r.MemoryLimitBytes
					}
				}
			}
			names, err := nameRows(g, e.Environment, snap.NameProxies)
			if err != nil {
				g.log.Warn("reading name proxies", zap.Error(err))
			}
			if output == "json" {
				b, err := json.MarshalIndent(map[string]any{"env": e.Environment, "services": rows, "names": names}, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, string(b))
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tCOLOR\tSTATE\tHEALTH\tMEMORY\tRUNNING IMAGE\tDESIRED IMAGE\tCOMMIT\tSINCE")
			for _, r := range rows {
				since := "-"
				if !r.Since.IsZero() {
					since = r.Since.UTC().Format(time.RFC3339) + " (" + time.Since(r.Since).Round(time.Second).String() + " ago)"
				}
				desired := r.DesiredImage
				if desired == r.RunningImage {
					desired = "(same)"
				}
				mem := "-"
				if r.MemoryLimitBytes > 0 {
					mem = humanBytes(r.MemoryBytes) + " / " + humanBytes(r.MemoryLimitBytes)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Service, dash(r.Color), r.State, r.Health, mem,
					dash(r.RunningImage), dash(desired), dash(shortCommit(r.Commit)), since)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, n := range names {
				fmt.Fprintf(g.stdout, "name %s: %s (%s) → %s\n", n.Service, n.Proxy, n.State, dash(n.Color))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func statusRows(cmd *cobra.Command, e *state.Env, ours []state.Container, sites []state.Site) []serviceStatus {
	names := map[string]bool{}
	for n := range e.Services {
		names[n] = true
	}
	for _, c := range ours {
		names[c.Service] = true
	}
	live := map[string]state.Color{}
	for _, s := range sites {
		live[s.Service] = s.Live
	}
	probe := httpprobe.New()
	var rows []serviceStatus
	for _, name := range state.SortedKeys(names) {
		svc, desired := e.Services[name]
		r := serviceStatus{Service: name, State: "absent", Health: "-"}
		switch {
		case desired:
			r.DesiredImage = svc.Image
		case len(e.Services) > 0:
			r.DesiredImage = "(not in env file)"
		}
		var cur *state.Container
		for i := range ours {
			c := &ours[i]
			if c.Service != name {
				continue
			}
			if cur == nil || c.Color == live[name] || (live[name] == "" && c.Running() && !cur.Running()) {
				if cur != nil {
					r.Others = append(r.Others, cur.Name)
				}
				cur = c
			} else {
				r.Others = append(r.Others, c.Name)
			}
		}
		if cur != nil {
			r.Color, r.Container, r.State = string(cur.Color), cur.Name, cur.State
			r.RunningImage, r.Commit, r.Since = cur.Spec.Image, cur.Commit, cur.StartedAt
			switch {
			case !cur.Running():
				r.Health = "down"
			case cur.HostPort == 0:
				r.Health = "running"
			default:
				r.Health = "healthy"
				path, timeout := state.DefaultHealthPath, state.DefaultTimeout
				if desired {
					path, timeout = svc.Health.Path, svc.Health.Timeout.D()
				}
				if err := probe.Check(cmd.Context(), cur.HostPort, path, timeout); err != nil {
					r.Health = "unhealthy"
				}
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// nameStatus is a service's name proxy and the color it forwards to.
type nameStatus struct {
	Service string `json:"service"`
	Proxy   string `json:"proxy"`
	State   string `json:"state"`
	Color   string `json:"color"`
}

// nameRows pairs env's proxies with the colors of their markers.
func nameRows(g *globals, env string, proxies []state.NameProxy) ([]nameStatus, error) {
	dir, err := namesDir(g.stateDir, env)
	if err != nil {
		return nil, err
	}
	colors, err := nameproxy.ReadColors(dir)
	if err != nil {
		return nil, err
	}
	out := []nameStatus{}
	for _, p := range proxies {
		out = append(out, nameStatus{Service: p.Service, Proxy: p.Name, State: p.State, Color: string(colors[p.Service])})
	}
	return out, nil
}
