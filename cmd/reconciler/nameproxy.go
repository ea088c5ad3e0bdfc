package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler/nameproxy"
)

func init() { commands = append(commands, nameProxyCmd) }

// nameProxyCmd is what runs inside a service's name proxy container
// (reconciler-proxy-<env>-<service>) when cmd/nameproxy is not installed
// beside reconciler (see docker.ProxyBinaryName), and in proxies created
// before it was; apply creates it, nobody runs it by hand. It takes the
// same flags as cmd/nameproxy.
func nameProxyCmd(g *globals) *cobra.Command {
	var p nameproxy.Proxy
	var check bool
	cmd := &cobra.Command{
		Use:    "name-proxy --service NAME --port N --marker PATH",
		Short:  "Forward a service's name to its live color (runs inside the name proxy container)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check {
				return nameproxy.Check(cmd.Context(), g.stdout, p.Port)
			}
			if p.Service == "" || p.Port <= 0 || p.Marker == "" {
				return errors.New("name-proxy: --service, --port and --marker are required")
			}
			p.Log = log.New(g.stderr, "name-proxy "+p.Service+": ", log.LstdFlags)
			p.Log.Printf("forwarding :%d to %s-<color>:%d, color from %s", p.Port, p.Service, p.Port, p.Marker)
			err := p.Serve(cmd.Context(), ":"+strconv.Itoa(p.Port), 30*time.Second)
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("name-proxy: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&p.Service, "service", "", "the service whose name this proxy holds")
	cmd.Flags().IntVar(&p.Port, "port", 0, "port to listen on and to forward to")
	cmd.Flags().StringVar(&p.Marker, "marker", "", "file holding the live color")
	cmd.Flags().BoolVar(&check, "check", false, "ask the proxy on --port which color it forwards to, print it and exit")
	return cmd
}
