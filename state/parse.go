package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/developer-mesh/reconciler/internal/lazyre"
)

// FieldError is one problem of an env file or of a file it references. Every
// error Load returns is a *FieldError, joined with errors.Join.
type FieldError struct {
	// File is the repository-relative path of the file, such as
	// "envs/prod.yaml" or "envs/prod.env".
	File string
	// Line is the 1-based line of the field, of its parent key when the
	// field is absent, or 0 when no line applies (file not found).
	Line int
	// Field is the dotted path of the field, with list indexes:
	// "services.api.files[0].target". Empty for file-level problems.
	Field string
	// Msg says what is wrong and what would be right. It never holds a
	// secret value.
	Msg string
}

// Error returns "FILE:LINE: FIELD: MSG", leaving out ":LINE" when Line is 0
// and "FIELD: " when Field is empty.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// EnvPath is the repository-relative path of the env file of environment
// name: "envs/NAME.yaml".
func EnvPath(name string) string { return "envs/" + name + ".yaml" }

// maxFileSize bounds what Load reads: an env file is a few kilobytes, and a
// bound keeps a hostile commit from exhausting memory.
const maxFileSize = 1 << 20

// maxIndexHint caps the room decode reserves for the field index up front
// (the index grows past it as needed).
const maxIndexHint = 4096

// maxNodes bounds the YAML nodes the schema walk visits, so that aliases
// ("billion laughs") cannot make it run for ever.
const maxNodes = 100000

// Load reads envs/<envName>.yaml from fsys (the tree of one commit, rooted at
// the repository root), merges it over the base files its extends names
// (see Env.Extends), decodes it strictly, fills defaults with
// (*Env).Default and validates it together with every file it references.
// Unknown fields are errors, except top-level keys starting with "x-", which
// are ignored so that they can hold YAML anchors for merge keys (<<).
// On failure it returns a nil Env and the errors.Join of every problem found,
// each a *FieldError, sorted by file (the env file first) and line.
func Load(fsys fs.FS, envName string) (*Env, error) {
	file := EnvPath(envName)
	if err := checkName(envName); err != nil || !fs.ValidPath(file) {
		return nil, &FieldError{File: file, Msg: fmt.Sprintf("invalid environment name %q: want %s", envName, dnsLabelRule)}
	}
	data, err := readFile(fsys, file)
	if err != nil {
		return nil, &FieldError{File: file, Msg: err.Error()}
	}
	env, doc, errs := decode(fsys, file, data)
	if env != nil {
		env.Default()
		c := newChecker(file, envName, fsys, doc)
		c.check(env)
		errs = append(errs, c.errs...)
	}
	if len(errs) > 0 {
		return nil, joinSorted(file, errs)
	}
	return env, nil
}

// fileProblem says why a file of the repository cannot be used ("is a
// symbolic link ..."), "" when it can: a symbolic link would be copied as
// a file holding the link's text, and a file over maxFileSize is refused
// by validate and apply alike.
func fileProblem(fi fs.FileInfo) string {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "is a symbolic link at this commit; want a regular file (reconciler does not follow links)"
	case !fi.Mode().IsRegular():
		return "is not a regular file at this commit"
	case fi.Size() > maxFileSize:
		return fmt.Sprintf("is %d bytes; want at most %d", fi.Size(), maxFileSize)
	}
	return ""
}

// readFile reads a regular file of at most maxFileSize bytes; its errors are
// the messages a FieldError carries.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	// One Open, then Stat on the file: fs.Stat on an FS without StatFS (a
	// git tree) would open the file, and look it up in the tree, twice.
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("not found at this commit")
	}
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if fi.IsDir() {
		return nil, errors.New("is a directory at this commit; want a file")
	}
	if why := fileProblem(fi); why != "" {
		return nil, errors.New(why)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("is larger than %d bytes", maxFileSize)
	}
	return data, nil
}

// joinSorted sorts errs (the env file's first, then by file, line, field)
// and joins them.
func joinSorted(main string, errs []error) error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := asFieldError(errs[i]), asFieldError(errs[j])
		if (a.File == main) != (b.File == main) {
			return a.File == main
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Msg < b.Msg
	})
	return errors.Join(errs...)
}

func asFieldError(err error) *FieldError {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	return &FieldError{Msg: err.Error()}
}

