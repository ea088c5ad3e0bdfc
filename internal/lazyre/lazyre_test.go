package lazyre

import (
	"regexp"
	"sync"
	"testing"
)

func TestMatchesLikeRegexp(t *testing.T) {
	const pattern = `^a(b+)c$`
	re, want := New(pattern), regexp.MustCompile(pattern)
	for _, s := range []string{"abc", "abbbc", "ac", "xabc", ""} {
		if got, w := re.MatchString(s), want.MatchString(s); got != w {
			t.Errorf("MatchString(%q) = %v, want %v", s, got, w)
		}
		if got, w := re.FindStringSubmatch(s), want.FindStringSubmatch(s); len(got) != len(w) || (len(w) > 1 && got[1] != w[1]) {
			t.Errorf("FindStringSubmatch(%q) = %q, want %q", s, got, w)
		}
		if got, w := re.FindSubmatch([]byte(s)), want.FindSubmatch([]byte(s)); len(got) != len(w) || (len(w) > 1 && string(got[1]) != string(w[1])) {
			t.Errorf("FindSubmatch(%q) = %q, want %q", s, got, w)
		}
	}
	if re.String() != pattern {
		t.Errorf("String() = %q, want %q", re.String(), pattern)
	}
}

func TestCompiledOnceUnderConcurrentUse(t *testing.T) {
	re := New(`^x+$`)
	var wg sync.WaitGroup
	got := make([]*regexp.Regexp, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !re.MatchString("xxx") {
				t.Error("no match")
			}
			got[i] = re.Compiled()
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("goroutine %d got a different compiled expression", i)
		}
	}
}

func TestBadPatternPanicsOnFirstUseNotAtDeclaration(t *testing.T) {
	re := New(`(`) // must not panic here
	defer func() {
		if recover() == nil {
			t.Error("a bad pattern did not panic on first use")
		}
	}()
	re.MatchString("x")
}
