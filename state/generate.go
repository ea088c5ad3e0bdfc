package state

// The env file reference is generated from the types in env.go; a test in
// internal/gendoc fails when docs/env-reference.md is stale.
//go:generate go run ../internal/gendoc -src env.go -o ../docs/env-reference.md
