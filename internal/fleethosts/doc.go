// Package fleethosts holds only tests: a fleet of real hosts on one
// machine (internal/testenv's Fabric and Host: each host a network and
// mount namespace with its own dockerd, nginx and state dir), each running
// the real agent (`reconciler run --host`) as a process, coordinated
// through Debian's redis-server. It sits beside cmd/reconciler so that its
// tests run in parallel with that long package.
package fleethosts
