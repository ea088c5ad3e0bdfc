package templates

import (
	"bytes"
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