// pos is where a field sits in the file: its key node (nil for list items
// and the document root) and its value node.
type pos struct {
	key, val *yaml.Node
}

func (p pos) line() int {
	if p.key != nil {
		return p.key.Line
	}
	if p.val != nil {
		return p.val.Line
	}
	return 0
}

// document is the parsed YAML of an env file: where each field is, and which
// fields were rejected while decoding (so validation does not report them a
// second time as missing).
type document struct {
	index map[string]pos
	bad   map[string]bool
	// file is the env file; origin names the file of each node that comes
	// from another one (a base file of extends), and files the file of a
	// field that is not in index (an unknown key).
	file   string
	origin map[*yaml.Node]string
	files  map[string]string
}

// newDocument returns an empty document of file; fields is how many fields
// to make room for (a hint).
func newDocument(file string, fields int) *document {
	return &document{file: file, index: make(map[string]pos, fields), bad: map[string]bool{}, origin: map[*yaml.Node]string{}, files: map[string]string{}}
}

// has reports whether the field at path is written in the file (and not null).
func (d *document) has(path string) bool {
	p, ok := d.index[path]
	return ok && !isNull(p.val)
}

// rawInt returns the integer written at path, if one is.
func (d *document) rawInt(path string) (int64, bool) {
	p, ok := d.index[path]
	if !ok || p.val == nil {
		return 0, false
	}
	n := resolveAlias(p.val)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, false
	}
	return v, true
}

// line returns the line of path, or of its nearest ancestor that is written
// in the file, or 1.
func (d *document) line(path string) int {
	_, l := d.where(path)
	return l
}

// where returns the file and line of path, or of its nearest ancestor that
// is written down: the env file or a base file it extends.
func (d *document) where(path string) (string, int) {
	for p := path; ; p = parentPath(p) {
		if f, ok := d.files[p]; ok {
			return f, d.index[p].line()
		}
		if at := d.index[p]; at.line() > 0 {
			return d.fileOf(at), at.line()
		}
		if p == "" {
			return d.file, 1
		}
	}
}

// fileOf names the file that holds the field at p.
func (d *document) fileOf(p pos) string {
	n := p.key
	if n == nil {
		n = p.val
	}
	if f, ok := d.origin[n]; ok {
		return f
	}
	return d.file
}

// parentPath strips the last ".name" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

var yamlLineRE = lazyre.New(`^yaml: line (\d+): (.*)$`)

// decode parses data with yaml.v3 (for lines), checks it against the schema
// of Env, and decodes the checked values strictly as JSON. It returns a nil
// Env only when nothing could be decoded at all.
func decode(fsys fs.FS, file string, data []byte) (*Env, *document, []error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, []error{&FieldError{File: file, Line: 1, Msg: "file is empty; want a mapping with keys " + fieldList(envType)}}
		}
		return nil, nil, []error{syntaxError(file, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, nil, []error{syntaxError(file, err)}
	default:
		return nil, nil, []error{&FieldError{File: file, Line: extra.Line, Msg: "a second YAML document (after ---); want exactly one"}}
	}

	// About one field a line (flow mappings hold more, blank lines fewer),
	// capped so that a file of blank lines does not reserve a large map.
	fields := min(bytes.Count(data, []byte{'\n'}), maxIndexHint)
	w := &walker{file: file, doc: newDocument(file, fields), budget: maxNodes}
	body := &root
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		body = root.Content[0]
	}
	if fsys != nil {
		body = w.extend(fsys, file, body, []string{file})
	}
	w.doc.index[""] = pos{val: body}
	w.defaults = w.findDefaults(body)
	tree, ok := w.walk(body, envType, "", "", false)
	w.errs = dropInherited(w.errs)
	if !ok {
		if len(w.errs) == 0 {
			w.errs = append(w.errs, &FieldError{File: file, Line: max(body.Line, 1), Msg: "file is empty; want a mapping with keys " + fieldList(envType)})
		}
		return nil, nil, w.errs
	}
	// The walk normalised every value (scalars taken as written, so "1.10"
	// stays "1.10" and "yes" stays "yes"; integers in decimal), and sigs.k8s.io/yaml
	// decodes JSON (a subset of YAML) without its own, lossy, coercions.
	js, err := json.Marshal(tree)
	if err != nil {
		return nil, nil, append(w.errs, &FieldError{File: file, Line: 1, Msg: fmt.Sprintf("decode: %v", err)})
	}
	// The tree is JSON already: decode it as JSON, strictly. (Handing it to
	// sigs.k8s.io/yaml parsed it a second time as YAML and converted it back
	// to the same JSON, a third of Load's time, for the same result.)
	var env Env
	jd := json.NewDecoder(bytes.NewReader(js))
	jd.DisallowUnknownFields()
	if err := jd.Decode(&env); err != nil {
		// The walk and the struct disagree: a bug here, not in the file.
		return nil, nil, append(w.errs, &FieldError{File: file, Line: 1, Msg: fmt.Sprintf("decode: %v", err)})
	}
	return &env, w.doc, w.errs
}

