package history

import (
	"path/filepath"
	"testing"
	"time"
)

// TestSummarize: success and rollback rates count succeeded, failed and
// refused attempts in the window; transient, interrupted and drift repairs
// are not deploys; the new fields survive a write and a read.
func TestSummarize(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	recs := []Record{
		{Result: Failed, Start: at(800 * time.Hour), RolledBack: true}, // outside a 720h window
		{Result: Succeeded, Start: at(700 * time.Hour), Trigger: "poll"},
		{Result: Succeeded, Start: at(10 * time.Hour), Trigger: TriggerApply, Requests: 120, Errors: 3, P95Before: 40 * time.Millisecond, P95After: 55 * time.Millisecond},
		{Result: Failed, Start: at(9 * time.Hour), Trigger: TriggerApply, RolledBack: true},
		{Result: Refused, Start: at(8 * time.Hour), Trigger: "webhook"},
		{Result: Transient, Start: at(7 * time.Hour)},
		{Result: Interrupted, Start: at(6 * time.Hour)},
		{Result: Failed, Start: at(5 * time.Hour), Trigger: "heal", RolledBack: true},
	}
	s := Summarize(recs, now.Add(-720*time.Hour))
	if s != (Stats{Deploys: 4, Succeeded: 2, Failed: 2, RolledBack: 1}) {
		t.Fatalf("stats %+v", s)
	}
	if s.SuccessRate() != 0.5 || s.RollbackRate() != 0.25 {
		t.Fatalf("rates %v %v", s.SuccessRate(), s.RollbackRate())
	}
	if all := Summarize(recs, time.Time{}); all.Deploys != 5 || all.RolledBack != 2 {
		t.Fatalf("all time: %+v", all)
	}
	if (Stats{}).SuccessRate() != 0 || (Stats{}).RollbackRate() != 0 {
		t.Fatal("rates of no deploys")
	}

	path := filepath.Join(t.TempDir(), "h.jsonl")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Append(recs[2]); err != nil {
		t.Fatal(err)
	}
	got, _, err := Read(path)
	if err != nil || len(got) != 1 || got[0].Requests != 120 || got[0].Errors != 3 || got[0].P95After != 55*time.Millisecond || got[0].Trigger != TriggerApply {
		t.Fatalf("read back %+v, %v", got, err)
	}
}
