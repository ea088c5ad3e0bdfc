package state

import (
	"regexp"
	"strings"
	"testing"
)

// matcherCases pairs each hand-written matcher with the regular expression
// it stands for.
var matcherCases = []struct {
	name    string
	match   func(string) bool
	pattern string
}{
	{"isDNSLabel", isDNSLabel, `^[a-z]([a-z0-9-]*[a-z0-9])?$`},
	{"isImageTag", isImageTag, `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`},
	{"isNetworkName", isNetworkName, `^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`},
	{"isPathComponent", isPathComponent, `^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`},
	{"isEnvVarName", isEnvVarName, `^[A-Za-z_][A-Za-z0-9_]*$`},
}

// TestMatchersAgreeWithRegexps checks every string of up to 5 characters
// over an alphabet of each character class the rules name (and some they
// do not), and strings around the length bounds.
func TestMatchersAgreeWithRegexps(t *testing.T) {
	alphabet := []string{"a", "z", "Z", "0", "9", "-", ".", "_", "/", ":", "\n", "é"}
	var all []string
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		all = append(all, prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			grow(prefix+c, n-1)
		}
	}
	grow("", 5)
	for _, n := range []int{39, 40, 41, 63, 64, 127, 128, 129, 200} {
		for _, s := range []string{"a", "a-", "a.", "_", "A"} {
			body := strings.Repeat("b", n-len(s))
			all = append(all, s+body, body+s)
		}
	}
	for _, tc := range matcherCases {
		re := regexp.MustCompile(tc.pattern)
		bad := 0
		for _, s := range all {
			if got, want := tc.match(s), re.MatchString(s); got != want && bad < 10 {
				bad++
				t.Errorf("%s(%q) = %v; the regexp %s says %v", tc.name, s, got, tc.pattern, want)
			}
		}
	}
}

// FuzzMatchers compares the matchers with their regexps on any input.
func FuzzMatchers(f *testing.F) {
	for _, s := range []string{"", "a", "a--b", "a__b", "a___b", "v1.2.3", "-a", "a-", "Ab", "x/y"} {
		f.Add(s)
	}
	res := make([]*regexp.Regexp, len(matcherCases))
	for i, tc := range matcherCases {
		res[i] = regexp.MustCompile(tc.pattern)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, tc := range matcherCases {
			if got, want := tc.match(s), res[i].MatchString(s); got != want {
				t.Errorf("%s(%q) = %v; the regexp %s says %v", tc.name, s, got, tc.pattern, want)
			}
		}
	})
}
