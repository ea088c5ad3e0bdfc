package notify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// FuzzPayload: whatever the event's texts (a commit message, an error
// quoting anything), each format's payload is valid JSON that carries
// them, and the email is built without a panic.
func FuzzPayload(f *testing.F) {
	f.Add("prod", "abc123", "a <a@x>", "fix: it\n```", "error: \x00 \"q\"", "api", "img:v1")
	f.Fuzz(func(t *testing.T, env, commit, author, message, errText, svc, image string) {
		e := reconciler.Event{Name: state.EventDeployFailed, Env: env, Commit: commit, Author: author, Message: message, Error: errText,
			Services: []reconciler.EventService{{Name: svc, NewImage: image}}}
		for _, format := range []string{"json", "slack"} {
			b, err := payload(format, e)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if !json.Valid(b) {
				t.Fatalf("%s payload is not JSON: %q", format, b)
			}
		}
		subject, body := emailMessage(e)
		if strings.ContainsAny(subject, "\r\n") && !strings.ContainsAny(env+commit, "\r\n") {
			t.Fatalf("subject %q has a line break its inputs did not put there", subject)
		}
		_ = body
	})
}
