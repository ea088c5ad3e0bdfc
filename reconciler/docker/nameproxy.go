package docker

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// ProxyImageRepo is the repository of the name proxies' image, built on
// the host from the name proxy's executable (nothing is pulled): tag
// <first 12 hex digits of the executable's sha256>.
const ProxyImageRepo = "reconciler-name-proxy"

// ProxyBinaryName is the name proxy's own executable (cmd/nameproxy),
// looked for beside the running reconciler: a few MB that link only the
// HTTP forwarding, where the reconciler binary carries the Docker client,
// the AWS SDK and git. Without it the image is built from the reconciler
// binary itself, whose hidden `name-proxy` command does the same.
const ProxyBinaryName = "reconciler-nameproxy"

// proxyImages remembers the image built for each executable in this
// process.
var proxyImages = struct {
	mu    sync.Mutex
	ref   map[string]string // executable → reference
	built map[string]bool   // executable → the engine has its image
}{ref: map[string]string{}, built: map[string]bool{}}

// proxyExecutable is the executable that goes into the name proxy image:
// ProxyBinaryName beside the running executable, else the running
// executable (symlinks resolved in both).
func proxyExecutable() (string, error) {
	exe, err := osExecutable()
	if err != nil {
		return "", fmt.Errorf("name proxy image: find own executable: %w", err)
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		return "", fmt.Errorf("name proxy image: %w", err)
	}
	return proxyExecutableBeside(exe)
}

// osExecutable is os.Executable; the tests stand the reconciler binary
// beside a name proxy binary they build.
var osExecutable = os.Executable

// proxyExecutableBeside is ProxyBinaryName in exe's directory when it is
// a regular file there, else exe.
func proxyExecutableBeside(exe string) (string, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(filepath.Dir(exe), ProxyBinaryName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return exe, nil
		}
		return "", fmt.Errorf("name proxy image: %w", err)
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("name proxy image: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("name proxy image: %s is not a regular file", p)
	}
	return p, nil
}

// ProxyImage returns the name proxies' image, importing it first when the
// engine lacks it. The executable (see proxyExecutable) goes in as
// /reconciler with the entrypoint `/reconciler name-proxy`, which both
// binaries accept, so reconciler.NameCheckCommand works in proxies of
// either. A dynamically linked executable (a build with cgo) gets its ELF
// interpreter and libraries from the host along with it.
func (r *Runtime) ProxyImage(ctx context.Context) (string, error) {
	exe, err := proxyExecutable()
	if err != nil {
		return "", err
	}
	return r.proxyImageOf(ctx, exe)
}

// proxyImageOf is ProxyImage for the executable exe.
func (r *Runtime) proxyImageOf(ctx context.Context, exe string) (string, error) {
	proxyImages.mu.Lock()
	defer proxyImages.mu.Unlock()
	if proxyImages.built[exe] {
		return proxyImages.ref[exe], nil
	}
	ref, err := proxyRefLocked(exe)
	if err != nil {
		return "", err
	}
	if _, err := r.cli.ImageInspect(ctx, ref); err == nil {
		proxyImages.built[exe] = true
		return ref, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("name proxy image: inspect %s: %w", ref, err)
	}
	files, err := executableFiles(exe)
	if err != nil {
		return "", fmt.Errorf("name proxy image: %w", err)
	}
	r.log.Info("build name proxy image", zap.String("image", ref), zap.String("from", exe), zap.Int("files", len(files)))
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, files)) }()
	rc, err := r.cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{
		Changes: []string{
			`ENTRYPOINT ["/reconciler", "name-proxy"]`,
			`LABEL ` + state.LabelRole + `=` + state.RoleNameProxy,
		},
	})
	if err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("name proxy image: import: %w", err)
	}
	defer rc.Close()
	if err := readStream(rc); err != nil {
		return "", fmt.Errorf("name proxy image: import: %w", err)
	}
	proxyImages.built[exe] = true
	return ref, nil
}

// forgetProxyImage makes the next ProxyImage check the engine again.
func (r *Runtime) forgetProxyImage() {
	proxyImages.mu.Lock()
	defer proxyImages.mu.Unlock()
	clear(proxyImages.built)
}

