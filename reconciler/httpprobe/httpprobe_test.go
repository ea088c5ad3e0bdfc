package httpprobe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			select {
			case <-block:
			case <-r.Context().Done():
			}
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	// A port that was free a moment ago, for connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()

	tests := []struct {
		name    string
		port    int
		path    string
		wantErr string
	}{
		{"2xx passes", port, "/ok", ""},
		{"path without slash", port, "ok", ""},
		{"3xx passes without following", port, "/redirect", ""},
		{"5xx fails with status", port, "/health", "status 503 Service Unavailable"},
		{"timeout", port, "/slow", "no answer within 200ms"},
		{"refused", closed, "/health", "connection refused"},
	}
	p := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(context.Background(), tc.port, tc.path, 200*time.Millisecond)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check error = %v, want it to contain %q", err, tc.wantErr)
			}
			t.Logf("error: %v", err)
		})
	}
}
