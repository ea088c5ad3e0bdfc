package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// FuzzVerifySignature: any header and body are answered without a panic;
// the right HMAC is accepted and the same header for another body or
// secret is refused.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("secret"), []byte(`{"ref":"refs/heads/main"}`), "sha256=00")
	f.Add([]byte("s"), []byte(""), "")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		verifySignature(secret, body, header)
		if len(secret) == 0 {
			return
		}
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		good := "sha256=" + hex.EncodeToString(m.Sum(nil))
		if err := verifySignature(secret, body, good); err != nil {
			t.Fatalf("right signature refused: %v", err)
		}
		if err := verifySignature(secret, append(body, 'x'), good); err == nil {
			t.Fatal("signature of another body accepted")
		}
		if err := verifySignature(append(secret, 'x'), body, good); err == nil {
			t.Fatal("signature made with another secret accepted")
		}
	})
}
