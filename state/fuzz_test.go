package state

import (
	"strings"
	"testing"
	"time"
)

// FuzzFieldParsers checks the validator's value parsers (memory sizes,
// image refs, secret refs, dotenv files) on arbitrary input: no panic, no
// hang, no accepted value that is meaningless, and errors that start with
// file:line.
func FuzzFieldParsers(f *testing.F) {
	for _, s := range []string{
		"512m", "1g", "0", "-1m", "9223372036854775807g", "1.5g", "",
		"ghcr.io/developer-mesh/devops-mcp:v1.4.2", "nginx", "127.0.0.1:5000/a/b:c",
		"a@sha256:" + strings.Repeat("0", 64), "UPPER/case:tag", "a::b", "a:b@c",
		"ssm:/devops-mcp/prod/x", "env:NAME", "file:/run/secrets/x", "ssm:", "vault:x", "://",
		"A=1\nexport B=\"x y\"\nC='q'\n# c\n", "A=\"open\n", "1=x\nD=1\nD=2\n", "\x00=\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		if n, err := ParseMemory(s); err == nil && n < 0 {
			t.Fatalf("ParseMemory(%q) = %d without an error", s, n)
		}
		if ref, err := ParseImageRef(s); err == nil && ref.Path == "" {
			t.Fatalf("ParseImageRef(%q) = %+v: no repository path and no error", s, ref)
		}
		if _, err := ParseSecretRef(s); err != nil && err.Error() == "" {
			t.Fatalf("ParseSecretRef(%q): empty error", s)
		}
		ef, errs := parseEnvFile("x.env", []byte(s))
		if ef == nil {
			t.Fatalf("parseEnvFile(%q) returned no file (errors %v)", s, errs)
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), "x.env:") {
				t.Fatalf("parseEnvFile error %q does not start with file:line", e)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("parsing %d bytes took %s", len(s), d)
		}
	})
}
