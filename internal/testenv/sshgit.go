package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// NewSSHKey generates an ed25519 key pair, writes the private key as an
// OpenSSH PEM file (mode 0600) in a temp dir of t, and returns the file's
// path and the public key.
func NewSSHKey(t testing.TB) (keyFile string, pub ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("ssh key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatalf("ssh key: %v", err)
	}
	keyFile = filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("ssh key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("ssh key: %v", err)
	}
	return keyFile, signer.PublicKey()
}

// WriteKnownHosts writes a known_hosts file in a temp dir of t with one
// line that binds addr ("host:port", as ssh dials it) to key, in the form
// ssh writes for a port other than 22 ("[127.0.0.1]:2222 ssh-ed25519 ...").
// It returns the file's path.
func WriteKnownHosts(t testing.TB, addr string, key ssh.PublicKey) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(knownhosts.Line([]string{addr}, key)+"\n"), 0o600); err != nil {
		t.Fatalf("known_hosts: %v", err)
	}
	return file
}

// StartSSHGit serves the bare repository repoDir over ssh on 127.0.0.1 (an
// in-process server, no sshd) until t ends. The server has a fresh ed25519
// host key and accepts one fresh ed25519 client key, by public key auth
// only; it runs `git upload-pack` for "exec" requests of the form
// `git-upload-pack '<path>'` with a path in repoDir, and refuses any other
// command (so it serves fetches, not pushes). It returns the repository's
// URL (ssh://git@127.0.0.1:PORT/abs/repo.git), the client's private key
// file and a known_hosts file holding the host key. It skips (fails under
// CI=true) when git is missing.
func StartSSHGit(t testing.TB, repoDir string) (url, keyFile, knownHosts string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		SkipOrFail(t, "git not installed: %v", err)
	}
	root, err := filepath.Abs(repoDir)
	if err != nil {
		t.Fatalf("ssh git server: %v", err)
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("ssh host key: %v", err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatalf("ssh host key: %v", err)
	}
	keyFile, clientPub := NewSSHKey(t)

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), clientPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown public key")
		},
	}
	cfg.AddHostKey(hostSigner)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ssh git server: %v", err)
	}
	s := &sshGitServer{root: root, cfg: cfg, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve(l)
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})

	addr := l.Addr().String()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	url = "ssh://git@" + net.JoinHostPort("127.0.0.1", port) + filepath.ToSlash(root)
	return url, keyFile, WriteKnownHosts(t, addr, hostSigner.PublicKey())
}

// sshGitServer is the state of one StartSSHGit server: the open
// connections, closed at cleanup, and the goroutines to wait for.
type sshGitServer struct {
	root   string
	cfg    *ssh.ServerConfig
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]bool
}

func (s *sshGitServer) serve(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed at cleanup
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handleConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *sshGitServer) handleConn(c net.Conn) {
	// A failed handshake (unknown client key, a client that rejects the
	// host key) is what some tests want: nothing to report.
	_, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleSession(ch, chReqs)
		}()
	}
}

// handleSession runs the first acceptable "exec" request of a session and
// closes it; other requests ("env", "pty-req", ...) are refused.
func (s *sshGitServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			continue
		}
		path, err := s.uploadPackPath(payload.Command)
		if err != nil {
			req.Reply(false, nil)
			fmt.Fprintf(ch.Stderr(), "%v\n", err)
			return
		}
		req.Reply(true, nil)
		// The rest of reqs must still be drained while git runs, or the
		// connection stalls.
		go func() {
			for r := range reqs {
				r.Reply(false, nil)
			}
		}()
		code := runUploadPack(ch, path)
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{code}))
		return
	}
}

// uploadPackPath parses `git-upload-pack '<path>'` (go-git and git quote
// the path in single quotes) and returns the path if it is in the served
// repository.
func (s *sshGitServer) uploadPackPath(command string) (string, error) {
	arg, ok := strings.CutPrefix(command, "git-upload-pack ")
	if !ok {
		return "", fmt.Errorf("command not allowed: %q", command)
	}
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
		arg = arg[1 : len(arg)-1]
	}
	// A quote left inside means an escaped one ('\''): no such paths here.
	if strings.Contains(arg, "'") || !filepath.IsAbs(arg) {
		return "", fmt.Errorf("path not served: %q", arg)
	}
	p := filepath.Clean(arg)
	rel, err := filepath.Rel(s.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("path not served: %q", arg)
	}
	return p, nil
}

// runUploadPack runs git upload-pack on path with ch as its standard
// streams and returns its exit code.
func runUploadPack(ch ssh.Channel, path string) uint32 {
	cmd := exec.Command("git", "upload-pack", path)
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	// A pipe copied by hand, not cmd.Stdin = ch: Wait would otherwise wait
	// for the client to close its side, which it does only after the exit
	// status arrives.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "start git upload-pack: %v\n", err)
		return 1
	}
	go func() {
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return uint32(ee.ExitCode())
	default:
		return 1
	}
}
