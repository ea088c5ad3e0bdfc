package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/developer-mesh/reconciler/state"
)

// AWS is a fake of the AWS APIs reconciler calls, served on loopback and
// spoken to through the real SDK: SSM GetParameters (JSON 1.1), Secrets
// Manager GetSecretValue (JSON 1.1), STS GetCallerIdentity and RDS
// CreateDBSnapshot and DescribeDBSnapshots (query protocol), S3 PutObject
// (path-style REST), Route 53 ListHealthChecks, CreateHealthCheck,
// GetHealthCheck, UpdateHealthCheck, ListResourceRecordSets and
// ChangeResourceRecordSets (REST-XML; awsdns.go) and SES v2 SendEmail (REST-JSON). It checks the access key id of the SigV4 Authorization
// header, not the signature.
type AWS struct {
	URL       string
	AccessKey string
	SecretKey string
	Region    string

	mu      sync.Mutex
	params  map[string]string
	secrets map[string]string
	objects map[string][]byte
	calls   map[string]int
	batches []int

	rdsInstances map[string]bool      // instances that exist
	rdsFail      map[string]bool      // instances whose snapshots end "failed"
	rdsHeld      map[string]bool      // instances whose snapshots stay "creating"
	snapshots    map[string]*snapshot // by id
	healthChecks map[string]*HealthCheck
	verified     map[string]bool        // SES identities that may send
	zones        map[string][]RecordSet // Route 53 hosted zones by id (awsdns.go)
	emails       []Email

	srv *httptest.Server
}

// Email is a message the fake's SES SendEmail accepted.
type Email struct {
	ID, From, Subject, Body string
	To                      []string
}

// snapshot is an RDS snapshot of the fake: "creating" for its first
// describe, then "available" (or "failed").
type snapshot struct {
	instance  string
	describes int
	fail      bool
}

// HealthCheck is a Route 53 health check of the fake. Checks made by
// SetHealthCheck have only Path, Port and Version.
type HealthCheck struct {
	Path    string
	Port    int
	Version int64

	FQDN, Type       string
	FailureThreshold int
	RequestInterval  int
	CallerReference  string
}

// FakeAWS starts the fake; it stops when t ends.
func FakeAWS(t testing.TB) *AWS {
	t.Helper()
	a := NewFakeAWS()
	t.Cleanup(a.Close)
	return a
}

// NewFakeAWS starts the fake on loopback, for a program that is not a test
// (bench/fakeaws); Close stops it.
func NewFakeAWS() *AWS {
	a := &AWS{AccessKey: "AKIDRECONCILERTEST", SecretKey: "test-secret-key", Region: "eu-west-1",
		params: map[string]string{}, secrets: map[string]string{}, objects: map[string][]byte{}, calls: map[string]int{},
		rdsInstances: map[string]bool{}, rdsFail: map[string]bool{}, rdsHeld: map[string]bool{}, snapshots: map[string]*snapshot{}, healthChecks: map[string]*HealthCheck{}, verified: map[string]bool{}, zones: map[string][]RecordSet{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	a.URL = a.srv.URL
	return a
}

// Close stops the fake's server, after the requests in flight end.
func (a *AWS) Close() { a.srv.Close() }

// Env returns the variables that point the SDK's default chain at the fake
// with valid credentials and keep it away from any real configuration.
func (a *AWS) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":            a.URL,
		"AWS_ACCESS_KEY_ID":           a.AccessKey,
		"AWS_SECRET_ACCESS_KEY":       a.SecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  a.Region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_MAX_ATTEMPTS":            "1",
	}
}

// Setenv sets Env with t.Setenv (so t must not be parallel).
func (a *AWS) Setenv(t testing.TB) {
	for k, v := range a.Env() {
		t.Setenv(k, v)
	}
}

// SetParameter creates or overwrites an SSM parameter.
func (a *AWS) SetParameter(name, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.params[name] = value
}

// SetSecret creates or overwrites a Secrets Manager secret string.
func (a *AWS) SetSecret(id, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secrets[id] = value
}

// SetRDSInstance makes a DB instance exist; with fail, its snapshots end
// in status "failed" instead of "available".
func (a *AWS) SetRDSInstance(id string, fail bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rdsInstances[id], a.rdsFail[id] = true, fail
}

