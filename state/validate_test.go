package state

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "384m", want: 384 << 20},
		{in: "384M", want: 384 << 20},
		{in: "384mb", want: 384 << 20},
		{in: "384Mi", want: 384 << 20},
		{in: "384MiB", want: 384 << 20},
		{in: "1g", want: 1 << 30},
		{in: "2GB", want: 2 << 30},
		{in: "512k", want: 512 << 10},
		{in: "512Ki", want: 512 << 10},
		{in: "1048576", want: 1 << 20},
		{in: "1048576b", want: 1 << 20},
		{in: "64 m", want: 64 << 20},
		{in: "", wantErr: `want a size such as "384m", "1g" or "512Mi", got ""`},
		{in: "1.5g", wantErr: `want a size such as "384m", "1g" or "512Mi", got "1.5g"`},
		{in: "-1m", wantErr: `want a size such as "384m", "1g" or "512Mi", got "-1m"`},
		{in: "5t", wantErr: `unknown unit "t" in "5t"; want b, k, m or g`},
		{in: "12gigs", wantErr: `unknown unit "gigs" in "12gigs"; want b, k, m or g`},
		{in: "9999999999999g", wantErr: `size "9999999999999g" is too large`},
		{in: "99999999999999999999", wantErr: `size "99999999999999999999" is too large`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMemory(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseMemory(%q) = %d, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseImageRef(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in      string
		want    ImageRef
		wantErr string
	}{
		{in: "ghcr.io/developer-mesh/devops-mcp:v1.4.2", want: ImageRef{Domain: "ghcr.io", Path: "developer-mesh/devops-mcp", Tag: "v1.4.2"}},
		{in: "nginx", want: ImageRef{Path: "nginx"}},
		{in: "nginx:latest", want: ImageRef{Path: "nginx", Tag: "latest"}},
		{in: "library/nginx:1.25", want: ImageRef{Path: "library/nginx", Tag: "1.25"}},
		{in: "localhost/app:1", want: ImageRef{Domain: "localhost", Path: "app", Tag: "1"}},
		{in: "127.0.0.1:5000/a/b/c:dev_1", want: ImageRef{Domain: "127.0.0.1:5000", Path: "a/b/c", Tag: "dev_1"}},
		{in: "[::1]:5000/app:1", want: ImageRef{Domain: "[::1]:5000", Path: "app", Tag: "1"}},
		{in: "app@" + digest, want: ImageRef{Path: "app", Digest: digest}},
		{in: "ghcr.io/o/app:v1@" + digest, want: ImageRef{Domain: "ghcr.io", Path: "o/app", Tag: "v1", Digest: digest}},
		{in: "my_app__y-z--w/p.q:1", want: ImageRef{Path: "my_app__y-z--w/p.q", Tag: "1"}},
		{in: "my_app.x/p:1", wantErr: `registry "my_app.x": want a host name or IP with an optional :port`},
		{in: "Registry/app:1", want: ImageRef{Domain: "Registry", Path: "app", Tag: "1"}},
		{in: "", wantErr: "empty image reference"},
		{in: "App:1", wantErr: `path component "App" must be lowercase`},
		{in: "app:", wantErr: `tag "": want letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')`},
		{in: "app:" + strings.Repeat("x", 129), wantErr: `tag "` + strings.Repeat("x", 80) + `"...: want letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')`},
		{in: "app@sha256:ABC", wantErr: `digest "sha256:ABC": want sha256: and 64 lowercase hex digits`},
		{in: "app@md5:" + strings.Repeat("a", 32), wantErr: `digest "md5:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": want sha256: and 64 lowercase hex digits`},
		{in: "a/-b:1", wantErr: `path component "-b": want lowercase letters and digits, separated by '.', '_', '__' or '-'`},
		{in: "a/b_:1", wantErr: `path component "b_": want lowercase letters and digits, separated by '.', '_', '__' or '-'`},
		{in: "a/b___c:1", wantErr: `path component "b___c": want lowercase letters and digits, separated by '.', '_', '__' or '-'`},
		{in: "/app:1", wantErr: `empty path component ("//", or a leading or trailing "/")`},
		{in: "reg-.io/app:1", wantErr: `registry "reg-.io": want a host name or IP with an optional :port`},
		{in: strings.Repeat("a", 256), wantErr: "name longer than 255 characters"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseImageRef(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseImageRef(%q) = %+v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseImageRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseSecretRef(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    SecretRef
		wantErr string
	}{
		{in: "ssm:/devops-mcp/prod/database_password", want: SecretRef{Scheme: "ssm", Name: "/devops-mcp/prod/database_password"}},
		{in: "secretsmanager:prod/db", want: SecretRef{Scheme: "secretsmanager", Name: "prod/db"}},
		{in: "secretsmanager:prod/db#password", want: SecretRef{Scheme: "secretsmanager", Name: "prod/db", Key: "password"}},
		{in: "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf#pw", want: SecretRef{Scheme: "secretsmanager", Name: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", Key: "pw"}},
		{in: "env:DB_PASSWORD", want: SecretRef{Scheme: "env", Name: "DB_PASSWORD"}},
		{in: "file:/run/secrets/db", want: SecretRef{Scheme: "file", Name: "/run/secrets/db"}},
		{in: "hunter2", wantErr: "not a secret reference (value not shown)"},
		{in: "password:hunter2", wantErr: "not a secret reference (value not shown)"},
		{in: "ssm:", wantErr: `want ssm:/path`},
		{in: "ssm:/a//b", wantErr: `want ssm:/path`},
		{in: "ssm:/a/", wantErr: `want ssm:/path`},
		{in: "secretsmanager:a b", wantErr: `want secretsmanager:NAME`},
		{in: "secretsmanager:a#", wantErr: `empty JSON key after '#'`},
		{in: "env:", wantErr: `want env:VAR`},
		{in: "env:A-B", wantErr: `want env:VAR`},
		{in: "file:/", wantErr: `want file:/absolute/path`},
		{in: "file:/a/../b", wantErr: `want file:/absolute/path`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSecretRef(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSecretRef(%q) = %+v, %v; want error starting %q", tc.in, got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error shows the value: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSecretRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestParseEnvFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]string
		wantErr []string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "comments and blanks", in: "# c\n\n   \n  # indented\nA=1\n", want: map[string]string{"A": "1"}},
		{name: "export", in: "export A=1\nexport\tB=2\n", want: map[string]string{"A": "1"}, wantErr: []string{`x.env:2: invalid variable name "export\tB"; want letters, digits and '_', not starting with a digit`}},
		{name: "quotes", in: `A="x y"` + "\nB='a \"b\" $c'\nC=\"l1\\nl2 \\\"q\\\" \\\\ \\t\"\nD=\"\"\nE=''\n", want: map[string]string{"A": "x y", "B": `a "b" $c`, "C": "l1\nl2 \"q\" \\ \\t", "D": "", "E": ""}},
		{name: "raw values", in: "A=a=b=c\nB= spaced \nC=#not a comment\nD=x # kept\n", want: map[string]string{"A": "a=b=c", "B": "spaced", "C": "#not a comment", "D": "x # kept"}},
		{name: "crlf", in: "A=1\r\nB=2\r\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "spaces around key", in: "  A = 1\n", want: map[string]string{"A": "1"}},
		{name: "errors", in: "A\nB=\"open\nC='open\n1=x\nD=1\nD=2\nE=\"a\"b\"\n", want: map[string]string{"D": "1"}, wantErr: []string{
			"x.env:1: want KEY=VALUE, found no '='",
			`x.env:2: B: unterminated " quote; want the value to end with "`,
			"x.env:3: C: unterminated ' quote; want the value to end with '",
			`x.env:4: invalid variable name "1"; want letters, digits and '_', not starting with a digit`,
			"x.env:6: D: set twice (first at line 5); keep one",
			`x.env:7: E: unescaped " inside double quotes; write \"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ef, errs := parseEnvFile("x.env", []byte(tc.in))
			if !reflect.DeepEqual(ef.vars, tc.want) {
				t.Errorf("vars = %q, want %q", ef.vars, tc.want)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.wantErr) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.wantErr)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "api", "mcp-server", "a1", "a-b-c", strings.Repeat("a", 40), "blue", "green", "api-blues"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "A", "1a", "-a", "a-", "a_b", "a.b", "a b", strings.Repeat("a", 41), "migrations", "api-blue", "api-green"} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", bad)
		}
	}
}

// FuzzLoad checks that Load never panics and that it returns either an Env
// or errors, never both and never neither.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"testdata/valid.yaml", "testdata/bad/many-at-once.yaml", "testdata/bad/unknown-fields.yaml", "testdata/bad/duplicate-sites.yaml", "../envs/prod.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("environment: test\nservices: {api: {image: 'a:1', containerPort: 1}}\n"))
	f.Add([]byte("a: &a {b: *a}\n"))
	f.Add([]byte("environment: test\nservices:\n  api:\n    <<: &x {image: 'a:1'}\n    env: {<<: [*x, *x]}\n"))
	f.Add([]byte("{environment: test, services: {api: {image: \"\\u0000:1\", health: {interval: 1h, timeout: 2h}}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A watchdog: an input on which Load never returns must crash the
		// worker, so that the fuzzer reports it and saves the input, rather
		// than stall quietly until -fuzztime ends.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("Load did not return within 10s on a %d-byte input", len(data)))
			}
		}()
		start := time.Now()
		e, err := Load(repoFS(t, "test", data), "test")
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Load took %s", d)
		}
		if (e == nil) == (err == nil) {
			t.Fatalf("Load returned env %v and error %v", e, err)
		}
		for _, err := range errorList(err) {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error %q is a %T, want a *FieldError", err, err)
			}
		}
		if e != nil {
			// A loaded env always resolves, given its secrets.
			values := map[SecretRef]string{}
			for _, ref := range e.SecretRefs() {
				values[ref] = "v"
			}
			if _, err := Resolve(e, repoFS(t, "test", data), "c", values); err != nil {
				t.Fatalf("Resolve of a loaded env: %v", err)
			}
		}
	})
}

// TestMigrationsNetworkNames: migrations.network takes what Docker takes as
// a network name, as the top-level network does.
func TestMigrationsNetworkNames(t *testing.T) {
	for _, n := range []string{"host", "bridge", "my_net.v2", "prod-db"} {
		data := []byte("environment: test\nservices:\n  api:\n    image: ghcr.io/example/api:v1\nmigrations:\n  image: ghcr.io/example/api:v1\n  network: " + n + "\n")
		if _, err := Load(repoFS(t, "test", data), "test"); err != nil {
			t.Errorf("migrations.network %q: %v", n, err)
		}
	}
}
