// Package doclinks checks that the repository's documentation links only to
// files inside the repository: every relative link in README.md and
// docs/*.md must name a file or directory that exists, without leaving the
// repository, and a #fragment into a markdown file must name one of its
// headings. A clone is all a reader has.
package doclinks

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs are the files checked, as globs relative to the repository root.
var docs = []string{"README.md", "docs/*.md"}

func TestDocLinks(t *testing.T) {
	root := repoRoot(t)
	var files []string
	for _, g := range docs {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 2 {
		t.Fatalf("found %d documentation files under %s; want README.md and docs/*.md", len(files), root)
	}
	links := 0
	for _, f := range files {
		n, problems, err := checkFile(root, f)
		if err != nil {
			t.Fatal(err)
		}
		links += n
		for _, p := range problems {
			t.Error(p)
		}
	}
	if links == 0 {
		t.Fatal("no relative links found at all: the link parser is broken")
	}
	t.Logf("%d files, %d relative links checked", len(files), links)
}

// TestCheckFileFails shows that each kind of bad link is caught, and that
// what is not a relative link is left alone.
func TestCheckFileFails(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/other.md", "# Other page\n\n## The `run` command: flags\n")
	write("README.md", strings.Join([]string{
		"# Title",
		"[ok](docs/other.md) [dir](docs/) [anchor](docs/other.md#the-run-command-flags) [self](#title)",
		"[outside](../shared/DESIGN.md)",
		"[missing](docs/nope.md)",
		"[deep](docs/../../x.md)",
		"[absolute](/etc/passwd)",
		"![image](img/missing.png \"a title\")",
		"[bad anchor](docs/other.md#nowhere)",
		"[ref]: docs/gone.md",
		`<a href="docs/absent.md">html</a>`,
		"[web](https://example.com/x.md) [mail](mailto:a@b.c) `[code](docs/nope2.md)`",
		"```",
		"[fenced](docs/nope3.md)",
		"```",
	}, "\n"))
	n, problems, err := checkFile(root, filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"../shared/DESIGN.md", "docs/nope.md", "docs/../../x.md", "/etc/passwd",
		"img/missing.png", "docs/other.md#nowhere", "docs/gone.md", "docs/absent.md",
	}
	if len(problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "("+w+")") }) {
			t.Errorf("no problem reported for %s", w)
		}
	}
	if n != 12 {
		t.Errorf("checked %d relative links, want 12", n)
	}
}

// repoRoot is the nearest directory above the test's that holds go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

var (
	// inlineLink is [text](target "title") or ![alt](<target>); the text
	// may hold one level of brackets.
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// refDef is a reference definition: [label]: target.
	refDef = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	// htmlLink is an href or src attribute of an HTML tag.
	htmlLink = regexp.MustCompile(`(?i)<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*"([^"]*)"`)
	// scheme starts an absolute URL (https:, mailto:, ...).
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// link is one link target found in a file, with its line.
type link struct {
	line   int
	target string
}

// extract returns the link targets of a markdown text, leaving out fenced
// code blocks and inline code. Indented lines are read: in these docs they
// are list continuations far more often than code blocks.
func extract(text string) []link {
	var out []link
	for i, line := range proseLines(text) {
		if line == "" {
			continue
		}
		line = stripCode(line)
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{i + 1, strings.Trim(m[1], "<>")})
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, link{i + 1, strings.Trim(m[1], "<>")})
		}
		for _, m := range htmlLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{i + 1, m[1]})
		}
	}
	return out
}

// proseLines returns the lines of a markdown text by index, with the
// lines of fenced code blocks (their fences included) blanked: links and
// headings in them are text.
func proseLines(text string) []string {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			lines[i] = ""
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			fence = trimmed[:3]
			lines[i] = ""
		}
	}
	return lines
}

// stripCode removes the inline code spans of a line: in them, brackets
// are text. A span opens with a run of backticks and closes with a run of
// the same length; an unclosed run is text.
func stripCode(line string) string {
	var b strings.Builder
	for {
		i := strings.Index(line, "`")
		if i < 0 {
			b.WriteString(line)
			return b.String()
		}
		b.WriteString(line[:i])
		k := len(line[i:]) - len(strings.TrimLeft(line[i:], "`"))
		run, rest := line[i:i+k], line[i+k:]
		end := -1
		for j := 0; j < len(rest); {
			m := strings.Index(rest[j:], run)
			if m < 0 {
				break
			}
			m += j
			n := len(rest[m:]) - len(strings.TrimLeft(rest[m:], "`"))
			if n == k {
				end = m
				break
			}
			j = m + n
		}
		if end < 0 {
			b.WriteString(run)
			line = rest
			continue
		}
		line = rest[end+k:]
	}
}

// checkFile checks the relative links of the markdown file at path, under
// root. It returns how many relative links it checked and a problem per
// bad one.
func checkFile(root, path string) (int, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, err
	}
	rel, _ := filepath.Rel(root, path)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	var problems []string
	for _, l := range extract(string(b)) {
		if l.target == "" || scheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
			continue // not a file of the repository
		}
		n++
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s:%d: (%s): %s", rel, l.line, l.target, fmt.Sprintf(format, args...)))
		}
		file, frag, _ := strings.Cut(l.target, "#")
		file, _, _ = strings.Cut(file, "?")
		if strings.HasPrefix(file, "/") {
			bad("absolute path; want a path relative to %s", rel)
			continue
		}
		target := path
		if file != "" {
			target = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
		}
		if r, err := filepath.Rel(root, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			bad("leaves the repository; link to a file inside it")
			continue
		}
		real, err := filepath.EvalSymlinks(target)
		if err != nil {
			bad("no such file in the repository")
			continue
		}
		if r, err := filepath.Rel(realRoot, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			bad("resolves (through a symlink) to %s, outside the repository", real)
			continue
		}
		if frag == "" || !strings.HasSuffix(strings.ToLower(target), ".md") {
			continue
		}
		content, err := os.ReadFile(target)
		if err != nil {
			bad("%v", err)
			continue
		}
		if !slices.Contains(anchors(string(content)), frag) {
			bad("no heading with the anchor #%s in %s", frag, filepath.Base(target))
		}
	}
	return n, problems, nil
}

var (
	heading = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	// notSlug is what GitHub drops from a heading's text to make its
	// anchor: everything but letters, digits, spaces, '-' and '_'.
	notSlug = regexp.MustCompile(`[^\p{L}\p{N}\p{M} _-]`)
	// mdLink is a link in a heading: its text counts, its target does not.
	mdLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// anchors returns the anchors GitHub gives the headings of a markdown
// text: lowercased, punctuation dropped, spaces made '-', a repeated
// anchor suffixed -1, -2, ...
func anchors(text string) []string {
	var out []string
	seen := map[string]int{}
	for _, line := range proseLines(text) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := mdLink.ReplaceAllString(m[1], "$1")
		s = notSlug.ReplaceAllString(strings.ToLower(s), "")
		s = strings.ReplaceAll(s, " ", "-")
		if k := seen[s]; k > 0 {
			out = append(out, fmt.Sprintf("%s-%d", s, k))
		} else {
			out = append(out, s)
		}
		seen[s]++
	}
	return out
}
