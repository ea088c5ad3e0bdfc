package termtext

import "testing"

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{"plain – ok ✓": "plain – ok ✓", "a\x1b[2Jb": `a\x1b[2Jb`, "x\r\ny\t": `x\r\ny\t`, "bad\xffbyte": `bad\xffbyte`, "\u009b31m": `\u009b31m`, "real \uFFFD": "real \uFFFD"} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}