func syntaxError(file string, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &FieldError{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

var (
	envType      = reflect.TypeOf(Env{})
	durationType = reflect.TypeOf(Duration{})
	serviceType  = reflect.TypeOf(Service{})
	defaultsType = reflect.TypeOf(ServiceDefaults{})
)

// hints name what a field wants when its value has the wrong type, where "an
// integer" or "a string" would say too little.
var hints = map[string]string{
	"containerPort":      "an integer 1-65535",
	"healthyThreshold":   "an integer of at least 1",
	"unhealthyThreshold": "an integer of at least 1",
	"command":            `a list of strings such as ["/app/server", "serve"]`,
	"files":              "a list of mappings with keys source and target",
	"env":                "a mapping of variable names to values",
	"secrets":            "a mapping of variable names to secret references",
	"services":           "a mapping of service names to services",
	"memory":             `a size such as "384m"`,
	"listen":             `a string such as "443 ssl" or "80"`,
	"dependsOn":          `a list of service names such as [web], or a mapping such as {web: {condition: healthy}}`,
}

// walker checks a YAML node tree against the Go types of Env, following their
// json tags, records where every field is, and builds a JSON-ready tree of
// the values that passed.
type walker struct {
	file   string
	doc    *document
	errs   []error
	budget int
	// defaults is the mapping of the env's defaults block, merged into
	// every service before it is walked; nil when there is none.
	defaults *yaml.Node
}

func (w *walker) errf(line int, path, format string, args ...any) {
	file, _ := w.doc.where(path)
	w.errs = append(w.errs, &FieldError{File: file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolveAlias(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// walk returns the JSON-ready value of n as type t, and false when there is
// none: n is null, or it was rejected (and then the error is recorded). name
// is the json name of the field, for hints; secret marks values that must
// never be shown.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path, name string, secret bool) (any, bool) {
	n = resolveAlias(n)
	if !w.spend(1, path) {
		return nil, false
	}
	if n == nil || n.Kind == yaml.AliasNode || isNull(n) {
		return nil, false
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	line := w.doc.line(path)
	if t == durationType {
		if n.Kind != yaml.ScalarNode {
			return w.typeError(n, t, line, path, name, secret)
		}
		var d Duration
		if err := d.UnmarshalJSON(scalarJSON(n)); err != nil {
			w.doc.bad[path] = true
			w.errf(line, path, "%v", err)
			return nil, false
		}
		return n.Value, true
	}
	if t == dependsOnType && n.Kind == yaml.SequenceNode {
		// Compose's short form: a list of names.
		return w.dependsOnList(n, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return w.typeError(n, t, line, path, name, secret)
		}
		if t == serviceType && w.defaults != nil {
			n = w.inherit(n, w.applicable(n, w.defaults), jsonFields(defaultsType), 0)
		}
		fields := jsonFields(t)
		out := make(map[string]any, len(n.Content)/2)
		for _, kv := range w.pairs(n, path, 0) {
			k, v := kv[0], kv[1]
			f, ok := fields[k.Value]
			child := join(path, k.Value)
			if !ok {
				if t == envType && strings.HasPrefix(k.Value, "x-") {
					// Extension fields, as in Compose files: a place for
					// anchors (&defaults) that services merge with <<.
					continue
				}
				hint := ""
				if alt := suggest(k.Value, t); alt != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", alt)
					// The field is probably there under a wrong name: do
					// not also report it as missing.
					w.doc.bad[join(path, alt)] = true
				}
				if f, ok := w.doc.origin[k]; ok {
					w.doc.files[child] = f
				}
				known := fieldList(t)
				if t == envType {
					known += " (or x-NAME for anchors)"
				}
				w.errf(k.Line, child, "unknown field%s; want one of: %s", hint, known)
				continue
			}
			w.doc.index[child] = pos{key: k, val: v}
			if val, ok := w.walk(v, f.Type, child, k.Value, secret || k.Value == "secrets"); ok {
				out[k.Value] = val
			}
		}
		return out, true
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.typeError(n, t, line, path, name, secret)
		}
		out := make(map[string]any, len(n.Content)/2)
		for _, kv := range w.pairs(n, path, 0) {
			k, v := kv[0], kv[1]
			child := join(path, k.Value)
			w.doc.index[child] = pos{key: k, val: v}
			if isNull(v) {
				// A null map value would vanish in decoding: a service
				// written as "api:" alone would silently not exist.
				w.doc.bad[child] = true
				if t.Elem().Kind() == reflect.String {
					w.errf(k.Line, child, `want a value; write "" for an empty one`)
				} else {
					w.errf(k.Line, child, "want %s, got nothing", describe(t.Elem(), ""))
				}
				continue
			}
			if val, ok := w.walk(v, t.Elem(), child, "", secret); ok {
				out[k.Value] = val
			}
		}
		return out, true
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return w.typeError(n, t, line, path, name, secret)
		}
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			w.doc.index[child] = pos{val: item}
			// A rejected or null item stays as a zero value so that the
			// indexes of the others match the file.
			val, _ := w.walk(item, t.Elem(), child, "", secret)
			out = append(out, val)
		}
		return out, true
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return w.typeError(n, t, line, path, name, secret)
		}
		// Any scalar is taken as written: an env value 1.10 stays "1.10",
		// where a YAML-to-JSON conversion would make it "1.1".
		return n.Value, true
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			return w.typeError(n, t, line, path, name, secret)
		}
		var v int64
		if err := n.Decode(&v); err != nil || v != int64(int32(v)) {
			return w.typeError(n, t, line, path, name, secret)
		}
		return v, true
	case reflect.Bool:
		var v bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
			return w.typeError(n, t, line, path, name, secret)
		}
		return v, true
	}
	// Env has no other kinds; a new field of another kind needs a case above.
	w.errf(line, path, "internal: field of unsupported type %s", t)
	return nil, false
}

