package docker

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// TestExecutableFiles: the proxy image holds the executable as /reconciler
// and, for a dynamically linked one (this test binary under -race or with
// cgo), its loader and every library it needs, each once, with its parent
// directories in the tar.
func TestExecutableFiles(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	files, err := executableFiles(exe)
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Path != "/reconciler" || files[0].From != exe {
		t.Fatalf("first file %+v, want the executable as /reconciler", files[0])
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	f.Close()
	seen := map[string]bool{}
	for _, fl := range files {
		if seen[fl.Path] {
			t.Fatalf("%s twice", fl.Path)
		}
		seen[fl.Path] = true
	}
	for _, lib := range libs {
		found := false
		for p := range seen {
			found = found || strings.HasSuffix(p, "/"+lib)
		}
		if !found {
			t.Errorf("needed library %s not in the image files %v", lib, files)
		}
	}
	t.Logf("%d files (%d libraries needed directly)", len(files), len(libs))

	var buf bytes.Buffer
	if err := writeTar(&buf, files); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if names[h.Name] {
			t.Fatalf("tar has %s twice", h.Name)
		}
		names[h.Name] = true
	}
	for _, fl := range files {
		if !names[fl.Path[1:]] {
			t.Errorf("tar lacks %s", fl.Path)
		}
		if i := strings.LastIndex(fl.Path, "/"); i > 0 && !names[fl.Path[1:i]+"/"] {
			t.Errorf("tar lacks the directory of %s", fl.Path)
		}
	}
}
