package state

import (
	"fmt"
	"strings"
	"testing"
)

// env30 is an env file of 30 services in the shape of bench/noop.sh's, with
// some of every kind of field the no-op reads (env files, config files,
// secrets, listen lines, depends, a defaults block), so that a benchmark of
// Load spends its time where a real no-op does.
func env30() []byte {
	var b strings.Builder
	b.WriteString("environment: bench\n")
	b.WriteString("nginx: {confDir: /etc/nginx/sites, test: \"true\", reload: \"true\"}\n")
	b.WriteString("defaults:\n  memory: 16m\n  drain: 100ms\n")
	b.WriteString("services:\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "  s%03d:\n", i)
		fmt.Fprintf(&b, "    image: registry.local:5000/bench/app:v1.%d\n", i)
		b.WriteString("    containerPort: 8080\n")
		fmt.Fprintf(&b, "    listen: \"80\"\n    serverName: s%03d.example.com\n", i)
		b.WriteString("    command: [\"/app/server\", \"serve\"]\n")
		b.WriteString("    envFile: envs/test.env\n")
		b.WriteString("    env: {VERSION: v1, LOG_LEVEL: info, FEATURE: \"yes\"}\n")
		fmt.Fprintf(&b, "    secrets: {DB_PASSWORD: ssm:/bench/s%03d/db}\n", i)
		b.WriteString("    files:\n      - {source: templates/app.yaml, target: /app/config.yaml}\n")
		b.WriteString("    health: {path: /health, interval: 100ms, healthyThreshold: 1, startTimeout: 120s}\n")
		if i > 1 {
			b.WriteString("    dependsOn: [s001]\n")
		}
	}
	return []byte(b.String())
}

// BenchmarkLoad30 measures Load of a 30-service env file with its env file
// and config files, the env-file part of a no-op diff.
func BenchmarkLoad30(b *testing.B) {
	fsys := repoFS(b, "bench", env30())
	if _, err := Load(fsys, "bench"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Load(fsys, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
