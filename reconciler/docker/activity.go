package docker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/developer-mesh/reconciler/reconciler"
)

var _ reconciler.DrainProber = (*Runtime)(nil)

// Activity implements reconciler.DrainProber from the host, without the
// app's help: it asks the kernel (sock_diag, what ss uses) for the
// established TCP connections in the container's network namespace (its
// init process's /proc/<pid>/ns/net) whose local port is port, with the
// time since each last sent and received data. It needs root (CAP_SYS_ADMIN
// and CAP_SYS_PTRACE over the container's process), as the reconciler runs.
func (r *Runtime) Activity(ctx context.Context, name string, port int, idle time.Duration) (reconciler.Activity, error) {
	ci, err := r.cli.ContainerInspect(ctx, name)
	if err != nil {
		return reconciler.Activity{}, fmt.Errorf("activity of %s: %w", name, err)
	}
	if ci.State == nil || !ci.State.Running || ci.State.Pid <= 0 {
		return reconciler.Activity{}, fmt.Errorf("activity of %s: not running", name)
	}
	socks, err := tcpConns(ci.State.Pid, port)
	if err != nil {
		return reconciler.Activity{}, fmt.Errorf("activity of %s: %w", name, err)
	}
	var a reconciler.Activity
	for _, s := range socks {
		a.Conns++
		if s.busy(idle) {
			a.Busy++
		}
		if s.open(idle) {
			a.Open++
		}
	}
	return a, nil
}

// tcpConn is one established connection as tcp_info reports it.
type tcpConn struct {
	// sinceSend and sinceRecv are the times since the connection last
	// sent and received data (acknowledgements and keep-alive probes are
	// not data).
	sinceSend, sinceRecv time.Duration
}

// busy reports whether c holds a request not yet answered (it received
// data after it last sent some) or moved data less than idle ago.
func (c tcpConn) busy(idle time.Duration) bool {
	return c.sinceRecv < c.sinceSend || min(c.sinceSend, c.sinceRecv) < idle
}

// open reports whether stopping the container would cut c: it holds a
// request not yet answered, or a response still being sent (data sent
// less than idle ago) at least reconciler.StreamAge after its request.
func (c tcpConn) open(idle time.Duration) bool {
	return c.sinceRecv < c.sinceSend || (c.sinceSend < idle && c.sinceRecv-c.sinceSend >= reconciler.StreamAge)
}

// Constants of linux/inet_diag.h and linux/sock_diag.h that x/sys/unix
// does not name.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	inetDiagInfo     = 2  // INET_DIAG_INFO: the tcp_info attribute
	tcpEstablished   = 1  // TCP_ESTABLISHED
	inetDiagReqLen   = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
)

// tcpConns returns the established TCP connections, IPv4 and IPv6, whose
// local port is port in the network namespace of process pid.
func tcpConns(pid, port int) ([]tcpConn, error) {
	fd, err := diagSocket(pid)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var all []tcpConn
	for i, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		conns, err := dumpTCP(fd, family, uint16(port), uint32(i+1))
		if err != nil {
			return nil, err
		}
		all = append(all, conns...)
	}
	return all, nil
}

// diagSocket opens a sock_diag netlink socket inside the network
// namespace of process pid. A socket stays in the namespace it was created
// in, so only its creation needs a thread that entered the namespace.
func diagSocket(pid int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread's namespace changes and is not changed back: the
		// thread is never unlocked, so Go ends it with this goroutine
		// instead of running other goroutines on it.
		runtime.LockOSThread()
		ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{-1, fmt.Errorf("open network namespace: %w", err)}
			return
		}
		defer unix.Close(ns)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			ch <- result{-1, fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			err = fmt.Errorf("sock_diag socket: %w", err)
		}
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

// dumpTCP asks for every established TCP socket of family with its
// tcp_info and keeps those whose local port is port.
func dumpTCP(fd int, family uint8, port uint16, seq uint32) ([]tcpConn, error) {
	req := make([]byte, unix.SizeofNlMsghdr+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	b := req[unix.SizeofNlMsghdr:]
	b[0] = family
	b[1] = unix.IPPROTO_TCP
	b[2] = 1 << (inetDiagInfo - 1)
	ne.PutUint32(b[4:], 1<<tcpEstablished)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag request: %w", err)
	}
	var conns []tcpConn
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return conns, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
					}
				}
				return nil, errors.New("sock_diag: error answer")
			case sockDiagByFamily:
				if c, ok := parseDiag(m.Data, port); ok {
					conns = append(conns, c)
				}
			}
		}
	}
}

// parseDiag reads one inet_diag_msg and its tcp_info attribute; ok is
// false for another local port or a message without tcp_info.
func parseDiag(data []byte, port uint16) (tcpConn, bool) {
	if len(data) < inetDiagMsgLen || binary.BigEndian.Uint16(data[4:6]) != port {
		return tcpConn{}, false
	}
	ne := binary.NativeEndian
	for attrs := data[inetDiagMsgLen:]; len(attrs) >= 4; {
		l, typ := int(ne.Uint16(attrs[0:])), ne.Uint16(attrs[2:])
		if l < 4 || l > len(attrs) {
			return tcpConn{}, false
		}
		if typ == inetDiagInfo && l >= 4+60 {
			info := attrs[4:l]
			// struct tcp_info: tcpi_last_data_sent at 44, tcpi_last_data_recv
			// at 52, in milliseconds.
			ms := func(off int) time.Duration { return time.Duration(ne.Uint32(info[off:])) * time.Millisecond }
			return tcpConn{sinceSend: ms(44), sinceRecv: ms(52)}, true
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return tcpConn{}, false
}
