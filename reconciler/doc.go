// Package reconciler computes a plan from the desired and observed state
// (Diff, pure) and carries it out (Apply) through small interfaces that it
// declares here: Runtime (containers), Edge (nginx), Prober (health checks).
// Adapters live in subpackages named after what they wrap.
package reconciler
