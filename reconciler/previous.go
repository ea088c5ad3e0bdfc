package reconciler

import (
	"fmt"

	"github.com/developer-mesh/reconciler/state"
)

// Kept reports whether c, a service's container of the color that does
// not serve, is the previous release kept ready: stopped (exited) after
// its drain, with its files, to be resumed by a rollback. The next
// release replaces it; until then it is neither drift nor live. A
// container of that color in any other state (running, created, dead) is
// the leftover of an interrupted deploy.
func Kept(c *state.Container) bool { return c != nil && c.State == "exited" }

// idleReason says why the container of the color a release starts goes
// first: the previous release kept for a rollback, or a leftover.
func idleReason(idle *state.Container) string {
	if Kept(idle) {
		return fmt.Sprintf("previous release %s (stopped, kept for a rollback) is removed first: this release's previous one replaces it", idle.Name)
	}
	return fmt.Sprintf("leftover %s (%s) is removed first", idle.Name, idle.State)
}