// HoldRDSSnapshots keeps the snapshots of the DB instance id "creating"
// for as long as they are asked about: a wait for them times out.
func (a *AWS) HoldRDSSnapshots(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rdsHeld[id] = true
}

// Snapshots returns the ids of the RDS snapshots taken, sorted.
func (a *AWS) Snapshots() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id := range a.snapshots {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// SetHealthCheck creates or replaces a Route 53 health check (version 1).
func (a *AWS) SetHealthCheck(id, path string, port int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.healthChecks[id] = &HealthCheck{Path: path, Port: port, Version: 1}
}

// HealthCheckIDs returns the ids of the Route 53 health checks, sorted.
func (a *AWS) HealthCheckIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id := range a.healthChecks {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// HealthCheck returns a copy of a Route 53 health check (zero if absent).
func (a *AWS) HealthCheck(id string) HealthCheck {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.healthChecks[id]; h != nil {
		return *h
	}
	return HealthCheck{}
}

// VerifySender makes an SES identity (an address) verified: SendEmail
// from any other address is rejected, as SES does.
func (a *AWS) VerifySender(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.verified[addr] = true
}

// Emails returns the messages SES accepted, in order.
func (a *AWS) Emails() []Email {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Email(nil), a.emails...)
}

// Objects returns a copy of the S3 objects by "bucket/key".
func (a *AWS) Objects() map[string][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range a.objects {
		out[k] = v
	}
	return out
}

// Calls returns how many requests of an operation ("AmazonSSM.GetParameters",
// "secretsmanager.GetSecretValue", "GetCallerIdentity", "PutObject") came,
// valid credentials or not.
func (a *AWS) Calls(op string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[op]
}

// Batches returns the number of names of each GetParameters call.
func (a *AWS) Batches() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.batches...)
}

