package awscloud

import (
	"encoding/json"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// ProtocolVersion is the version of the requests Request carries; the
// helper refuses any other.
const ProtocolVersion = 1

// The operations of the helper, one per logical call.
const (
	OpLoad              = "load"                 // check the configuration and credentials; LoadResult
	OpIdentity          = "sts.identity"         // IdentityResult
	OpS3Put             = "s3.put"               // S3PutArgs → S3PutResult
	OpRDSSnapshot       = "rds.snapshot"         // RDSSnapshotArgs → nothing
	OpUpdateHealthCheck = "route53.update-check" // UpdateHealthCheckArgs → UpdateHealthCheckResult
	OpEnsureHealthCheck = "route53.ensure-check" // EnsureHealthCheckArgs → EnsureHealthCheckResult
	OpSiteCheckIDs      = "route53.site-checks"  // SiteCheckIDsArgs → SiteCheckIDsResult
	OpRecordSets        = "route53.record-sets"  // RecordSetsArgs → RecordSetsResult
	OpChangeRecords     = "route53.change"       // ChangeRecordsArgs → nothing
	OpSendEmail         = "ses.send-email"       // SendEmailArgs → SendEmailResult
	OpResolveSecrets    = "secrets.resolve"      // ResolveSecretsArgs → ResolveSecretsResult
)

// Error kinds of a Response; each maps back to the error callers match.
const (
	KindNoRegion      = "no-region"      // ErrNoRegion
	KindNoCredentials = "no-credentials" // ErrNoCredentials
	KindProtocol      = "protocol"       // ErrProtocol: an unknown op or version, a malformed request
	KindTimeout       = "timeout"        // context.DeadlineExceeded: the helper's own bound (RDSSnapshotArgs.Wait) ran out
	KindAWS           = "aws"            // any other failure, its message as the SDK code wrote it
)

// Request is what the client writes to the helper's stdin: one per process.
type Request struct {
	Version int `json:"version"`
	// Release is the release of the reconciler that sends the request
	// (its --version); a helper of another release refuses it (both
	// come from the same release, as make build and the release build
	// them). Empty: not checked.
	Release  string          `json:"release,omitempty"`
	Op       string          `json:"op"`
	Settings Settings        `json:"settings"`
	Args     json.RawMessage `json:"args,omitempty"`
}

// Response is the one JSON value the helper writes to stdout: Result or
// Error.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *WireError      `json:"error,omitempty"`
}

// WireError is a failure as it crosses the pipe: a kind (KindNoRegion,
// ...) and the message of the error.
type WireError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// LoadResult is the answer of OpLoad.
type LoadResult struct {
	Region string `json:"region"`
}

// IdentityResult is the answer of OpIdentity.
type IdentityResult struct {
	ARN string `json:"arn"`
}

// S3PutArgs are the arguments of OpS3Put; Body travels base64-encoded.
type S3PutArgs struct {
	URL  string `json:"url"`
	Key  string `json:"key"`
	Body []byte `json:"body"`
}

// S3PutResult is the answer of OpS3Put.
type S3PutResult struct {
	URL string `json:"url"`
}

// RDSSnapshotArgs are the arguments of OpRDSSnapshot.
type RDSSnapshotArgs struct {
	Instance string `json:"instance"`
	ID       string `json:"id"`
	// Wait, when set, bounds the wait for the snapshot in the helper
	// (nanoseconds): a little less than the caller's deadline leaves, so
	// that the helper ends first and says the last status it read.
	Wait time.Duration `json:"wait,omitempty"`
}

// UpdateHealthCheckArgs are the arguments of OpUpdateHealthCheck.
type UpdateHealthCheckArgs struct {
	ID   string `json:"id"`
	Path string `json:"path"`
	Port int    `json:"port"`
}

// UpdateHealthCheckResult is the answer of OpUpdateHealthCheck.
type UpdateHealthCheckResult struct {
	Changed bool `json:"changed"`
}

// EnsureHealthCheckArgs are the arguments of OpEnsureHealthCheck.
type EnsureHealthCheckArgs struct {
	Check state.SiteHealthCheck `json:"check"`
}

// EnsureHealthCheckResult is the answer of OpEnsureHealthCheck.
type EnsureHealthCheckResult struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

// SiteCheckIDsArgs are the arguments of OpSiteCheckIDs.
type SiteCheckIDsArgs struct {
	Checks []state.SiteHealthCheck `json:"checks"`
}

// SiteCheckIDsResult is the answer of OpSiteCheckIDs.
type SiteCheckIDsResult struct {
	IDs map[string]string `json:"ids"`
}

// RecordSetsArgs are the arguments of OpRecordSets.
type RecordSetsArgs struct {
	Zone string `json:"zone"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// RecordSetsResult is the answer of OpRecordSets.
type RecordSetsResult struct {
	Sets []state.RecordSet `json:"sets"`
}

// ChangeRecordsArgs are the arguments of OpChangeRecords.
type ChangeRecordsArgs struct {
	Zone    string                    `json:"zone"`
	Changes []reconciler.RecordChange `json:"changes"`
}

// SendEmailArgs are the arguments of OpSendEmail.
type SendEmailArgs struct {
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body"`
}

// SendEmailResult is the answer of OpSendEmail.
type SendEmailResult struct {
	ID string `json:"id"`
}

// ResolveSecretsArgs are the arguments of OpResolveSecrets: references as
// written ("ssm:/app/db"), of the schemes ssm and secretsmanager. They name
// secrets; no value is ever in a request.
type ResolveSecretsArgs struct {
	Refs []string `json:"refs"`
}

// ResolveSecretsResult is the answer of OpResolveSecrets: the values by
// reference as written, and by scheme the error of that scheme's
// references (which names references, never a value).
type ResolveSecretsResult struct {
	Values map[string]string `json:"values"`
	Errors map[string]string `json:"errors,omitempty"`
}
