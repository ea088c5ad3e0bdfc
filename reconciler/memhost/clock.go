package memhost

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
)

var _ reconciler.Clock = (*Clock)(nil)

// Clock is a reconciler.Clock whose time moves only when Sleep is called:
// Sleep adds its duration to Now at once. A test runs hours of health
// waits, watches and drains in no time, and can read what was waited.
//
// Steps that run together (an atomic release's bakes) share the clock:
// each one's Sleep moves the time of all, so which of them reaches its
// deadline first depends on the scheduler. A test whose outcome depends
// on it runs in a testing/synctest bubble with the applier's real clock.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
	// OnSleep, when set, is called after each Sleep with the new time,
	// without the clock's lock: a test makes things happen meanwhile.
	OnSleep func(now time.Time)
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep returns ctx.Err() when ctx is done; else it moves the clock d
// ahead and returns nil.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	now, f := c.now, c.OnSleep
	c.mu.Unlock()
	if f != nil {
		f(now)
	}
	return nil
}

// Slept returns the durations of the Sleep calls so far, in order.
func (c *Clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}
