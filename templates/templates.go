// Package templates renders the files reconciler writes: the nginx site file of
// each service with a containerPort. The templates are embedded in the binary
// and their output is golden-tested (testdata/*.golden).
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/developer-mesh/reconciler/internal/lazyre"
	"github.com/developer-mesh/reconciler/state"
)

//go:embed nginx-site.conf.tmpl
var files embed.FS

// siteTmpl parses the site template on first use, not at package
// initialisation: every process that links this package (`reconciler
// version` too) would otherwise parse it before main. render.go executes it.
var siteTmpl = sync.OnceValue(parseSite)

// executeSite renders the site template with data; a variable so that a
// test can render the same data with text/template's own executor.
var executeSite = func(b *bytes.Buffer, data any) error { return execSite(b, siteTmpl(), data) }

// SiteParams describes one service's nginx file, <ConfDir>/<Env>-<Service>.conf.
type SiteParams struct {
	// Env and Service name the site; letters, digits, '-' and '_'.
	Env, Service string
	// ConfDir is the absolute directory the file and its marker live in.
	ConfDir string
	// BluePort and GreenPort are the loopback ports each color publishes.
	BluePort, GreenPort int
	// Listen is the argument of nginx's listen directive ("443 ssl",
	// "127.0.0.1:8080"). Nil renders an upstream-only file.
	Listen *state.Listen
	// ServerName is the argument of server_name; optional.
	ServerName string
	// TLS adds the certificate and key to the server block; optional.
	TLS *state.TLS
	// Live is the color an upstream-only file points at. It is ignored
	// when Listen is set: there the marker file picks the color.
	Live state.Color
	// LogDir, when set, gets the site's access log,
	// reconciler-<Env>-<Service>.log, one line per request: the time, the
	// color that served it, the status and the upstream status.
	LogDir string
	// Canary are the traffic percentages (1-99) a canary can stop at. Each
	// gets a split per direction, picked by a marker file
	// <ConfDir>/<Env>-<Service>.canary-<percent>-<color> that sends percent
	// of the requests to color; moving between steps needs no reload.
	Canary []int
	// SessionHeader, when set on a site with Listen, pins the requests
	// carrying this header to the draining color while the drain marker
	// <ConfDir>/<Env>-<Service>.draining exists (state.DrainMarkerFile):
	// the live color first, the other one when the live color answers 404.
	SessionHeader string
}

// LogFlush is the longest nginx keeps a site's access log lines in its
// buffer: a line is in the file at most this long after its request
// ended. Readers of the log allow for it.
const LogFlush = time.Second

// LogPath is the access log of the site in dir, "" when dir is "".
func LogPath(dir, env, service string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "reconciler-"+env+"-"+service+".log")
}