func (a *AWS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	op := r.Header.Get("X-Amz-Target")
	var form url.Values
	if op == "" && r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, _ = url.ParseQuery(string(body))
		op = form.Get("Action")
		if op == "" {
			op = "GetCallerIdentity"
		}
	}
	if r.URL.Path == "/2013-04-01/healthcheck" && op == "" {
		op = "ListHealthChecks"
		if r.Method == http.MethodPost {
			op = "CreateHealthCheck"
		}
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/2013-04-01/healthcheck/"); ok && op == "" {
		op = "GetHealthCheck"
		if r.Method == http.MethodPost {
			op = "UpdateHealthCheck"
		}
		r.URL.Path = id
	}
	if zone, ok := strings.CutPrefix(r.URL.Path, "/2013-04-01/hostedzone/"); ok && op == "" && strings.HasSuffix(zone, "/rrset") {
		op = "ListResourceRecordSets"
		if r.Method == http.MethodPost {
			op = "ChangeResourceRecordSets"
		}
		r.URL.Path = strings.TrimSuffix(zone, "/rrset")
	}
	if op == "" && r.Method == http.MethodPost && r.URL.Path == "/v2/email/outbound-emails" {
		op = "SendEmail"
	}
	if op == "" && r.Method == http.MethodPut {
		op = "PutObject"
	}
	a.mu.Lock()
	a.calls[op]++
	a.mu.Unlock()
	validKey := strings.Contains(r.Header.Get("Authorization"), "Credential="+a.AccessKey+"/")

	switch op {
	case "AmazonSSM.GetParameters", "secretsmanager.GetSecretValue":
		if !validKey {
			jsonError(w, 400, "UnrecognizedClientException", "The security token included in the request is invalid.")
			return
		}
		if op == "AmazonSSM.GetParameters" {
			a.getParameters(w, body)
		} else {
			a.getSecretValue(w, body)
		}
	case "GetCallerIdentity":
		if !validKey {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(403)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>fake</RequestId></ErrorResponse>`)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/reconciler-test</Arn><UserId>AIDTEST</UserId></GetCallerIdentityResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
	case "CreateDBSnapshot", "DescribeDBSnapshots":
		if !validKey {
			queryError(w, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
			return
		}
		a.rds(w, op, form)
	case "ListHealthChecks", "CreateHealthCheck":
		if !validKey {
			queryError(w, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
			return
		}
		a.route53Collection(w, op, body)
	case "GetHealthCheck", "UpdateHealthCheck":
		if !validKey {
			queryError(w, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
			return
		}
		a.route53(w, op, r.URL.Path, body)
	case "ListResourceRecordSets", "ChangeResourceRecordSets":
		if !validKey {
			queryError(w, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
			return
		}
		if op == "ListResourceRecordSets" {
			a.listRecordSets(w, r.URL.Path, r.URL.Query())
		} else {
			a.changeRecordSets(w, r.URL.Path, body)
		}
	case "SendEmail":
		if !validKey {
			restJSONError(w, 403, "UnrecognizedClientException", "The security token included in the request is invalid.")
			return
		}
		a.sendEmail(w, body)
	case "PutObject":
		if !validKey {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(403)
			fmt.Fprint(w, `<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`)
			return
		}
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			body = decodeChunked(body)
		}
		a.mu.Lock()
		a.objects[strings.TrimPrefix(r.URL.Path, "/")] = body
		a.mu.Unlock()
		w.Header().Set("ETag", `"fake"`)
	default:
		http.Error(w, "fake AWS: unsupported operation "+op, http.StatusNotImplemented)
	}
}

func (a *AWS) getParameters(w http.ResponseWriter, body []byte) {
	var in struct {
		Names          []string
		WithDecryption bool
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.Names) == 0 || len(in.Names) > 10 {
		jsonError(w, 400, "ValidationException", "want 1 to 10 names")
		return
	}
	type param struct {
		Name, Type, Value string
		Version           int
	}
	out := struct {
		Parameters        []param
		InvalidParameters []string
	}{Parameters: []param{}, InvalidParameters: []string{}}
	a.mu.Lock()
	a.batches = append(a.batches, len(in.Names))
	for _, n := range in.Names {
		v, ok := a.params[n]
		if !ok {
			out.InvalidParameters = append(out.InvalidParameters, n)
			continue
		}
		if !in.WithDecryption {
			v = "encrypted:" + strconv.Itoa(len(v)) // SecureString without decryption
		}
		out.Parameters = append(out.Parameters, param{Name: n, Type: "SecureString", Value: v, Version: 1})
	}
	a.mu.Unlock()
	jsonReply(w, out)
}

func (a *AWS) getSecretValue(w http.ResponseWriter, body []byte) {
	var in struct{ SecretId string }
	_ = json.Unmarshal(body, &in)
	a.mu.Lock()
	v, ok := a.secrets[in.SecretId]
	a.mu.Unlock()
	if !ok {
		jsonError(w, 400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	jsonReply(w, map[string]any{"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + in.SecretId, "Name": in.SecretId, "SecretString": v, "VersionId": "v1"})
}

func jsonReply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

// decodeChunked decodes an aws-chunked body ("SIZE[;ext]\r\nDATA\r\n"...,
// then trailers).
func decodeChunked(b []byte) []byte {
	var out bytes.Buffer
	rd := bufio.NewReader(bytes.NewReader(b))
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return out.Bytes()
		}
		sizeHex, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil || n == 0 {
			return out.Bytes()
		}
		if _, err := io.CopyN(&out, rd, n); err != nil {
			return out.Bytes()
		}
		_, _ = rd.ReadString('\n')
	}
}

func queryError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(code)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, typ, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (a *AWS) rds(w http.ResponseWriter, op string, form url.Values) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := form.Get("DBSnapshotIdentifier")
	snapXML := func(id string, s *snapshot, status string) string {
		return fmt.Sprintf(`<DBSnapshot><DBSnapshotIdentifier>%s</DBSnapshotIdentifier><DBInstanceIdentifier>%s</DBInstanceIdentifier><Status>%s</Status><SnapshotType>manual</SnapshotType></DBSnapshot>`,
			xmlEscape(id), xmlEscape(s.instance), status)
	}
	w.Header().Set("Content-Type", "text/xml")
	switch op {
	case "CreateDBSnapshot":
		inst := form.Get("DBInstanceIdentifier")
		if !a.rdsInstances[inst] {
			queryError(w, 404, "DBInstanceNotFound", "DBInstance "+inst+" not found.")
			return
		}
		if a.snapshots[id] != nil {
			queryError(w, 400, "DBSnapshotAlreadyExists", "Cannot create the snapshot because a snapshot with the identifier "+id+" already exists.")
			return
		}
		s := &snapshot{instance: inst, fail: a.rdsFail[inst]}
		a.snapshots[id] = s
		fmt.Fprintf(w, `<CreateDBSnapshotResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><CreateDBSnapshotResult>%s</CreateDBSnapshotResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></CreateDBSnapshotResponse>`,
			snapXML(id, s, "creating"))
	case "DescribeDBSnapshots":
		s := a.snapshots[id]
		if s == nil {
			queryError(w, 404, "DBSnapshotNotFound", "DBSnapshot "+id+" not found.")
			return
		}
		s.describes++
		status := "creating"
		switch {
		case a.rdsHeld[s.instance]:
		case s.describes > 1 && s.fail:
			status = "failed"
		case s.describes > 1:
			status = "available"
		}
		fmt.Fprintf(w, `<DescribeDBSnapshotsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><DescribeDBSnapshotsResult><DBSnapshots>%s</DBSnapshots></DescribeDBSnapshotsResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></DescribeDBSnapshotsResponse>`,
			snapXML(id, s, status))
	}
}

func (a *AWS) route53(w http.ResponseWriter, op, id string, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.healthChecks[id]
	if h == nil {
		queryError(w, 404, "NoSuchHealthCheck", "No health check exists with the specified ID "+id+".")
		return
	}
	if op == "UpdateHealthCheck" {
		var req struct {
			Version          int64  `xml:"HealthCheckVersion"`
			Port             int    `xml:"Port"`
			ResourcePath     string `xml:"ResourcePath"`
			FailureThreshold int    `xml:"FailureThreshold"`
		}
		if err := xml.Unmarshal(body, &req); err != nil {
			queryError(w, 400, "InvalidInput", err.Error())
			return
		}
		if req.Version != 0 && req.Version != h.Version {
			queryError(w, 409, "HealthCheckVersionMismatch", "The value of HealthCheckVersion in the request doesn't match the value of HealthCheckVersion in the health check.")
			return
		}
		if req.Port != 0 {
			h.Port = req.Port
		}
		if req.ResourcePath != "" {
			h.Path = req.ResourcePath
		}
		if req.FailureThreshold != 0 {
			h.FailureThreshold = req.FailureThreshold
		}
		h.Version++
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">%s</%sResponse>`, op, healthCheckXML(id, h), op)
}

