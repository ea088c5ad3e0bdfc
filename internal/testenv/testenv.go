// Package testenv holds helpers shared by the tests of several packages: a
// Docker client that skips (or fails under CI) when no engine answers, the
// demo app as an offline image, free loopback ports and unique environment
// names. It is a normal package so that tests of any package can import it;
// only tests import it.
package testenv

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"testing"
)

// SkipOrFail skips t with the formatted message, except when the environment
// variable CI is "true": then it fails t instead, because CI must never pass
// by skipping.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing dependency fails instead of skipping)", msg)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// port is released before FreePort returns, so another process may take it;
// callers use it at once.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// UniqueEnv returns a short environment name ("t" and 6 random characters
// of [a-z0-9]) that no other test, in this process or another, uses: tests
// that deploy use it so that parallel runs never collide.
func UniqueEnv(t testing.TB) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("unique env: %v", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "t" + string(b)
}

// WebhookSignature returns the X-Hub-Signature-256 value of body, as
// GitHub sends it.
func WebhookSignature(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
