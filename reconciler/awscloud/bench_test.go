package awscloud_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/awscloud/sdk"
)

// BenchmarkResolveSSM is the cost of one agent sync's secret resolve with
// three ssm: references, against the fake on loopback (plain HTTP: no TLS
// handshake, which a real endpoint adds to each helper process): through
// the helper, one process per resolve as the agent does it now, and with
// the SDK in-process, the configuration loaded once, as before. cpu-ms/op
// counts this process's and its children's user and system time, the fake
// server's included (the same in both).
//
//	go test -run XXX -bench ResolveSSM -benchtime 100x ./reconciler/awscloud/
func BenchmarkResolveSSM(b *testing.B) {
	fake := testenv.FakeAWS(b)
	fake.Setenv(b)
	for _, p := range []string{"/app/db", "/app/redis", "/app/jwt"} {
		fake.SetParameter(p, "v-"+p)
	}
	refs := testenv.SecretRefs(b, "ssm:/app/db", "ssm:/app/redis", "ssm:/app/jwt")
	ctx := context.Background()

	b.Run("helper", func(b *testing.B) {
		l := &awscloud.Loader{Helper: helper}
		cpu := cpuTime()
		b.ResetTimer()
		for b.Loop() {
			vals, errs, err := l.Secrets(ctx, refs)
			if err != nil || len(errs) != 0 || len(vals) != 3 {
				b.Fatal(vals, errs, err)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	})
	b.Run("in-process", func(b *testing.B) {
		cfg, err := sdk.Load(ctx, awscloud.Settings{})
		if err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime()
		b.ResetTimer()
		for b.Loop() {
			vals, err := sdk.NewSSM(cfg).Resolve(ctx, refs)
			if err != nil || len(vals) != 3 {
				b.Fatal(vals, err)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	})
}

// cpuTime is the user and system time of this process and of its
// children that have been waited for.
func cpuTime() time.Duration {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return t
}
