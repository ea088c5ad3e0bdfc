package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Promotion is what promote copies from one env file to another: the image
// references of the services (and the migrations job) found in both.
type Promotion struct {
	// Path is the file that changes, envs/TO.yaml; Data its new text,
	// comments and layout kept, validated with Load.
	Path string
	Data []byte
	// Set maps each promoted service to its new image; Old to the one it
	// replaces. Empty when TO already runs FROM's images.
	Set, Old map[string]string
	// LeftOut are FROM's services that TO does not have (only when no
	// service was named).
	LeftOut []string
	// Summary has a line per promoted service ("  api: a:v1 → a:v2");
	// Diff is a unified diff of the changed lines.
	Summary, Diff string
}

// Promote computes the promotion of the images of env from into env to, as
// both files stand in fsys. services names the services to promote
// (MigrationsImage for the migrations job); none means every one found in
// both files. Both files must be valid, and so must the result.
func Promote(fsys fs.FS, from, to string, services []string) (*Promotion, error) {
	if from == to {
		return nil, fmt.Errorf("--from and --to: want two environments, got %q twice", from)
	}
	// Both files must be valid as they stand: promoting from a broken file
	// would hide where the problem came from.
	loaded := map[string]*Env{}
	for _, env := range []string{from, to} {
		e, err := Load(fsys, env)
		if err != nil {
			return nil, err
		}
		loaded[env] = e
	}
	fromPath, toPath := EnvPath(from), EnvPath(to)
	fromData, err := fs.ReadFile(fsys, fromPath)
	if err != nil {
		return nil, err
	}
	toData, err := fs.ReadFile(fsys, toPath)
	if err != nil {
		return nil, err
	}
	fromImgs, err := Images(fromData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fromPath, err)
	}
	toImgs, err := Images(toData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", toPath, err)
	}
	// With extends, an image may be written in a base file rather than in
	// the env's own: FROM's is taken as loaded, and TO's inherited ones
	// are known, to be refused by name below.
	fromAll, toAll := loadedImages(loaded[from]), loadedImages(loaded[to])
	for n, img := range fromAll {
		if _, ok := fromImgs[n]; !ok {
			fromImgs[n] = ImageLine{Image: img}
		}
	}

	pr := &Promotion{Path: toPath, Set: map[string]string{}, Old: map[string]string{}}
	names := slices.Clone(services)
	if len(names) == 0 {
		for _, n := range SortedKeys(fromImgs) {
			if _, ok := toAll[n]; ok {
				names = append(names, n)
			} else {
				pr.LeftOut = append(pr.LeftOut, n)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	// The errors name --service only when it was given.
	flag := "service"
	if len(services) > 0 {
		flag = "--service"
	}
	var errs []error
	for _, n := range names {
		src, ok1 := fromImgs[n]
		dst, ok2 := toImgs[n]
		switch {
		case !ok1:
			errs = append(errs, fmt.Errorf("--service %s: not in %s", n, fromPath))
		case !ok2 && toAll[n] == src.Image:
			// Inherited from a base, and already FROM's image.
		case !ok2 && toAll[n] != "":
			errs = append(errs, fmt.Errorf("%s %s: its image %s is inherited from %s (extends), not written in %s; promote edits %s only: write the service's image: there, or change the base by hand", flag, n, toAll[n], imageBase(fsys, loaded[to].Extends, n), toPath, toPath))
		case !ok2:
			errs = append(errs, fmt.Errorf("%s %s: not in %s (add it there by hand first)", flag, n, toPath))
		case src.Image != dst.Image:
			pr.Set[n], pr.Old[n] = src.Image, dst.Image
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(pr.Set) == 0 {
		return pr, nil
	}
	if pr.Data, err = SetImages(toData, pr.Set); err != nil {
		return nil, fmt.Errorf("%s: %w", toPath, err)
	}
	if _, err := Load(overlayFS{FS: fsys, name: toPath, data: pr.Data}, to); err != nil {
		return nil, fmt.Errorf("the promoted %s would be invalid: %w", toPath, err)
	}

	var summary, diff strings.Builder
	fmt.Fprintf(&diff, "--- a/%s\n+++ b/%s\n", toPath, toPath)
	oldLines, newLines := strings.Split(string(toData), "\n"), strings.Split(string(pr.Data), "\n")
	byLine := SortedKeys(pr.Set)
	for _, n := range byLine {
		fmt.Fprintf(&summary, "  %s: %s → %s\n", n, pr.Old[n], pr.Set[n])
	}
	slices.SortFunc(byLine, func(a, b string) int { return toImgs[a].Line - toImgs[b].Line })
	for _, n := range byLine {
		l := toImgs[n].Line
		fmt.Fprintf(&diff, "@@ -%d +%d @@ %s\n-%s\n+%s\n", l, l, n, oldLines[l-1], newLines[l-1])
	}
	pr.Summary, pr.Diff = summary.String(), diff.String()
	return pr, nil
}

// imageBase returns the base file, from envs/ext (an env's extends) down
// its chain, whose text writes the image of service n: the file where an
// inherited image is changed. It returns envs/ext when none does.
func imageBase(fsys fs.FS, ext, n string) string {
	first := "envs/" + ext
	for range maxExtends {
		p := "envs/" + ext
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			break
		}
		if imgs, err := Images(data); err == nil {
			if _, ok := imgs[n]; ok {
				return p
			}
		}
		var next struct {
			Extends string `yaml:"extends"`
		}
		if yaml.Unmarshal(data, &next) != nil || extendsProblem(next.Extends) != "" {
			break
		}
		ext = next.Extends
	}
	return first
}

// loadedImages returns the image of every service of e, and of its
// migrations job under MigrationsImage.
func loadedImages(e *Env) map[string]string {
	out := map[string]string{}
	for n, s := range e.Services {
		out[n] = s.Image
	}
	if e.Migrations != nil && e.Migrations.Image != "" {
		out[MigrationsImage] = e.Migrations.Image
	}
	return out
}

// overlayFS is fsys with one file's content replaced: it lets Load validate
// a file before it is committed.
type overlayFS struct {
	fs.FS
	name string
	data []byte
}

// Open implements fs.FS.
func (o overlayFS) Open(name string) (fs.File, error) {
	if name != o.name {
		return o.FS.Open(name)
	}
	fi, err := fs.Stat(o.FS, name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(o.data), info: sizedInfo{FileInfo: fi, size: int64(len(o.data))}}, nil
}

type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
