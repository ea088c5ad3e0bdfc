package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxExtends bounds a chain of extends: a region's file, its base, and a
// base of that base is already more than most repositories need.
const maxExtends = 8

// extendsProblem says why ref cannot be an extends target, "" when it can.
func extendsProblem(ref string) string {
	switch {
	case ref == "":
		return "want a file name such as \"prod-base.yaml\", relative to envs/"
	case strings.HasPrefix(ref, "/"):
		return fmt.Sprintf("want a path relative to envs/ such as \"prod-base.yaml\", got the absolute path %s", quote(ref))
	case strings.Contains(ref, "\\"):
		return fmt.Sprintf("want a path with / separators, got %s", quote(ref))
	}
	for _, part := range strings.Split(ref, "/") {
		if part == ".." {
			return fmt.Sprintf("want a file inside envs/; %s leaves it with \"..\"", quote(ref))
		}
	}
	if path.Clean(ref) != ref || !fs.ValidPath("envs/"+ref) {
		return fmt.Sprintf("want a clean path relative to envs/ such as \"prod-base.yaml\", got %s", quote(ref))
	}
	if !strings.HasSuffix(ref, ".yaml") && !strings.HasSuffix(ref, ".yml") {
		return fmt.Sprintf("want a YAML file ending in .yaml or .yml, got %s", quote(ref))
	}
	return ""
}

// markOrigin records file as the origin of every node of the tree n (keys
// included), so that errors name the file a line belongs to.
func markOrigin(origin map[*yaml.Node]string, n *yaml.Node, file string, budget *int) {
	if n == nil || *budget <= 0 {
		return
	}
	if _, ok := origin[n]; ok {
		return
	}
	*budget--
	origin[n] = file
	for _, c := range n.Content {
		markOrigin(origin, c, file, budget)
	}
}

// extend returns body, the top-level mapping of file, merged over the base
// file its extends names (and that file's own base, in turn): the rule of
// Env.Extends. chain holds the files already on the way, to refuse loops.
// The nodes are the files' own, so every value keeps its line, and
// w.doc.origin says which file each comes from.
func (w *walker) extend(fsys fs.FS, file string, body *yaml.Node, chain []string) *yaml.Node {
	if body == nil || body.Kind != yaml.MappingNode {
		return body
	}
	var key, val *yaml.Node
	for _, kv := range w.quietPairs(body) {
		if kv[0].Value == "extends" {
			key, val = kv[0], resolveAlias(kv[1])
		}
	}
	if key == nil || isNull(val) {
		return body
	}
	fail := func(format string, args ...any) *yaml.Node {
		w.errs = append(w.errs, &FieldError{File: file, Line: key.Line, Field: "extends", Msg: fmt.Sprintf(format, args...)})
		return body
	}
	if val.Kind != yaml.ScalarNode {
		if file == w.file {
			return body // the walk reports the type of the env's own field
		}
		return fail("want a file name such as \"prod-base.yaml\", got %s", show(val, false))
	}
	if why := extendsProblem(val.Value); why != "" {
		return fail("%s", why)
	}
	base := "envs/" + val.Value
	for i, f := range chain {
		if f == base {
			return fail("extends loops: %s → %s", strings.Join(chain[i:], " → "), base)
		}
	}
	// chain holds file and the files before it: base would be one more.
	if len(chain) >= maxExtends {
		return fail("more than %d files extend one another; want a shorter chain", maxExtends)
	}
	data, err := readFile(fsys, base)
	if err != nil {
		return fail("%s: %v", base, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			w.errs = append(w.errs, &FieldError{File: base, Line: 1, Msg: "file is empty; want a mapping of env file fields to extend"})
			return body
		}
		w.errs = append(w.errs, syntaxError(base, err))
		return body
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			w.errs = append(w.errs, syntaxError(base, err))
			return body
		}
		w.errs = append(w.errs, &FieldError{File: base, Line: line, Msg: "a second YAML document (after ---); want exactly one"})
		return body
	}
	bbody := &root
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		bbody = root.Content[0]
	}
	if bbody.Kind != yaml.MappingNode {
		w.errs = append(w.errs, &FieldError{File: base, Line: max(bbody.Line, 1), Msg: "want a mapping of env file fields to extend, got " + show(bbody, false)})
		return body
	}
	markOrigin(w.doc.origin, &root, base, &w.budget)
	bbody = w.extend(fsys, base, bbody, append(chain, base))
	// The environment's name is each file's own, and extends is consumed
	// here: neither is inherited.
	bbody = w.without(bbody, map[string][]string{"environment": nil, "extends": nil})
	w.refuseNulls(file, base, body, bbody, "", 0)
	return w.inherit(body, bbody, nil, 0)
}

// refuseNulls reports each key that body, the mapping of file, sets to
// null (~, or nothing after the colon) where base, the mapping of the file
// baseFile, holds a value: a key cannot be removed through extends, and a
// null would do just that. The base's value then stands in for the null,
// so that the walk does not report the same line a second time.
func (w *walker) refuseNulls(file, baseFile string, body, base *yaml.Node, path string, depth int) {
	body, base = resolveAlias(body), resolveAlias(base)
	if body == nil || base == nil || body.Kind != yaml.MappingNode || base.Kind != yaml.MappingNode || depth > 4 {
		return
	}
	inBase := map[string]*yaml.Node{}
	for _, kv := range w.quietPairs(base) {
		inBase[kv[0].Value] = kv[1]
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k := resolveAlias(body.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			continue
		}
		b, ok := inBase[k.Value]
		if !ok || isNull(b) {
			continue
		}
		field := k.Value
		if path != "" {
			field = path + "." + k.Value
		}
		if isNull(body.Content[i+1]) {
			// A value of a base's base names its own file.
			from := baseFile
			if f, ok := w.doc.origin[b]; ok {
				from = f
			}
			w.errs = append(w.errs, &FieldError{File: file, Line: k.Line, Field: field, Msg: fmt.Sprintf("null would remove the value inherited from %s, and extends cannot remove a key; leave %s out to inherit it, or write a value", from, k.Value)})
			body.Content[i+1] = b
			continue
		}
		w.refuseNulls(file, baseFile, body.Content[i+1], b, field, depth+1)
	}
}
