// Package awscloud gives reconciler the parts of AWS it uses (the secret
// stores, STS, S3 backups, RDS snapshots, Route 53, SES) without linking
// the AWS SDK: each logical call runs the helper binary reconciler-aws
// (cmd/reconciler-aws, package awscloud/sdk) once, with one JSON request
// on its stdin and one JSON response on its stdout. A command or an env
// that calls no AWS API never starts it, and the SDK's packages, whose
// init costs every process memory and time, stay out of the reconciler
// binary.
//
// Configuration is the SDK's default chain, read by the helper from the
// environment it inherits (environment variables, shared config and
// credentials files, then the EC2 instance profile), with the region and
// profile of the env file's aws block (Settings) winning. The SDK's
// endpoint variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SSM, ...) are
// honoured by the SDK itself.
package awscloud

import (
	"errors"
)

// DiffBaseHint ends every error of a missing AWS setup: a preview needs
// none.
const DiffBaseHint = "`reconciler diff --base` previews without AWS"

// ErrNoRegion is returned when no region is configured.
var ErrNoRegion = errors.New("no AWS region")

// ErrNoCredentials is returned when the SDK's chain finds no credentials.
var ErrNoCredentials = errors.New("no AWS credentials")

// ErrProtocol is returned by the helper for a request it cannot take: an
// unknown op or protocol version, or malformed arguments.
var ErrProtocol = errors.New("reconciler-aws protocol")

// ErrNoHelper is returned when the helper binary is neither beside the
// running executable nor in $PATH.
var ErrNoHelper = errors.New("reconciler-aws not found")

// Results of EnsureHealthCheck.
const (
	HealthCheckCreated   = "created"
	HealthCheckUpdated   = "updated"
	HealthCheckUnchanged = "unchanged"
)

// Settings are the environment's own AWS settings (the env file's aws
// block); the zero Settings leaves everything to the SDK's chain.
type Settings struct {
	// Region wins over AWS_REGION and the shared config; with it the EC2
	// metadata service is never asked for a region.
	Region string `json:"region,omitempty"`
	// Profile is the shared config profile; "" means AWS_PROFILE or default.
	Profile string `json:"profile,omitempty"`
	// File is the env file they come from ("envs/prod.yaml"), named in
	// errors as the place to set them.
	File string `json:"file,omitempty"`
}
