// Package lazyre holds regular expressions that are compiled on first use
// instead of at package initialisation.
//
// A package-level regexp.MustCompile runs in every process that links the
// package, before main, whether or not the process ever matches anything:
// `reconciler version` paid for compiling every validation pattern of the
// state package. A lazyre.Regexp is declared the same way and compiled once,
// the first time one of its methods is called; a bad pattern still panics,
// then (its tests call every pattern).
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled on first use. It is safe for
// concurrent use. Its methods are those of *regexp.Regexp the project uses.
type Regexp struct {
	compile func() *regexp.Regexp
}

// New returns pattern as a Regexp that compiles (with regexp.MustCompile)
// on first use.
func New(pattern string) *Regexp {
	return &Regexp{compile: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })}
}

// Compiled returns the compiled expression, compiling it on the first call.
func (r *Regexp) Compiled() *regexp.Regexp { return r.compile() }

// MatchString is regexp.Regexp.MatchString.
func (r *Regexp) MatchString(s string) bool { return r.compile().MatchString(s) }

// FindStringSubmatch is regexp.Regexp.FindStringSubmatch.
func (r *Regexp) FindStringSubmatch(s string) []string { return r.compile().FindStringSubmatch(s) }

// FindSubmatch is regexp.Regexp.FindSubmatch.
func (r *Regexp) FindSubmatch(b []byte) [][]byte { return r.compile().FindSubmatch(b) }

// String returns the source text of the expression.
func (r *Regexp) String() string { return r.compile().String() }
