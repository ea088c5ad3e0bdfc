package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// inspectWorkers bounds the container inspections Observe runs at once:
// enough to hide an engine's latency, few enough that the connections are
// reused instead of one opened (and accepted by the engine) per container.
const inspectWorkers = 8

// leanReader reads the container list and inspections with only the
// fields the runtime uses. The official client decodes every field (host
// config, graph driver, mounts, ...) into fresh structures behind a
// tracing transport; on a no-op reconcile that decoding and the garbage it
// left were the largest part of the process's own work (perf record of
// bench/noop.sh's no-op diff at 30 services).
// It dials the engine the way the client does (its Dialer: the socket,
// TCP, TLS or a connection helper) and speaks the API version the client
// negotiated. One reader serves one Observe; close releases its
// connections.
type leanReader struct {
	cli  *client.Client
	base string // http://host/basePath/vX.Y
	hc   *http.Client
	tr   *http.Transport
}

// newLeanReader returns a reader for cli, whose API version must already
// be negotiated (Connect, or any call through cli, negotiates it).
func newLeanReader(cli *client.Client) *leanReader {
	// The Host header the client sends: a dummy name over a local socket
	// or pipe, the engine's address otherwise.
	host, basePath := client.DummyHost, ""
	if u, err := client.ParseHostURL(cli.DaemonHost()); err == nil {
		basePath = u.Path
		if u.Scheme != "unix" && u.Scheme != "npipe" {
			host = u.Host
		}
	}
	dial := cli.Dialer()
	tr := &http.Transport{
		// The dialer returns a connection already secured when the
		// engine wants TLS, so the requests themselves are plain HTTP.
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		MaxIdleConnsPerHost: inspectWorkers,
		// close releases the connections; this bounds a forgotten one.
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	base := "http://" + host + path.Join("/", basePath, "v"+strings.TrimPrefix(cli.ClientVersion(), "v"))
	return &leanReader{cli: cli, base: base, hc: &http.Client{Transport: tr}, tr: tr}
}

// close releases the reader's connections.
func (l *leanReader) close() { l.tr.CloseIdleConnections() }

// get decodes the JSON answer to GET p into v. An answer of 404 is an
// error that cerrdefs.IsNotFound recognises, as the client's are.
func (l *leanReader) get(ctx context.Context, p string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.base+p, nil)
	if err != nil {
		return err
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return fmt.Errorf("engine at %s: %w", l.cli.DaemonHost(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		if resp.StatusCode == http.StatusNotFound {
			return cerrdefs.ErrNotFound.WithMessage(e.Message)
		}
		return fmt.Errorf("engine answered %s: %s", resp.Status, e.Message)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", p, err)
	}
	return nil
}

// leanSummary is the part of a container list entry that Observe reads.
type leanSummary struct {
	ID     string `json:"Id"`
	Names  []string
	Labels map[string]string
	State  string
	Ports  []struct {
		PublicPort uint16
	}
}

// list is ContainerList of all containers with only what Observe reads
// filled in.
func (l *leanReader) list(ctx context.Context) ([]container.Summary, error) {
	var ls []leanSummary
	if err := l.get(ctx, "/containers/json?all=1", &ls); err != nil {
		return nil, err
	}
	out := make([]container.Summary, len(ls))
	for i, c := range ls {
		out[i] = container.Summary{ID: c.ID, Names: c.Names, Labels: c.Labels, State: container.ContainerState(c.State)}
		for _, p := range c.Ports {
			out[i].Ports = append(out[i].Ports, container.Port{PublicPort: p.PublicPort})
		}
	}
	return out, nil
}

// leanInspect is the part of a container inspection that toContainer
// reads.
type leanInspect struct {
	ID           string `json:"Id"`
	Name         string
	Image        string
	RestartCount int
	State        *struct {
		Status    string
		StartedAt string
	}
	Config *struct {
		Labels map[string]string
	}
	HostConfig *struct {
		Memory int64
	}
	NetworkSettings *struct {
		Networks map[string]*struct {
			Aliases []string
		}
	}
}

// inspect is ContainerInspect with only what toContainer reads filled in.
func (l *leanReader) inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	var li leanInspect
	if err := l.get(ctx, "/containers/"+url.PathEscape(id)+"/json", &li); err != nil {
		return container.InspectResponse{}, err
	}
	ci := container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{
		ID: li.ID, Name: li.Name, Image: li.Image, RestartCount: li.RestartCount,
	}}
	if li.State != nil {
		ci.State = &container.State{Status: container.ContainerState(li.State.Status), StartedAt: li.State.StartedAt}
	}
	if li.Config != nil {
		ci.Config = &container.Config{Labels: li.Config.Labels}
	}
	if li.HostConfig != nil {
		ci.HostConfig = &container.HostConfig{Resources: container.Resources{Memory: li.HostConfig.Memory}}
	}
	if li.NetworkSettings != nil {
		nets := make(map[string]*network.EndpointSettings, len(li.NetworkSettings.Networks))
		for name, ep := range li.NetworkSettings.Networks {
			if ep != nil {
				nets[name] = &network.EndpointSettings{Aliases: ep.Aliases}
			}
		}
		ci.NetworkSettings = &container.NetworkSettings{Networks: nets}
	}
	return ci, nil
}

// inspectAll inspects ids with at most inspectWorkers at once and calls
// each with the result (from several goroutines; each serialises itself).
func (l *leanReader) inspectAll(ctx context.Context, ids []string, each func(id string, ci container.InspectResponse, err error)) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(inspectWorkers, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				ci, err := l.inspect(ctx, id)
				each(id, ci, err)
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
}
