// Package state is the model of reconciler: the desired state of one
// environment, read from envs/NAME.yaml at one git commit (parse, default,
// validate, resolve), and the observed state of the host (containers and the
// nginx files reconciler owns). It is pure: it does no I/O and imports no
// Docker client, go-git or AWS SDK.
package state
