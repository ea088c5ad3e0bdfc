package state

import (
	"fmt"
	"strings"
)

// ShortHash is the first 12 characters of a commit hash or container ID,
// the form every output uses.
func ShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// ShortImageID is an image ID ("sha256:…") as its first 12 hex digits.
func ShortImageID(id string) string { return ShortHash(strings.TrimPrefix(id, "sha256:")) }

// HumanBytes is n in B, KB, MB or GB (powers of 1024), for reports.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// LastLines returns the last n lines of s (a container's output).
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
