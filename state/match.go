package state

// Hand-written matchers for the name rules that every no-op checks. Each
// accepts exactly what the regular expression in its comment accepts
// (TestMatchersAgreeWithRegexps compares them): compiling those
// expressions was a visible part of a one-shot command's validation, and
// these rules are simple enough to read as code.

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || isDigit(c) || 'A' <= c && c <= 'Z' }

// isDNSLabel matches ^[a-z]([a-z0-9-]*[a-z0-9])?$ (no length bound; the
// callers bound it).
func isDNSLabel(s string) bool {
	if s == "" || !isLower(s[0]) || s[len(s)-1] == '-' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// isImageTag matches ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$.
func isImageTag(s string) bool {
	if s == "" || len(s) > 128 || !(isAlnum(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isNetworkName matches ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$, what Docker
// accepts as a network name.
func isNetworkName(s string) bool {
	if s == "" || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isPathComponent matches ^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$: runs of
// lowercase letters and digits, separated by '.', '_', '__' or any number
// of '-'.
func isPathComponent(s string) bool {
	i := 0
	for {
		// A run of letters and digits.
		start := i
		for i < len(s) && (isLower(s[i]) || isDigit(s[i])) {
			i++
		}
		if i == start {
			return false
		}
		if i == len(s) {
			return true
		}
		// A separator, then another run.
		switch {
		case s[i] == '.':
			i++
		case s[i] == '_':
			i++
			if i < len(s) && s[i] == '_' {
				i++
			}
		case s[i] == '-':
			for i < len(s) && s[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

// isEnvVarName matches ^[A-Za-z_][A-Za-z0-9_]*$, a variable name.
func isEnvVarName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}