// proxyRefLocked is the proxy image reference for exe; proxyImages.mu is
// held.
func proxyRefLocked(exe string) (string, error) {
	if ref, ok := proxyImages.ref[exe]; ok {
		return ref, nil
	}
	sum, err := fileSHA256(exe)
	if err != nil {
		return "", fmt.Errorf("name proxy image: %w", err)
	}
	ref := ProxyImageRepo + ":" + sum[:12]
	proxyImages.ref[exe] = ref
	return ref, nil
}

// ProxyImageRef is the reference of the name proxy image that ProxyImage
// would use now, whether or not the engine has it.
func ProxyImageRef() (string, error) {
	exe, err := proxyExecutable()
	if err != nil {
		return "", err
	}
	proxyImages.mu.Lock()
	defer proxyImages.mu.Unlock()
	return proxyRefLocked(exe)
}

// proxyImageGrace is how old a proxy image must be before retention may
// remove it.
const proxyImageGrace = 10 * time.Minute

// UnusedProxyImages lists the name proxy images that no container uses,
// except the running executable's (the next proxy would need it) and
// those built in the last proxyImageGrace.
func (r *Runtime) UnusedProxyImages(ctx context.Context, inUse map[string]bool) ([]ImageInfo, error) {
	current, err := ProxyImageRef()
	if err != nil {
		return nil, err
	}
	list, err := r.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", ProxyImageRepo))})
	if err != nil {
		return nil, fmt.Errorf("list name proxy images: %w", err)
	}
	var out []ImageInfo
	for _, im := range list {
		// A young image may be about to be used by a proxy that another
		// reconciler (another binary) is creating.
		young := time.Since(time.Unix(im.Created, 0)) < proxyImageGrace
		if inUse[im.ID] || slices.Contains(im.RepoTags, current) || young {
			continue
		}
		out = append(out, ImageInfo{ID: im.ID, Tags: im.RepoTags, Size: im.Size})
	}
	return out, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// imageFile is a host file that goes into the proxy image at Path.
type imageFile struct{ Path, From string }

// executableFiles lists what the executable needs in an empty image: itself
// as /reconciler (whichever binary it is: see ProxyImage) and, when it is dynamically linked, its interpreter and
// the libraries it (and they) need, at the paths the loader looks for them.
func executableFiles(exe string) ([]imageFile, error) {
	files := []imageFile{{Path: "/reconciler", From: exe}}
	f, err := elf.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", exe, err)
	}
	defer f.Close()
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, fmt.Errorf("read interpreter of %s: %w", exe, err)
			}
			interp = string(b[:len(b)-1]) // NUL-terminated
		}
	}
	if interp == "" {
		return files, nil // static
	}
	files = append(files, imageFile{Path: interp, From: interp})
	seen := map[string]bool{}
	queue, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("libraries of %s: %w", exe, err)
	}
	for len(queue) > 0 {
		lib := queue[0]
		queue = queue[1:]
		if seen[lib] {
			continue
		}
		seen[lib] = true
		path := findLibrary(lib)
		if path == "" {
			return nil, fmt.Errorf("%s needs %s, which is in none of %v", exe, lib, libraryDirs)
		}
		files = append(files, imageFile{Path: path, From: path})
		lf, err := elf.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		more, err := lf.ImportedLibraries()
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("libraries of %s: %w", path, err)
		}
		queue = append(queue, more...)
	}
	return files, nil
}

var libraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

