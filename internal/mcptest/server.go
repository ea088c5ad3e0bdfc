// Package mcptest is a small MCP server and client speaking enough of MCP's
// Streamable HTTP transport to test deploys honestly: sessions in the
// Mcp-Session-Id header, JSON-RPC tools/call over POST, a server-sent event
// stream on GET, and 404 for a session the server does not know. The
// server runs in the project's test images (internal/mcptest/mcpd); the
// client counts every 404, every failed call and every stream break.
package mcptest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// SessionHeader is the header of Streamable HTTP that names a session.
const SessionHeader = "Mcp-Session-Id"

// Path is the MCP endpoint of the server.
const Path = "/mcp"

// EventEvery is how often the server sends an event on a stream.
const EventEvery = 100 * time.Millisecond

// Server is an MCP server whose answers name Version. Its sessions live
// in memory: another process (another color) does not know them.
type Server struct {
	Version string

	mu       sync.Mutex
	sessions map[string]bool
}

// NewServer returns a Server whose answers name version.
func NewServer(version string) *Server {
	return &Server{Version: version, sessions: map[string]bool{}}
}

// rpc is a JSON-RPC 2.0 request or notification.
type rpc struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// ServeHTTP serves Path (POST: JSON-RPC, GET: the event stream, DELETE:
// end the session) and GET /health.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		fmt.Fprintln(w, "ok")
		return
	}
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodPost:
		s.post(w, r)
	case http.MethodGet:
		s.stream(w, r)
	case http.MethodDelete:
		if !s.known(w, r) {
			return
		}
		s.mu.Lock()
		delete(s.sessions, r.Header.Get(SessionHeader))
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// known answers 400 without a session header and 404 for a session the
// server does not know, and reports whether the request may go on. It is
// the first thing every request with a session meets: nothing is done
// before it.
func (s *Server) known(w http.ResponseWriter, r *http.Request) bool {
	id := r.Header.Get(SessionHeader)
	if id == "" {
		http.Error(w, "missing "+SessionHeader, http.StatusBadRequest)
		return false
	}
	s.mu.Lock()
	ok := s.sessions[id]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown session", http.StatusNotFound)
	}
	return ok
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	var req rpc
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.JSONRPC != "2.0" {
		http.Error(w, "want a JSON-RPC 2.0 message", http.StatusBadRequest)
		return
	}
	if req.Method == "initialize" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		s.mu.Lock()
		s.sessions[id] = true
		s.mu.Unlock()
		w.Header().Set(SessionHeader, id)
		reply(w, req.ID, map[string]any{
			"protocolVersion": "2025-06-18",
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]any{"name": "mcptest", "version": s.Version},
		})
		return
	}
	if !s.known(w, r) {
		return
	}
	switch req.Method {
	case "notifications/initialized":
		w.WriteHeader(http.StatusAccepted)
	case "tools/call":
		reply(w, req.ID, map[string]any{
			"content": []map[string]any{{"type": "text", "text": "version=" + s.Version}},
		})
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, orNull(req.ID))
	}
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept") != "text/event-stream" {
		http.Error(w, "want Accept: text/event-stream", http.StatusNotAcceptable)
		return
	}
	if !s.known(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	f.Flush()
	t := time.NewTicker(EventEvery)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"version\":%q,\"n\":%d}}\n\n", n, s.Version, n); err != nil {
			return
		}
		f.Flush()
	}
}

func reply(w http.ResponseWriter, id json.RawMessage, result any) {
	b, _ := json.Marshal(result)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, orNull(id), b)
}

func orNull(id json.RawMessage) string {
	if len(id) == 0 {
		return "null"
	}
	return string(id)
}
