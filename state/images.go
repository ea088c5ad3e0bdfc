package state

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// MigrationsImage is the key under which Images and SetImages name the image
// of the migrations job. No service can have this name (see checkName).
const MigrationsImage = "migrations"

// ImageLine is one image reference as it stands in the text of an env file.
type ImageLine struct {
	// Image is the reference as written: a tag or an @sha256 digest.
	Image string
	// Line is its 1-based line in the file.
	Line int

	col   int // 1-based column where the scalar's text starts
	style yaml.Style
}

// Images returns the image reference of every service of an env file's text,
// keyed by service name, and the migrations job's under MigrationsImage. It
// reads only what it needs: validate the file with Load for the rest.
func Images(data []byte) (map[string]ImageLine, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a mapping at the top")
	}
	out := map[string]ImageLine{}
	root := doc.Content[0]
	if svcs := mapValue(root, "services"); svcs != nil && svcs.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(svcs.Content); i += 2 {
			name, s := svcs.Content[i].Value, svcs.Content[i+1]
			ref, ok, err := imageOf(s, "services."+name)
			if err != nil {
				return nil, err
			}
			if ok {
				out[name] = ref
			}
		}
	}
	if m := mapValue(root, "migrations"); m != nil {
		ref, ok, err := imageOf(m, "migrations")
		if err != nil {
			return nil, err
		}
		if ok {
			out[MigrationsImage] = ref
		}
	}
	return out, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func imageOf(n *yaml.Node, field string) (ImageLine, bool, error) {
	v := mapValue(n, "image")
	if v == nil {
		return ImageLine{}, false, nil
	}
	if v.Kind != yaml.ScalarNode || v.Alias != nil || v.Anchor != "" || v.Tag != "!!str" {
		return ImageLine{}, false, fmt.Errorf("line %d: %s.image: want a plain string, not an alias, anchor or tagged value", v.Line, field)
	}
	switch v.Style {
	case 0, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
	default:
		return ImageLine{}, false, fmt.Errorf("line %d: %s.image: want a plain or quoted string on one line", v.Line, field)
	}
	return ImageLine{Image: v.Value, Line: v.Line, col: v.Column, style: v.Style}, true, nil
}

// SetImages returns data with the image references of the named services
// (MigrationsImage for the migrations job) replaced by the given ones. Only
// the bytes of those values change: comments, quoting, order and layout stay
// as they were.
func SetImages(data []byte, images map[string]string) ([]byte, error) {
	refs, err := Images(data)
	if err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for _, name := range SortedKeys(images) {
		ref, ok := refs[name]
		if !ok {
			return nil, fmt.Errorf("%s: no image in the file", name)
		}
		img := images[name]
		if img == "" || strings.ContainsAny(img, " \t\r\n\"'#\\") {
			return nil, fmt.Errorf("%s: %q is not an image reference", name, img)
		}
		old, repl := ref.Image, img
		switch ref.style {
		case yaml.DoubleQuotedStyle:
			old, repl = `"`+old+`"`, `"`+repl+`"`
		case yaml.SingleQuotedStyle:
			old, repl = `'`+old+`'`, `'`+repl+`'`
		}
		line := lines[ref.Line-1]
		start := byteOffset(line, ref.col)
		if start < 0 || !bytes.HasPrefix(line[start:], []byte(old)) {
			return nil, fmt.Errorf("line %d: %s: the image is not written as one scalar on its line; edit it by hand", ref.Line, name)
		}
		edited := append([]byte{}, line[:start]...)
		edited = append(edited, repl...)
		lines[ref.Line-1] = append(edited, line[start+len(old):]...)
	}
	return bytes.Join(lines, nil), nil
}

// byteOffset converts yaml.v3's 1-based column (counted in runes) to a byte
// offset in line, or -1 when the line is shorter.
func byteOffset(line []byte, col int) int {
	n := 1
	for i := range string(line) {
		if n == col {
			return i
		}
		n++
	}
	return -1
}
