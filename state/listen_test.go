package state

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseListen(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Listen
		ssl  bool
	}{
		{in: "80", want: Listen{Port: 80}},
		{in: "443 ssl", want: Listen{Port: 443, Params: []string{"ssl"}}, ssl: true},
		{in: "127.0.0.1:8080", want: Listen{Host: "127.0.0.1", Port: 8080}},
		{in: "*:8443 ssl http2", want: Listen{Host: "*", Port: 8443, Params: []string{"ssl", "http2"}}, ssl: true},
		{in: "[::]:80 default_server", want: Listen{Host: "[::]", Port: 80, Params: []string{"default_server"}}},
		{in: "localhost:8000 backlog=512", want: Listen{Host: "localhost", Port: 8000, Params: []string{"backlog=512"}}},
	} {
		got, err := ParseListen(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseListen(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if got.SSL() != tc.ssl {
			t.Errorf("ParseListen(%q).SSL() = %v", tc.in, got.SSL())
		}
		if got.String() != tc.in {
			t.Errorf("ParseListen(%q).String() = %q", tc.in, got.String())
		}
	}
	// Validation takes only a value with a port: a unix socket or an
	// address without one never reaches the planner or the templates.
	for _, in := range []string{"", "ssl", "unix:/run/x.sock ssl", "10.0.0.1 ssl", "0", "65536", "80;", "443 SSL", "80 a=b;c"} {
		if l, err := ParseListen(in); err == nil || !strings.HasPrefix(err.Error(), "want what nginx's listen takes") {
			t.Errorf("ParseListen(%q) = %+v, %v; want an error", in, l, err)
		}
	}
}
