package state

import (
	"testing"
	"time"
)

func TestObservedLive(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	blue := Container{Name: "e-web-blue", Service: "web", Color: Blue, State: "running", StartedAt: t0}
	green := Container{Name: "e-web-green", Service: "web", Color: Green, State: "running", StartedAt: t0.Add(time.Minute)}
	stopped := func(c Container) Container { c.State = "exited"; return c }
	for _, tc := range []struct {
		name string
		o    Observed
		want string
	}{
		{"none", Observed{}, ""},
		{"the site's color", Observed{Containers: []Container{blue, green}, Sites: []Site{{Service: "web", Live: Green}}}, green.Name},
		{"the site's color even when stopped", Observed{Containers: []Container{stopped(blue), stopped(green)}, Sites: []Site{{Service: "web", Live: Green}}}, green.Name},
		{"not a stopped previous release while the other runs", Observed{Containers: []Container{blue, stopped(green)}, Sites: []Site{{Service: "web", Live: Green}}}, blue.Name},
		{"the site's color is gone", Observed{Containers: []Container{blue}, Sites: []Site{{Service: "web", Live: Green}}}, blue.Name},
		{"worker: the running one", Observed{Containers: []Container{stopped(blue), green}}, green.Name},
		{"worker: the older of two running", Observed{Containers: []Container{green, blue}}, blue.Name},
		{"worker: the older of two stopped", Observed{Containers: []Container{stopped(blue), stopped(green)}}, blue.Name},
		{"another service's site", Observed{Containers: []Container{blue, green}, Sites: []Site{{Service: "api", Live: Green}}}, blue.Name},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if c := tc.o.Live("web"); c != nil {
				got = c.Name
			}
			if got != tc.want {
				t.Fatalf("Live = %q, want %q", got, tc.want)
			}
		})
	}
}
