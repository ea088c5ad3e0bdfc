package templates

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"text/template"
)

// TestSiteRendersAsTextTemplate renders every golden case, and cases that
// combine every branch of the template, with the evaluator of render.go and
// with text/template's own executor, and wants the same bytes: the
// evaluator must implement the template language the way text/template does
// for everything nginx-site.conf.tmpl uses.
func TestSiteRendersAsTextTemplate(t *testing.T) {
	tt := template.Must(template.New(siteName).
		Funcs(template.FuncMap{"quote": func(s string) string { return `"` + s + `"` }}).
		ParseFS(files, siteName))
	cases := siteCases("/etc/nginx/conf.d", "/etc/ssl/dev-mesh")
	extra := []SiteParams{
		{Env: "prod", Service: "all", ConfDir: "/etc/nginx/conf.d", BluePort: 21300, GreenPort: 21301,
			Listen: listen("443 ssl"), ServerName: "all.dev-mesh.io", LogDir: "/var/log/nginx",
			Canary: []int{10, 50}, SessionHeader: "Mcp-Session-Id"},
		{Env: "prod", Service: "green-only", ConfDir: "/etc/nginx/conf.d", BluePort: 21302, GreenPort: 21303, Live: "green"},
		{Env: "prod", Service: "blue-only", ConfDir: "/etc/nginx/conf.d", BluePort: 21304, GreenPort: 21305, SessionHeader: "X-S", Live: "blue"},
	}
	for i, p := range extra {
		cases = append(cases, struct {
			name string
			p    SiteParams
		}{name: "extra" + string(rune('0'+i)), p: p})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Site(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			executeSite = func(b *bytes.Buffer, data any) error { return tt.Execute(b, data) }
			defer func() { executeSite = func(b *bytes.Buffer, data any) error { return execSite(b, siteTmpl(), data) } }()
			want, err := Site(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render.go and text/template differ\n--- render.go\n%s\n--- text/template\n%s", got, want)
			}
		})
	}
}

// templateImporters returns the packages in lines (`go list -deps -f
// '{{.ImportPath}} {{join .Imports " "}}'`) that import text/template or
// html/template, except cobra, which executes a template only when a
// program sets its own usage or help template (reconciler does not).
func templateImporters(lines []string) []string {
	var bad []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] == "github.com/spf13/cobra" {
			continue
		}
		if slices.Contains(f[1:], "text/template") || slices.Contains(f[1:], "html/template") {
			bad = append(bad, f[0])
		}
	}
	return bad
}

// TestBinaryLinksNoTemplateExecutor: text/template's executor, once linked,
// keeps every exported method of the AWS clients in the binary (render.go).
// No package of cmd/reconciler but cobra may import text/template or
// html/template; tests may.
func TestBinaryLinksNoTemplateExecutor(t *testing.T) {
	if got := templateImporters([]string{"github.com/spf13/cobra text/template", "example.com/x fmt html/template", "fmt io"}); !slices.Equal(got, []string{"example.com/x"}) {
		t.Fatalf("templateImporters finds %q, want [example.com/x]", got)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list the imports: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../cmd/reconciler").Output()
	if err != nil {
		t.Fatalf("go list -deps ../cmd/reconciler: %v", err)
	}
	if bad := templateImporters(strings.Split(string(out), "\n")); len(bad) > 0 {
		t.Errorf("these packages of cmd/reconciler import text/template or html/template: %v; use templates/render.go's evaluator or plain Go (render.go says why)", bad)
	}
}
