package testenv

import (
	"bytes"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// SigningKey is an OpenPGP key made for one test.
type SigningKey struct {
	Entity *openpgp.Entity
	// Public is the armored public key, as a --trusted-keys file holds it.
	Public string
}

// NewSigningKey generates an OpenPGP key pair (no passphrase).
func NewSigningKey(t testing.TB, name string) *SigningKey {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.com", nil)
	if err != nil {
		t.Fatalf("openpgp key: %v", err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return &SigningKey{Entity: e, Public: b.String()}
}

// CommitSigned stages everything and commits with go-git, signed by key;
// it returns the new commit's hash.
func (r *Repo) CommitSigned(msg string, key *SigningKey) string {
	r.t.Helper()
	repo, err := git.PlainOpen(r.Dir)
	if err != nil {
		r.t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Now()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, SignKey: key.Entity, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatalf("signed commit: %v", err)
	}
	return h.String()
}
