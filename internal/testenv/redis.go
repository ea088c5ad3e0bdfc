package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Redis is a redis-server started by a test on a free port of loopback
// (StartRedis) or of a fabric's gateway (Fabric.StartRedis).
type Redis struct {
	// Host is the address the server is bound to: 127.0.0.1, or a
	// fabric's gateway.
	Host string
	// Port is the port: plain, or TLS only when started with TLS.
	Port int
	// Password is the requirepass of the server.
	Password string
	// TLS trusts the server's throwaway CA (nil without TLS).
	TLS *tls.Config
	// CAFile is the PEM file of that CA ("" without TLS): a child process
	// trusts it with SSL_CERT_FILE.
	CAFile string

	t    testing.TB
	args []string
	cmd  *exec.Cmd
}

// URL is the store URL of the server: redis:// or rediss://.
func (r *Redis) URL() string {
	hp := net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
	if r.TLS != nil {
		return "rediss://" + hp
	}
	return "redis://" + hp
}

// StartRedis starts Debian's redis-server on a free 127.0.0.1 port with a
// password, and with withTLS only over TLS, with a CA and a certificate made
// for the test. It skips (fails under CI=true) when redis-server is
// missing, and stops the server in t.Cleanup.
func StartRedis(t testing.TB, withTLS bool) *Redis {
	t.Helper()
	return startRedis(t, "127.0.0.1", withTLS)
}

// StartRedisArgs is StartRedis without TLS, with extra arguments for
// redis-server, such as "--rename-command", "AUTH", "" for a server that
// answers AUTH with an error quoting its arguments.
func StartRedisArgs(t testing.TB, args ...string) *Redis {
	t.Helper()
	return startRedis(t, "127.0.0.1", false, args...)
}

// StartRedis is testenv.StartRedis bound to the fabric's gateway, which
// every host of the fabric reaches; with withTLS, the server's certificate
// is for that address.
func (f *Fabric) StartRedis(t testing.TB, withTLS bool) *Redis {
	t.Helper()
	return startRedis(t, f.Gateway, withTLS)
}

func startRedis(t testing.TB, host string, withTLS bool, extra ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		SkipOrFail(t, "redis-server not installed: %v", err)
	}
	dir := t.TempDir()
	r := &Redis{t: t, Host: host, Port: freePortOn(t, host), Password: "pw-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	r.args = []string{"--bind", host, "--save", "", "--appendonly", "no", "--dir", dir,
		"--requirepass", r.Password, "--protected-mode", "yes"}
	if withTLS {
		ca, cert, key := throwawayCerts(t, dir, net.ParseIP(host))
		r.CAFile = ca
		r.args = append(r.args, "--port", "0", "--tls-port", strconv.Itoa(r.Port),
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
		pool := x509.NewCertPool()
		b, _ := os.ReadFile(ca)
		pool.AppendCertsFromPEM(b)
		r.TLS = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	} else {
		r.args = append(r.args, "--port", strconv.Itoa(r.Port))
	}
	r.args = append(append([]string{bin}, r.args...), extra...)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server (again, after Stop) and waits until it accepts
// connections.
func (r *Redis) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.args[0], r.args[1:]...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server does not listen on %d: %v", r.Port, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the port
	}
}

// Stop kills the server and waits for it: the store is unreachable until
// Start. Its data is lost (nothing is saved).
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// throwawayCerts writes a CA and a server certificate for ip into dir and
// returns their paths.
func throwawayCerts(t testing.TB, dir string, ip net.IP) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reconciler test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{ip}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}
