// Command envimages prints the images an env file deploys, for the
// deployment workflow's image scan: every service's image and the
// migrations job's, each once, sorted, as a JSON array of strings.
//
//	go run ./internal/envimages envs/prod.yaml
//
// It reads only the image references (state.Images); the workflow
// validates the file with `reconciler validate` first.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/developer-mesh/reconciler/state"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: envimages envs/ENV.yaml")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "envimages:", err)
		os.Exit(1)
	}
}

// run writes the sorted, unique images of the env file at path to w as a
// JSON array on one line. A file without any image is an error: a scan of
// nothing must not pass as a clean scan.
func run(path string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines, err := state.Images(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	images := []string{}
	for _, l := range lines {
		if !seen[l.Image] {
			seen[l.Image] = true
			images = append(images, l.Image)
		}
	}
	if len(images) == 0 {
		return fmt.Errorf("%s: no image in services or migrations", path)
	}
	sort.Strings(images)
	b, err := json.Marshal(images)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
