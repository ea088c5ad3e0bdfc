package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	credclient "github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"go.uber.org/zap"
)

// dockerHubServer is the key under which the Docker CLI stores Docker Hub
// credentials, and the server URL its credential helpers know it by.
const dockerHubServer = "https://index.docker.io/v1/"

// Pull implements reconciler.Runtime. Credentials for the registry of ref
// (docker.io when the ref names none) come from the Docker config
// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json): a credHelpers
// entry for the registry, else credsStore, else the auths entry; none means
// an anonymous pull. A ref without tag or digest means :latest.
func (r *Runtime) Pull(ctx context.Context, ref string) (string, error) {
	return r.PullProgress(ctx, ref, nil)
}

// PullProgress implements reconciler.ProgressPuller: Pull, calling report
// (when not nil) with the bytes of the image's layers downloaded so far
// and their total as far as the engine has announced it.
func (r *Runtime) PullProgress(ctx context.Context, ref string, report func(done, total int64)) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("pull %s: invalid image reference: %w", ref, err)
	}
	host := reference.Domain(named)
	auth, err := registryAuth(host)
	if err != nil {
		return "", fmt.Errorf("pull %s: credentials for %s: %w", ref, host, err)
	}
	r.log.Debug("pull image", zap.String("ref", ref), zap.String("registry", host), zap.Bool("auth", auth != ""))

	hint := fmt.Sprintf("check that the image and tag exist, that the registry %s is reachable from this host and that the Docker config has valid credentials for %s", host, host)
	rc, err := r.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return "", fmt.Errorf("pull %s: %w (%s)", ref, err, hint)
	}
	defer rc.Close()
	if err := readStreamProgress(rc, report); err != nil {
		return "", fmt.Errorf("pull %s: %w (%s)", ref, err, hint)
	}
	img, err := r.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("pull %s: inspect after pull: %w", ref, err)
	}
	return img.ID, nil
}

// readStream reads a JSON message stream to its end and returns the first
// error reported in it.
func readStream(rd io.Reader) error { return readStreamProgress(rd, nil) }

// layerBytes are the downloaded and total bytes of one layer of a pull.
type layerBytes struct{ done, total int64 }

// readStreamProgress is readStream, calling report (when not nil) after
// each message that moved a layer's download, with the sums over layers.
func readStreamProgress(rd io.Reader, report func(done, total int64)) error {
	dec := json.NewDecoder(rd)
	layers := map[string]layerBytes{}
	for {
		// The error fields of a progress message (the engine sets
		// errorDetail, and error, the plain form, as well) and a layer's
		// download progress.
		var m struct {
			Detail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
			Error    string `json:"error"`
			ID       string `json:"id"`
			Status   string `json:"status"`
			Progress *struct {
				Current int64 `json:"current"`
				Total   int64 `json:"total"`
			} `json:"progressDetail"`
		}
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read progress: %w", err)
		}
		if m.Detail != nil && m.Detail.Message != "" {
			return errors.New(m.Detail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if report == nil || m.ID == "" {
			continue
		}
		l := layers[m.ID]
		switch {
		case m.Status == "Downloading" && m.Progress != nil:
			l = layerBytes{done: m.Progress.Current, total: max(m.Progress.Total, l.total)}
		case m.Status == "Download complete":
			l.done = l.total
		default:
			continue
		}
		layers[m.ID] = l
		var sum layerBytes
		for _, b := range layers {
			sum.done += b.done
			sum.total += b.total
		}
		report(sum.done, sum.total)
	}
}

// configFile is the part of the Docker CLI's config.json that holds
// registry credentials.
type configFile struct {
	Auths       map[string]registry.AuthConfig `json:"auths"`
	CredsStore  string                         `json:"credsStore"`
	CredHelpers map[string]string              `json:"credHelpers"`
}

// configPath returns the Docker CLI config file's path.
func configPath() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// registryAuth returns the encoded X-Registry-Auth value for host, or ""
// for an anonymous pull.
func registryAuth(host string) (string, error) {
	p := configPath()
	if p == "" {
		return "", nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read docker config: %w", err)
	}
	var cfg configFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("docker config %s: %w", p, err)
	}
	ac, ok, err := cfg.lookup(host)
	if err != nil || !ok {
		return "", err
	}
	return registry.EncodeAuthConfig(ac)
}

// lookup finds the credentials for host the way the Docker CLI does.
func (cfg configFile) lookup(host string) (registry.AuthConfig, bool, error) {
	server := host
	if host == "docker.io" {
		server = dockerHubServer
	}
	helper := cfg.CredsStore
	for k, h := range cfg.CredHelpers {
		if normalizeHost(k) == host {
			helper = h
		}
	}
	if helper != "" {
		c, err := credclient.Get(credclient.NewShellProgramFunc("docker-credential-"+helper), server)
		switch {
		case credentials.IsErrCredentialsNotFound(err):
			// Fall through to the auths entries, as the CLI does.
		case err != nil:
			return registry.AuthConfig{}, false, fmt.Errorf("credential helper docker-credential-%s: %w", helper, err)
		default:
			ac := registry.AuthConfig{ServerAddress: server, Username: c.Username, Password: c.Secret}
			if c.Username == "<token>" {
				ac = registry.AuthConfig{ServerAddress: server, IdentityToken: c.Secret}
			}
			return ac, true, nil
		}
	}
	for k, ac := range cfg.Auths {
		if normalizeHost(k) != host {
			continue
		}
		if ac.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(ac.Auth)
			if err != nil {
				return registry.AuthConfig{}, false, fmt.Errorf("auths[%q].auth: not base64", k)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return registry.AuthConfig{}, false, fmt.Errorf("auths[%q].auth: want base64 of user:password", k)
			}
			ac.Username, ac.Password = user, pass
			ac.Auth = ""
		}
		if ac.Username == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
			continue // an empty entry, as the CLI writes when a store holds the secret
		}
		ac.ServerAddress = server
		return ac, true, nil
	}
	return registry.AuthConfig{}, false, nil
}

// normalizeHost turns a config key ("https://ghcr.io", "index.docker.io/v1/")
// into the registry host that reference.Domain returns.
func normalizeHost(key string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return h
}