// spend takes n nodes from the walk's budget and reports false, with one
// error for the whole walk, once it is exhausted.
func (w *walker) spend(n int, path string) bool {
	if w.budget < 0 {
		return false
	}
	if w.budget -= n; w.budget < 0 {
		w.errf(w.doc.line(path), path, "too many YAML nodes (more than %d, aliases and merges included); an env file is far smaller", maxNodes)
		return false
	}
	return true
}

func (w *walker) typeError(n *yaml.Node, t reflect.Type, line int, path, name string, secret bool) (any, bool) {
	w.doc.bad[path] = true
	w.errf(line, path, "want %s, got %s", describe(t, name), show(n, secret))
	return nil, false
}

// pairs returns the key/value pairs of mapping n, with YAML merge keys (<<)
// expanded; explicit keys win over merged ones. Keys must be scalars and
// unique.
func (w *walker) pairs(n *yaml.Node, path string, depth int) [][2]*yaml.Node {
	// Sized for the mapping's own keys: merged ones are rarer.
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		rk := resolveAlias(k)
		if rk == nil || rk.Kind != yaml.ScalarNode || isNull(rk) {
			w.errf(k.Line, path, "want a string key, got %s", show(rk, true))
			continue
		}
		if first, dup := seen[rk.Value]; dup {
			w.errf(k.Line, join(path, rk.Value), "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[rk.Value] = k
		out = append(out, [2]*yaml.Node{rk, v})
	}
	if depth > 8 {
		if len(merges) > 0 {
			w.errf(n.Line, path, "merge keys (<<) nested too deeply")
		}
		return out
	}
	for _, m := range merges {
		m = resolveAlias(m)
		var sources []*yaml.Node
		switch {
		case m != nil && m.Kind == yaml.MappingNode:
			sources = []*yaml.Node{m}
		case m != nil && m.Kind == yaml.SequenceNode:
			for _, s := range m.Content {
				sources = append(sources, resolveAlias(s))
			}
		}
		for _, s := range sources {
			if s == nil || s.Kind != yaml.MappingNode {
				w.errf(m.Line, path, "a merge key (<<) wants a mapping or a list of mappings")
				continue
			}
			if !w.spend(len(s.Content), path) {
				return out
			}
			for _, kv := range w.pairs(s, path, depth+1) {
				if _, dup := seen[kv[0].Value]; dup {
					continue
				}
				seen[kv[0].Value] = kv[0]
				out = append(out, kv)
			}
		}
	}
	return out
}

// scalarJSON renders a scalar as the JSON Duration.UnmarshalJSON expects: a
// string for string scalars, the literal for numbers and booleans.
func scalarJSON(n *yaml.Node) []byte {
	if n.ShortTag() != "!!str" && json.Valid([]byte(n.Value)) {
		return []byte(n.Value)
	}
	b, _ := json.Marshal(n.Value) // a string always marshals
	return b
}

// show describes a value for a message: strings quoted, other scalars as
// written, collections by kind. Secret values are shown by kind only.
func show(n *yaml.Node, secret bool) string {
	n = resolveAlias(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "null"
	case secret:
		return "a " + kindName(n)
	case n.ShortTag() == "!!str":
		return quote(n.Value)
	}
	return n.Value
}

func kindName(n *yaml.Node) string {
	switch n.ShortTag() {
	case "!!int":
		return "number"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	}
	return "string"
}

// quote quotes s for a message, shortened to a readable length.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// describe says what a field of type t and json name name wants.
func describe(t reflect.Type, name string) string {
	if h, ok := hints[name]; ok {
		return h
	}
	switch {
	case t == durationType:
		return `a duration such as "2s" or "1m"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int:
		return "an integer"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map:
		return "a mapping"
	case t.Kind() == reflect.Struct:
		return "a mapping with keys " + fieldList(t)
	}
	return t.String()
}

// fieldsOf caches jsonFields by type: the walk asks for the fields of a
// struct type at every mapping of it (each service, each health block).
var fieldsOf sync.Map // reflect.Type → map[string]reflect.StructField

// jsonFields returns the exported fields of struct type t by json name. The
// map is shared: callers must not change it.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := fieldsOf.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m, _ := fieldsOf.LoadOrStore(t, structFields(t))
	return m.(map[string]reflect.StructField)
}

// structFields computes jsonFields.
func structFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// fieldList lists the json names of struct type t in declaration order.
func fieldList(t reflect.Type) string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "-" {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

// suggest returns the field of t that key matches but for case, dashes or
// underscores, or "".
func suggest(key string, t reflect.Type) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
	}
	for name := range jsonFields(t) {
		if norm(name) == norm(key) {
			return name
		}
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// findDefaults returns the mapping of the top-level defaults key of body,
// or nil.
func (w *walker) findDefaults(body *yaml.Node) *yaml.Node {
	if body == nil || body.Kind != yaml.MappingNode {
		return nil
	}
	for _, kv := range w.quietPairs(body) {
		if kv[0].Value == "defaults" {
			if d := resolveAlias(kv[1]); d != nil && d.Kind == yaml.MappingNode {
				return d
			}
		}
	}
	return nil
}

// quietPairs is (*walker).pairs without recording errors (the walk of the
// node itself reports them), charged to w's budget: merging the defaults
// into every service cannot make the walk run for ever either.
func (w *walker) quietPairs(n *yaml.Node) [][2]*yaml.Node {
	if w.budget <= 0 {
		return nil
	}
	q := &walker{doc: newDocument(w.file, 0), budget: w.budget}
	out := q.pairs(n, "", 0)
	w.spend(len(n.Content)/2+w.budget-max(q.budget, 0), "defaults")
	return out
}

// applicable returns the defaults that apply to the service svc: a worker
// (no containerPort) inherits no deploy, smoke, health.path, health.timeout
// or health.unhealthyThreshold; a service without listen no smoke and no
// deploy.strategy, steps or stepPause (the canary's). The rest would be
// errors there, and a default is written for the services it fits.
func (w *walker) applicable(svc, def *yaml.Node) *yaml.Node {
	var hasPort, hasListen bool
	if svc = resolveAlias(svc); svc != nil && svc.Kind == yaml.MappingNode {
		for _, kv := range w.quietPairs(svc) {
			hasPort = hasPort || kv[0].Value == "containerPort" && !isNull(kv[1])
			hasListen = hasListen || kv[0].Value == "listen" && !isNull(kv[1])
		}
	}
	drop := map[string][]string{} // key: its keys to drop, or nil for all
	switch {
	case !hasPort:
		drop = map[string][]string{"deploy": nil, "smoke": nil, "health": {"path", "timeout", "unhealthyThreshold"}}
	case !hasListen:
		drop = map[string][]string{"smoke": nil, "deploy": {"strategy", "steps", "stepPause"}}
	}
	return w.without(def, drop)
}

// without returns mapping n less the keys of drop (nil: the whole key,
// else those keys of the key's own mapping).
func (w *walker) without(n *yaml.Node, drop map[string][]string) *yaml.Node {
	if len(drop) == 0 {
		return n
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for _, kv := range w.quietPairs(n) {
		sub, ok := drop[kv[0].Value]
		v := resolveAlias(kv[1])
		switch {
		case !ok:
		case sub == nil:
			continue
		case v != nil && v.Kind == yaml.MappingNode:
			m := map[string][]string{}
			for _, k := range sub {
				m[k] = nil
			}
			v = w.without(v, m)
		}
		out.Content = append(out.Content, kv[0], v)
	}
	return out
}

// inherit returns the mapping svc with the keys of def it lacks (only those
// in allowed, when allowed is not nil): the merge rule of Env.Defaults.
// Where both hold a mapping under one key, the two merge by key again;
// anything else of svc (a list, a scalar) wins whole. The nodes are the
// file's own, so every value keeps the line it was written on, and svc's
// own keys stay as written for the walk to check (duplicates, merge keys).
func (w *walker) inherit(svc, def *yaml.Node, allowed map[string]reflect.StructField, depth int) *yaml.Node {
	svc, def = resolveAlias(svc), resolveAlias(def)
	if svc == nil || def == nil || svc.Kind != yaml.MappingNode || def.Kind != yaml.MappingNode || depth > 4 {
		return svc
	}
	defs := map[string]*yaml.Node{}
	var order []*yaml.Node
	for _, kv := range w.quietPairs(def) {
		if _, ok := allowed[kv[0].Value]; allowed != nil && !ok {
			continue // reported at defaults.KEY
		}
		defs[kv[0].Value] = kv[1]
		order = append(order, kv[0])
	}
	isMap := func(n *yaml.Node) bool { n = resolveAlias(n); return n != nil && n.Kind == yaml.MappingNode }
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: svc.Line, Column: svc.Column}
	explicit := map[string]bool{}
	for i := 0; i+1 < len(svc.Content); i += 2 {
		k, v := svc.Content[i], svc.Content[i+1]
		if rk := resolveAlias(k); rk != nil && rk.Kind == yaml.ScalarNode && rk.ShortTag() != "!!merge" {
			explicit[rk.Value] = true
			if d, ok := defs[rk.Value]; ok && isMap(v) && isMap(d) {
				v = w.inherit(v, d, nil, depth+1)
			}
		}
		out.Content = append(out.Content, k, v)
	}
	has := map[string]bool{}
	for _, kv := range w.quietPairs(svc) {
		has[kv[0].Value] = true
		// A key svc has through a merge key (<<) only: written out here
		// so that it merges with the default too.
		if d, ok := defs[kv[0].Value]; ok && !explicit[kv[0].Value] && isMap(kv[1]) && isMap(d) {
			out.Content = append(out.Content, kv[0], w.inherit(kv[1], d, nil, depth+1))
		}
	}
	for _, k := range order {
		if !has[k.Value] {
			out.Content = append(out.Content, k, defs[k.Value])
		}
	}
	return out
}

// dropInherited removes the errors of a service's inherited value that the
// defaults block already reports at the same line: one mistake, one error.
func dropInherited(errs []error) []error {
	type at struct {
		file string
		line int
		msg  string
	}
	seen := map[at]bool{}
	for _, err := range errs {
		if fe := asFieldError(err); strings.HasPrefix(fe.Field, "defaults.") {
			seen[at{fe.File, fe.Line, fe.Msg}] = true
		}
	}
	out := errs[:0]
	for _, err := range errs {
		fe := asFieldError(err)
		if strings.HasPrefix(fe.Field, "services.") && seen[at{fe.File, fe.Line, fe.Msg}] {
			continue
		}
		out = append(out, err)
	}
	return out
}