// healthCheckXML is a HealthCheck element; a check made by SetHealthCheck
// reads as HTTPS on example.com with Route 53's defaults.
func healthCheckXML(id string, h *HealthCheck) string {
	fqdn, typ, ref, threshold, interval := h.FQDN, h.Type, h.CallerReference, h.FailureThreshold, h.RequestInterval
	if typ == "" {
		fqdn, typ, ref, threshold, interval = "example.com", "HTTPS", "fake", 3, 30
	}
	return fmt.Sprintf(`<HealthCheck><Id>%s</Id><CallerReference>%s</CallerReference><HealthCheckConfig><Port>%d</Port><Type>%s</Type><ResourcePath>%s</ResourcePath><FullyQualifiedDomainName>%s</FullyQualifiedDomainName><RequestInterval>%d</RequestInterval><FailureThreshold>%d</FailureThreshold></HealthCheckConfig><HealthCheckVersion>%d</HealthCheckVersion></HealthCheck>`,
		xmlEscape(id), xmlEscape(ref), h.Port, typ, xmlEscape(h.Path), xmlEscape(fqdn), interval, threshold, h.Version)
}

// route53Collection lists health checks (one page, sorted by id) or
// creates one. A CallerReference used before returns the check it made,
// as Route 53 does for a retried request with the same configuration.
func (a *AWS) route53Collection(w http.ResponseWriter, op string, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if op == "ListHealthChecks" {
		ids := make([]string, 0, len(a.healthChecks))
		for id := range a.healthChecks {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(healthCheckXML(id, a.healthChecks[id]))
		}
		fmt.Fprintf(w, `<ListHealthChecksResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><HealthChecks>%s</HealthChecks><IsTruncated>false</IsTruncated><Marker></Marker><MaxItems>100</MaxItems></ListHealthChecksResponse>`, b.String())
		return
	}
	var req struct {
		CallerReference string `xml:"CallerReference"`
		Config          struct {
			Port             int    `xml:"Port"`
			Type             string `xml:"Type"`
			ResourcePath     string `xml:"ResourcePath"`
			FQDN             string `xml:"FullyQualifiedDomainName"`
			RequestInterval  int    `xml:"RequestInterval"`
			FailureThreshold int    `xml:"FailureThreshold"`
		} `xml:"HealthCheckConfig"`
	}
	if err := xml.Unmarshal(body, &req); err != nil || req.CallerReference == "" || req.Config.FQDN == "" || req.Config.Type == "" {
		queryError(w, 400, "InvalidInput", "want CallerReference and a HealthCheckConfig with FullyQualifiedDomainName and Type")
		return
	}
	for id, h := range a.healthChecks {
		if h.CallerReference == req.CallerReference {
			w.WriteHeader(201)
			fmt.Fprintf(w, `<CreateHealthCheckResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">%s</CreateHealthCheckResponse>`, healthCheckXML(id, h))
			return
		}
	}
	c := req.Config
	if c.RequestInterval == 0 {
		c.RequestInterval = 30
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 3
	}
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(a.healthChecks)+1)
	h := &HealthCheck{Path: c.ResourcePath, Port: c.Port, Version: 1, FQDN: c.FQDN, Type: c.Type,
		FailureThreshold: c.FailureThreshold, RequestInterval: c.RequestInterval, CallerReference: req.CallerReference}
	a.healthChecks[id] = h
	w.Header().Set("Location", "https://route53.amazonaws.com/2013-04-01/healthcheck/"+id)
	w.WriteHeader(201)
	fmt.Fprintf(w, `<CreateHealthCheckResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">%s</CreateHealthCheckResponse>`, healthCheckXML(id, h))
}