// Site renders the nginx file of p. The output depends only on p.
//
// With a Listen, the file holds one upstream per color and a server block
// that sends each request to green when the marker file
// <ConfDir>/<Env>-<Service>.green exists and to blue otherwise, so moving
// traffic needs no reload. Without one, it holds a single upstream
// <Env>-<Service> pointing at the Live color's port, for the user's own server
// blocks; switching it means rewriting the file and reloading.
//
// The first two lines are a header that ParseHeader reads back. Site returns
// an error, and no bytes, for parameters that would not make a safe file.
func Site(p SiteParams) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("render nginx site %s-%s: %w", p.Env, p.Service, err)
	}
	redirect, httpsPort := redirectListen(p)
	data := struct {
		SiteParams
		Upstream, Var, Marker, ConnVar string
		Redirect, HTTPSPort, ACMERoot  string
		LogPath, CheckPath             string
		RouteVar, RoutePath            string
		ProbePath, ProbeFile           string
		DrainMarker, PinVar            string
		SessionVar, LogFlush           string
		LivePort                       int
	}{
		SiteParams: p,
		Upstream:   p.Env + "-" + p.Service,
		Var:        "reconciler_" + strings.ReplaceAll(p.Env+"_"+p.Service, "-", "_") + "_color",
		Marker:     filepath.Join(p.ConfDir, state.MarkerFile(p.Env, p.Service)),
		ConnVar:    "reconciler_" + strings.ReplaceAll(p.Env+"_"+p.Service, "-", "_") + "_connection",
		Redirect:   redirect,
		HTTPSPort:  httpsPort,
		ACMERoot:   ACMEWebroot,
		LivePort:   p.BluePort,
		LogPath:    LogPath(p.LogDir, p.Env, p.Service),
		LogFlush:   LogFlush.String(),
		RouteVar:   "reconciler_" + strings.ReplaceAll(p.Env+"_"+p.Service, "-", "_") + "_route",
		RoutePath:  RoutePath,
		ProbePath:  ProbePath,
		ProbeFile:  filepath.Join(p.ConfDir, state.ProbeFile(p.Env, p.Service)),
	}
	if p.SessionHeader != "" && p.Listen != nil {
		data.DrainMarker = filepath.Join(p.ConfDir, state.DrainMarkerFile(p.Env, p.Service))
		data.PinVar = "reconciler_" + strings.ReplaceAll(p.Env+"_"+p.Service, "-", "_") + "_pin"
		data.SessionVar = strings.ToLower(strings.ReplaceAll(p.SessionHeader, "-", "_"))
	} else {
		data.SessionHeader = ""
	}
	if p.Live == state.Green {
		data.LivePort = p.GreenPort
	}
	var b bytes.Buffer
	if err := executeSite(&b, data); err != nil {
		return nil, fmt.Errorf("render nginx site %s-%s: %w", p.Env, p.Service, err)
	}
	if p.Listen != nil {
		// The check path names the rest of the file, so answering it
		// proves that nginx loaded exactly these bytes.
		sum := sha256.Sum256(b.Bytes())
		data.CheckPath = checkPrefix + hex.EncodeToString(sum[:8])
		b.Reset()
		if err := executeSite(&b, data); err != nil {
			return nil, fmt.Errorf("render nginx site %s-%s: %w", p.Env, p.Service, err)
		}
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

const checkPrefix = "/.reconciler-check/"

// RoutePath is the location of a site with a server block that answers
// 200 with the routing nginx's workers chose from the markers they see:
// "blue", "green", or "<percent>% <color>" while a canary marker is seen.
const RoutePath = checkPrefix + "route"

// ProbePath is the location of a site with a server block that answers 204
// while nginx's workers see the file state.ProbeFile in the conf dir, and
// 200 "probe file not seen" otherwise.
const ProbePath = checkPrefix + "probe"

// HasRoute reports whether a site file has the RoutePath and ProbePath
// locations (files written before they existed do not).
func HasRoute(content []byte) bool {
	return bytes.Contains(content, []byte("location = "+RoutePath+" {"))
}

// CheckPath returns the path of a site file's check location, which answers
// 204 once nginx has loaded that file; "" for a file without one
// (upstream only).
func CheckPath(content []byte) string {
	i := bytes.Index(content, []byte("location = "+checkPrefix))
	if i < 0 {
		return ""
	}
	rest := content[i+len("location = "):]
	if j := bytes.IndexAny(rest, " {"); j > 0 {
		return string(rest[:j])
	}
	return ""
}

// ACMEWebroot is the directory the port-80 server of a TLS site serves
// /.well-known/acme-challenge/ from: certbot certonly --webroot -w ACMEWebroot.
const ACMEWebroot = "/var/www/letsencrypt"

// redirectListen returns the listen argument of the plain-HTTP server that
// redirects a TLS site to HTTPS, and the ":port" the redirect URL needs when
// HTTPS is not on 443. A site gets that server only when it listens with
// "ssl" on a port other than 80, has TLS and a server name: without a name,
// port 80 would be claimed for every host.
func redirectListen(p SiteParams) (listen, httpsPort string) {
	l := p.Listen
	if p.TLS == nil || p.ServerName == "" || l == nil || !l.SSL() || l.Port == 80 {
		return "", ""
	}
	if l.Port != 443 {
		httpsPort = ":" + strconv.Itoa(l.Port)
	}
	redirect := state.Listen{Host: l.Host, Port: 80}
	return redirect.String(), httpsPort
}

var (
	namePattern   = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	sessionHeader = lazyre.New(`^[A-Za-z][A-Za-z0-9-]*$`)
	// unsafe are the characters that would end or extend an nginx directive,
	// start a comment or a variable, or break a quoted string.
	unsafe = "\"'\\;{}#$`\n\r\t"
)

func (p SiteParams) validate() error {
	if !namePattern.MatchString(p.Env) {
		return fmt.Errorf("env: want letters, digits, '-' or '_', got %q", p.Env)
	}
	if !namePattern.MatchString(p.Service) {
		return fmt.Errorf("service: want letters, digits, '-' or '_', got %q", p.Service)
	}
	if !filepath.IsAbs(p.ConfDir) || strings.ContainsAny(p.ConfDir, unsafe+" ") {
		return fmt.Errorf("confDir: want an absolute path without spaces, quotes or nginx syntax, got %q", p.ConfDir)
	}
	for _, port := range []struct {
		name string
		v    int
	}{{"blue port", p.BluePort}, {"green port", p.GreenPort}} {
		if port.v < 1 || port.v > 65535 {
			return fmt.Errorf("%s: want 1-65535, got %d", port.name, port.v)
		}
	}
	if p.BluePort == p.GreenPort {
		return fmt.Errorf("blue and green ports: want two different ports, got %d twice", p.BluePort)
	}
	if p.Listen != nil && strings.ContainsAny(p.Listen.String(), unsafe) {
		return fmt.Errorf("listen: want nginx listen parameters, got %q", p.Listen)
	}
	if strings.ContainsAny(p.ServerName, unsafe) {
		return fmt.Errorf("serverName: want host names, got %q", p.ServerName)
	}
	if p.TLS != nil {
		if p.Listen == nil {
			return fmt.Errorf("tls: needs listen")
		}
		for _, f := range []struct{ name, v string }{{"tls.certificate", p.TLS.Certificate}, {"tls.key", p.TLS.Key}} {
			if !filepath.IsAbs(f.v) || strings.ContainsAny(f.v, unsafe) {
				return fmt.Errorf("%s: want an absolute path without quotes or nginx syntax, got %q", f.name, f.v)
			}
		}
	}
	if p.LogDir != "" && (!filepath.IsAbs(p.LogDir) || strings.ContainsAny(p.LogDir, unsafe+" ")) {
		return fmt.Errorf("logDir: want an absolute path without spaces, quotes or nginx syntax, got %q", p.LogDir)
	}
	for _, c := range p.Canary {
		if c < 1 || c > 99 {
			return fmt.Errorf("canary: want percentages 1-99, got %d", c)
		}
	}
	if p.SessionHeader != "" && !sessionHeader.MatchString(p.SessionHeader) {
		return fmt.Errorf("sessionHeader: want an HTTP header name of letters, digits and '-', got %q", p.SessionHeader)
	}
	if p.Listen == nil && p.Live != state.Blue && p.Live != state.Green {
		return fmt.Errorf("live: want blue or green for an upstream-only site, got %q", p.Live)
	}
	return nil
}

var (
	headerLine1 = lazyre.New(`^# Managed by reconciler: env=(\S+) service=(\S+)\. Do not edit: changes are overwritten\.$`)
	headerLine2 = lazyre.New(`^# reconciler-ports: blue=(\d+) green=(\d+)(?: live=(blue|green))?$`)
)

// ParseHeader reads the header Site writes. ok is false when the first line
// is not reconciler's: such a file is not reconciler's and must not be
// touched. blue and green are 0, and live is "", when the second line is
// missing or malformed. live is set only for an upstream-only file.
func ParseHeader(content []byte) (env, service string, blue, green int, live state.Color, ok bool) {
	line1, rest, _ := bytes.Cut(content, []byte("\n"))
	line2, _, _ := bytes.Cut(rest, []byte("\n"))
	m := headerLine1.FindSubmatch(bytes.TrimSuffix(line1, []byte("\r")))
	if m == nil {
		return "", "", 0, 0, "", false
	}
	env, service = string(m[1]), string(m[2])
	m = headerLine2.FindSubmatch(bytes.TrimSuffix(line2, []byte("\r")))
	if m == nil {
		return env, service, 0, 0, "", true
	}
	b, errB := strconv.Atoi(string(m[1]))
	g, errG := strconv.Atoi(string(m[2]))
	if errB != nil || errG != nil {
		return env, service, 0, 0, "", true
	}
	return env, service, b, g, state.Color(m[3]), true
}