func findLibrary(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	for _, d := range libraryDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// writeTar writes files (content of From, symlinks followed) with their
// parent directories.
func writeTar(w io.Writer, files []imageFile) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := filepath.Dir(f.Path); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Name: parents[i][1:] + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
		}
		if err := writeTarFile(tw, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeTarFile(tw *tar.Writer, f imageFile) error {
	src, err := os.Open(f.From)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: f.Path[1:], Mode: 0o755, Size: st.Size(), Typeflag: tar.TypeReg, ModTime: st.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}

// EnsureNameProxy implements reconciler.Runtime.
func (r *Runtime) EnsureNameProxy(ctx context.Context, p reconciler.NameProxySpec) error {
	ci, err := r.cli.ContainerInspect(ctx, p.Name)
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("name proxy %s: %w", p.Name, err)
	case ci.Config == nil || ci.Config.Labels[state.LabelProxyEnv] != p.Env || ci.Config.Labels[state.LabelRole] != state.RoleNameProxy:
		return fmt.Errorf("name proxy %s: a container of that name exists and is not this environment's name proxy: rename or remove it (reconciler never touches it)", p.Name)
	case ci.Config.Labels[state.LabelProxyPort] == strconv.Itoa(p.Port) && ci.Config.Labels[state.LabelProxyNet] == p.Network:
		if ci.State != nil && ci.State.Running {
			return nil
		}
		r.log.Debug("start name proxy", zap.String("name", p.Name))
		if err := r.cli.ContainerStart(ctx, ci.ID, container.StartOptions{}); err != nil {
			return fmt.Errorf("start name proxy %s: %w", p.Name, err)
		}
		return nil
	default:
		// Another port or network: the name moves to a new proxy.
		if err := r.Remove(ctx, p.Name, 10*time.Second); err != nil {
			return err
		}
	}
	ref, err := r.ProxyImage(ctx)
	if err != nil {
		return err
	}
	if err := r.ensureNetwork(ctx, p.Network, p.Env); err != nil {
		return fmt.Errorf("name proxy %s: %w", p.Name, err)
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return fmt.Errorf("name proxy %s: %w", p.Name, err)
	}
	cfg := &container.Config{
		Image: ref,
		Cmd:   []string{"--service", p.Service, "--port", strconv.Itoa(p.Port), "--marker", "/names/" + p.Service},
		// The Go runtime collects harder before the cap is reached.
		Env: []string{"GOMEMLIMIT=192MiB"},
		Labels: map[string]string{
			state.LabelProxyEnv: p.Env, state.LabelService: p.Service, state.LabelRole: state.RoleNameProxy,
			state.LabelProxyPort: strconv.Itoa(p.Port), state.LabelProxyNet: p.Network,
		},
	}
	host := &container.HostConfig{
		NetworkMode:    container.NetworkMode(p.Network),
		Binds:          []string{p.Dir + ":/names:ro"},
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		ReadonlyRootfs: true,
		// It only listens and connects: no capability but binding a
		// port below 1024, no privilege to gain.
		CapDrop:     []string{"ALL"},
		CapAdd:      []string{"NET_BIND_SERVICE"},
		SecurityOpt: []string{"no-new-privileges"},
		Resources:   container.Resources{Memory: proxyMemory, MemorySwap: proxyMemory},
	}
	nets := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		p.Network: {Aliases: []string{p.Service}},
	}}
	r.log.Debug("create name proxy", zap.String("name", p.Name), zap.String("image", ref), zap.Int("port", p.Port))
	resp, err := r.cli.ContainerCreate(ctx, cfg, host, nets, nil, p.Name)
	if cerrdefs.IsNotFound(err) {
		// The image was removed since it was built (by another
		// reconciler's retention, say): build it again, once.
		r.forgetProxyImage()
		if cfg.Image, err = r.ProxyImage(ctx); err != nil {
			return err
		}
		resp, err = r.cli.ContainerCreate(ctx, cfg, host, nets, nil, p.Name)
	}
	if err != nil {
		return fmt.Errorf("create name proxy %s: %w", p.Name, err)
	}
	if err := r.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return r.undo(p.Name, resp.ID, fmt.Errorf("start name proxy %s: %w", p.Name, err))
	}
	return nil
}

// proxyMemory caps a name proxy's memory (and swap).
const proxyMemory = 256 << 20

// nameProxy reads a name proxy from its labels.
func nameProxy(c container.Summary) state.NameProxy {
	port, _ := strconv.Atoi(c.Labels[state.LabelProxyPort])
	return state.NameProxy{Name: summaryName(c), Service: c.Labels[state.LabelService],
		Port: port, Network: c.Labels[state.LabelProxyNet], State: c.State}
}
