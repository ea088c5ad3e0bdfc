package reconciler

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// prodRelease plans the shipped envs/prod.yaml's next release: every
// image bumped (the migrations' too), on a host where the current one is
// live, with release set to order.
func prodRelease(t *testing.T, order string) *Plan {
	t.Helper()
	fsys := os.DirFS("..")
	resolve := func(commit, tag string) *state.Desired {
		e, err := state.Load(fsys, "prod")
		if err != nil {
			t.Fatal(err)
		}
		e.Release = order
		for name, s := range e.Services {
			s.Image = strings.Replace(s.Image, ":v1.4.2", ":"+tag, 1)
			e.Services[name] = s
		}
		e.Migrations.Image = strings.Replace(e.Migrations.Image, ":v1.4.2", ":"+tag, 1)
		values := map[state.SecretRef]string{}
		for _, ref := range e.SecretRefs() {
			values[ref] = "x-" + ref.String()
		}
		d, err := state.Resolve(e, fsys, commit, values)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cur := resolve("c0ffee0000000000000000000000000000000001", "v1.4.2")
	o := applied(t, cur, state.Blue)
	// The live sites were written with their access log (prod bakes).
	for i, site := range o.Sites {
		for _, s := range cur.Services {
			if s.Name != site.Service {
				continue
			}
			content, err := templates.Site(templates.SiteParams{Env: cur.Env, Service: s.Name, ConfDir: cur.Nginx.ConfDir,
				BluePort: site.BluePort, GreenPort: site.GreenPort, Listen: s.Listen, ServerName: s.ServerName, TLS: s.TLS,
				LogDir: cur.Nginx.LogDir, SessionHeader: s.SessionHeader})
			if err != nil {
				t.Fatal(err)
			}
			o.Sites[i].Content = content
		}
	}
	next := resolve("c0ffee0000000000000000000000000000000002", "v1.4.3")
	o.LastMigration = "an older run"
	for _, s := range next.Services {
		o.ImageIDs[s.Spec.Image] = "sha256:next-" + s.Name
	}
	o.ImageIDs[next.Migrations.Spec.Image] = "sha256:next-migrations"
	p, err := Diff(next, o, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShippedProdFitsTenMinutes: the shipped prod.yaml's release of new
// images (migrations with their RDS snapshot included) takes at most the
// plan's 10 minutes in the worst case; the per-service order of the same
// release does not fit.
func TestShippedProdFitsTenMinutes(t *testing.T) {
	atomic := prodRelease(t, state.ReleaseAtomic)
	perService := prodRelease(t, state.ReleasePerService)
	t.Logf("prod release, atomic: %s; per-service: %s", atomic.DurationLine(), perService.DurationLine())
	for _, c := range atomic.Changes {
		for _, s := range c.Steps {
			t.Logf("  %-8s %s", FormatDuration(s.Budget()), s)
		}
	}
	if d := atomic.Duration(); d > 10*time.Minute {
		t.Errorf("atomic release of prod: worst case %s, want at most 10m\n%s", d, atomic)
	}
	if d := perService.Duration(); d <= 10*time.Minute {
		t.Errorf("per-service release of prod: worst case %s; the test expects it over 10m (two bakes one after the other)", d)
	}
	e, err := state.Load(os.DirFS(".."), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if e.Release != state.ReleaseAtomic {
		t.Errorf("envs/prod.yaml has release %q, want %q: the order whose worst case fits 10 minutes", e.Release, state.ReleaseAtomic)
	}
	for name, s := range e.Services {
		if s.ContainerPort > 0 && s.Deploy.MaxLatency.D() != 200*time.Millisecond {
			t.Errorf("envs/prod.yaml: %s has maxLatency %s, want 200ms (the plan's response time)", name, s.Deploy.MaxLatency.D())
		}
	}
}
