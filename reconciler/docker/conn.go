package docker

import (
	"context"
	"sync"
	"time"

	"github.com/docker/docker/client"
)

// Conn is an engine client kept between uses (the agent's syncs) and
// reconnected after a failed ping. The zero Conn is ready; it is safe for
// concurrent use.
type Conn struct {
	mu  sync.Mutex
	cli *client.Client
}

// Get returns the engine client, connecting when needed.
func (c *Conn) Get(ctx context.Context) (*client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cli != nil {
		return c.cli, nil
	}
	cli, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	c.cli = cli
	return cli, nil
}

// Down reports whether the engine does not answer; it drops the client so
// that the next sync reconnects.
func (c *Conn) Down(ctx context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cli == nil {
		return true
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := c.cli.Ping(pctx); err != nil {
		c.cli.Close()
		c.cli = nil
		return true
	}
	return false
}

// Close closes the client, if any.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cli != nil {
		c.cli.Close()
	}
}
