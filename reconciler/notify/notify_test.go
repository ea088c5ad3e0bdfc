package notify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// TestSlackIconForEveryEvent: a Slack message of every event a receiver can
// listen to starts with that event's own icon.
func TestSlackIconForEveryEvent(t *testing.T) {
	if len(slackIcons) != len(state.Events) {
		t.Errorf("%d Slack icons for %d events", len(slackIcons), len(state.Events))
	}
	for _, name := range state.Events {
		icon := slackIcons[name]
		if icon == "" {
			t.Errorf("event %s has no Slack icon", name)
			continue
		}
		b, err := payload("slack", reconciler.Event{Name: name, Env: "prod", Commit: "c0ffee"})
		if err != nil {
			t.Fatal(err)
		}
		var msg struct{ Text string }
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatal(err)
		}
		if want := icon + " *" + string(name) + "* prod"; !strings.HasPrefix(msg.Text, want) {
			t.Errorf("Slack text of %s = %q, want it to start with %q", name, msg.Text, want)
		}
	}
}
