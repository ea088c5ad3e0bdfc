package gitrepo_test

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

var schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// FuzzRedact: whatever the URL, neither Redact, state.RedactURL nor
// RedactError keep its password, nor over HTTP a lone user name.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"https://TOKEN@github.com/o/r.git", "http://u:tok%zz@host/", "ssh://git@h/r", "https://x:y@h:1/p?q#f", "git@github.com:o/r.git"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok || !schemeRE.MatchString(scheme) {
			return // not a URL with a scheme
		}
		host := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			host = rest[:i]
		}
		at := strings.LastIndex(host, "@")
		if at < 0 {
			return
		}
		user, pass, hasPass := strings.Cut(host[:at], ":")
		secret := pass
		if !hasPass && (scheme == "http" || scheme == "https") {
			secret = user
		}
		// A token has letters beyond hex: digits and A-F alone can be
		// made by the percent-escaping of the rest of the URL.
		if len(secret) < 4 || strings.Contains(secret, "@") || !strings.ContainsAny(strings.ToLower(secret), "ghijklmnopqrstuvwxyz") || strings.Contains(host[at+1:], secret) || strings.Contains(scheme, secret) || strings.Contains(rest[len(host):], secret) {
			return // too short, or also elsewhere in the URL: not a finding
		}
		if hasPass && strings.Contains(user, secret) {
			return
		}
		// Escaping the rest of the URL can make the secret's text on its
		// own (" 00X0" escapes to "%2000X0", which holds "000X"): then it
		// is no finding.
		noCred := scheme + "://" + host[at+1:] + rest[len(host):]
		if strings.Contains(url.QueryEscape(noCred), secret) {
			return
		}
		if u, err := url.Parse(noCred); err == nil && strings.Contains(u.String(), secret) {
			return
		}
		for _, got := range []string{gitrepo.Redact(raw), state.RedactURL(raw),
			gitrepo.RedactError(raw, errors.New("get "+raw+": "+url.QueryEscape(raw))).Error()} {
			if strings.Contains(got, secret) {
				t.Fatalf("%q keeps %q: %q", raw, secret, got)
			}
		}
	})
}
