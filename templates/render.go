package templates

import (
	"bytes"
	"fmt"
	"reflect"
	"text/template/parse"
)

// The site template is parsed by text/template/parse and executed by the
// small evaluator below, not by text/template's Execute.
//
// Why: text/template's executor looks methods up by name at run time
// (reflect.Value.MethodByName). When that call is reachable, the Go linker
// keeps every exported method of every type the program can put in an
// interface, so the whole API of each AWS service client (about 13 MB of
// rds, ssm, s3 and route53 code) stayed in the binary although the project
// calls a handful of their operations. That made the binary 56 MB instead of
// 24 MB, and every process, `reconciler version` too, touched several MB
// more of it at start (docs/BENCHMARKS.md §7).
//
// The evaluator supports what nginx-site.conf.tmpl uses: text, {{.Field}}
// and {{.A.B}} of the data (fields only, never methods), {{$.Field}},
// {{.}} inside range, {{quote X}}, {{if}}/{{else}}, {{range}} over a slice;
// the {{- trim markers are the parser's. Anything else is an error at
// parse time, so a template change that needs more fails its first test.

const siteName = "nginx-site.conf.tmpl"

// parseSite parses the site template from files.
func parseSite() *parse.Tree {
	text, err := files.ReadFile(siteName)
	if err != nil {
		panic(err)
	}
	trees, err := parse.Parse(siteName, string(text), "{{", "}}", map[string]any{"quote": true})
	if err != nil {
		panic(err)
	}
	t := trees[siteName]
	if err := checkNodes(t.Root); err != nil {
		panic(fmt.Sprintf("%s: %v", siteName, err))
	}
	return t
}

// checkNodes rejects every construct the evaluator does not implement.
func checkNodes(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNodes(c); err != nil {
				return err
			}
		}
		return nil
	case *parse.TextNode:
		return nil
	case *parse.ActionNode:
		return checkPipe(n.Pipe)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode)
	}
	return fmt.Errorf("%s: unsupported in the site template", n)
}

func checkBranch(b *parse.BranchNode) error {
	if err := checkPipe(b.Pipe); err != nil {
		return err
	}
	if err := checkNodes(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkNodes(b.ElseList)
	}
	return nil
}

func checkPipe(p *parse.PipeNode) error {
	if len(p.Decl) > 0 || len(p.Cmds) != 1 {
		return fmt.Errorf("%s: only a single command without variables is supported", p)
	}
	args := p.Cmds[0].Args
	if id, ok := args[0].(*parse.IdentifierNode); ok {
		if id.Ident != "quote" || len(args) != 2 {
			return fmt.Errorf("%s: the only function is quote, with one argument", p)
		}
		args = args[1:]
	}
	if len(args) != 1 {
		return fmt.Errorf("%s: one operand expected", p)
	}
	switch a := args[0].(type) {
	case *parse.FieldNode, *parse.DotNode:
		return nil
	case *parse.VariableNode:
		if a.Ident[0] == "$" {
			return nil
		}
	}
	return fmt.Errorf("%s: only .Field, .A.B, . and $.Field operands are supported", p)
}

// execSite writes the template t with data to b.
func execSite(b *bytes.Buffer, t *parse.Tree, data any) error {
	root := reflect.ValueOf(data)
	return walk(b, t.Root, root, root)
}

func walk(b *bytes.Buffer, n parse.Node, dot, root reflect.Value) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walk(b, c, dot, root); err != nil {
				return err
			}
		}
	case *parse.TextNode:
		b.Write(n.Text)
	case *parse.ActionNode:
		s, err := evalPipe(n.Pipe, dot, root)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case *parse.IfNode:
		v, err := evalArg(n.Pipe.Cmds[0].Args[0], dot, root)
		if err != nil {
			return err
		}
		if truth(v) {
			return walk(b, n.List, dot, root)
		}
		if n.ElseList != nil {
			return walk(b, n.ElseList, dot, root)
		}
	case *parse.RangeNode:
		v, err := evalArg(n.Pipe.Cmds[0].Args[0], dot, root)
		if err != nil {
			return err
		}
		if v.Kind() != reflect.Slice {
			return fmt.Errorf("range over %s, want a slice", v.Kind())
		}
		if v.Len() == 0 && n.ElseList != nil {
			return walk(b, n.ElseList, dot, root)
		}
		for i := 0; i < v.Len(); i++ {
			if err := walk(b, n.List, v.Index(i), root); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: unsupported", n)
	}
	return nil
}

func evalPipe(p *parse.PipeNode, dot, root reflect.Value) (string, error) {
	args := p.Cmds[0].Args
	quoted := false
	if _, ok := args[0].(*parse.IdentifierNode); ok {
		quoted, args = true, args[1:]
	}
	v, err := evalArg(args[0], dot, root)
	if err != nil {
		return "", err
	}
	s := printable(v)
	if quoted {
		s = `"` + s + `"`
	}
	return s, nil
}

func evalArg(n parse.Node, dot, root reflect.Value) (reflect.Value, error) {
	switch n := n.(type) {
	case *parse.DotNode:
		return dot, nil
	case *parse.FieldNode:
		return fields(dot, n.Ident)
	case *parse.VariableNode:
		return fields(root, n.Ident[1:])
	}
	return reflect.Value{}, fmt.Errorf("%s: unsupported operand", n)
}

// fields follows a chain of field names from v, through pointers.
func fields(v reflect.Value, names []string) (reflect.Value, error) {
	for _, name := range names {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return reflect.Value{}, fmt.Errorf("nil pointer evaluating .%s", name)
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, fmt.Errorf("can't evaluate field %s in type %s", name, v.Type())
		}
		f := v.FieldByName(name)
		if !f.IsValid() {
			return reflect.Value{}, fmt.Errorf("can't evaluate field %s in type %s", name, v.Type())
		}
		v = f
	}
	return v, nil
}

// truth is text/template's truth of a value: false for the zero value of
// its kind and for empty strings, slices and maps.
func truth(v reflect.Value) bool {
	if !v.IsValid() {
		return false
	}
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() > 0
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0
	case reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
		return !v.IsNil()
	case reflect.Struct:
		return true
	}
	return !v.IsZero()
}

// printable formats v as text/template prints a value: through its String
// or Error method when it has one (a pointer is followed first), else with
// fmt's default format.
func printable(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if !v.IsValid() {
		return "<no value>"
	}
	if v.CanAddr() {
		if s, ok := v.Addr().Interface().(fmt.Stringer); ok {
			return s.String()
		}
	}
	return fmt.Sprint(v.Interface())
}