func restJSONError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (a *AWS) sendEmail(w http.ResponseWriter, body []byte) {
	var in struct {
		FromEmailAddress string
		Destination      struct{ ToAddresses []string }
		Content          struct {
			Simple *struct {
				Subject struct{ Data string }
				Body    struct{ Text struct{ Data string } }
			}
		}
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Content.Simple == nil || len(in.Destination.ToAddresses) == 0 {
		restJSONError(w, 400, "BadRequestException", "want a simple message with a sender and recipients")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.verified[in.FromEmailAddress] {
		restJSONError(w, 400, "MessageRejected", "Email address is not verified. The following identities failed the check in region "+strings.ToUpper(a.Region)+": "+in.FromEmailAddress)
		return
	}
	e := Email{ID: fmt.Sprintf("fake-message-%d", len(a.emails)+1), From: in.FromEmailAddress, To: in.Destination.ToAddresses,
		Subject: in.Content.Simple.Subject.Data, Body: in.Content.Simple.Body.Text.Data}
	a.emails = append(a.emails, e)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"MessageId": e.ID})
}

// BareAWS clears every AWS variable and shared file of the process for
// the test: a laptop that was never set up for AWS. The EC2 metadata
// service is disabled, so nothing leaves the machine. t must not be
// parallel (t.Setenv).
func BareAWS(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_SERVICE_ENDPOINT"} {
		t.Setenv(v, "")
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// SecretRefs parses each of refs ("ssm:/app/db", ...) or fails t.
func SecretRefs(t testing.TB, refs ...string) []state.SecretRef {
	t.Helper()
	out := make([]state.SecretRef, len(refs))
	for i, s := range refs {
		r, err := state.ParseSecretRef(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = r
	}
	return out
}

// SecretValues keys values by their parsed references ("ssm:/app/db").
func SecretValues(t testing.TB, values map[string]string) map[state.SecretRef]string {
	t.Helper()
	out := make(map[state.SecretRef]string, len(values))
	for s, v := range values {
		out[SecretRefs(t, s)[0]] = v
	}
	return out
}
