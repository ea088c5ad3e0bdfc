package state

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/developer-mesh/reconciler/internal/lazyre"
)

// Listen is a parsed nginx listen value, the argument of the listen
// directive of a service's server block: an address with a port, then
// parameters ("443 ssl", "127.0.0.1:8080", "[::]:80 default_server").
type Listen struct {
	// Host is the address before the port as written: "" when the value is
	// a port alone, "*", an IPv4 address, an IPv6 address in brackets or a
	// host name.
	Host string
	// Port is the port, 1-65535.
	Port int
	// Params are the parameters after the address, in order ("ssl",
	// "http2", "backlog=512"); nil for none.
	Params []string
}

var (
	listenAddrRE  = lazyre.New(`^(?:(\*|[0-9.]+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?([0-9]+)$`)
	listenParamRE = lazyre.New(`^[a-z_0-9]+(?:=[A-Za-z0-9_.:/-]+)?$`)
)

// ParseListen parses an nginx listen value: [host:]port, then parameters
// (name or name=value) separated by white space. A unix: socket and an
// address without a port are errors: a service's public address needs a
// port.
func ParseListen(s string) (Listen, error) {
	l, addrOK, paramsOK := scanListen(s)
	if !addrOK || !paramsOK {
		return Listen{}, fmt.Errorf("want what nginx's listen takes: a port or address:port and parameters, such as \"443 ssl\" or \"80\", got %s", quote(s))
	}
	return l, nil
}

// scanListen parses s as far as it can: the address (addrOK) and the
// parameters (paramsOK) are judged apart, so that validation can still
// tell whether an ssl parameter is missing from a value whose other
// parameters are wrong.
func scanListen(s string) (l Listen, addrOK, paramsOK bool) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Listen{}, false, false
	}
	paramsOK = true
	if len(f) > 1 {
		l.Params = f[1:]
	}
	for _, p := range l.Params {
		paramsOK = paramsOK && listenParamRE.MatchString(p)
	}
	m := listenAddrRE.FindStringSubmatch(f[0])
	if m == nil {
		return l, false, paramsOK
	}
	port, err := strconv.Atoi(m[2])
	if err != nil || port < 1 || port > 65535 {
		return l, false, paramsOK
	}
	l.Host, l.Port = m[1], port
	return l, true, paramsOK
}

// SSL reports whether the value has the ssl parameter.
func (l Listen) SSL() bool { return slices.Contains(l.Params, "ssl") }

// String returns the value as nginx's listen directive takes it: the
// address and the parameters, separated by one space.
func (l Listen) String() string {
	addr := strconv.Itoa(l.Port)
	if l.Host != "" {
		addr = l.Host + ":" + addr
	}
	return strings.Join(append([]string{addr}, l.Params...), " ")
}

// addrKey is the address of l normalised so that "443" and "*:443" are
// the same address.
func (l Listen) addrKey() string {
	host := l.Host
	if host == "" {
		host = "*"
	}
	return host + ":" + strconv.Itoa(l.Port)
}
