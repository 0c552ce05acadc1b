package docker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// addLocalRoute adds `local R dev lo` to the local routing table through
// rtnetlink, as `ip route add` does. A route already there is success.
func addLocalRoute(r netip.Prefix) error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("loopback interface: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	if err := unix.Sendto(fd, localRouteMsg(r, lo.Index), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq != 1 {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("netlink reply: short error message")
			}
			switch errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno {
			case 0, int32(unix.EEXIST):
				return nil
			default:
				return fmt.Errorf("adding route local %s dev lo: %w", r, unix.Errno(errno))
			}
		}
	}
}

// localRouteMsg is an RTM_NEWROUTE request for `local R dev lo` (table
// local, scope host), acknowledged.
func localRouteMsg(r netip.Prefix, ifindex int) []byte {
	const hdrLen, rtmLen, attrLen = unix.SizeofNlMsghdr, unix.SizeofRtMsg, 8
	b := make([]byte, hdrLen+rtmLen+2*attrLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.RTM_NEWROUTE)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	ne.PutUint32(b[8:], 1) // sequence
	m := b[hdrLen:]
	m[0] = unix.AF_INET
	m[1] = byte(r.Bits())
	m[4] = unix.RT_TABLE_LOCAL
	m[5] = unix.RTPROT_BOOT
	m[6] = unix.RT_SCOPE_HOST
	m[7] = unix.RTN_LOCAL
	a := b[hdrLen+rtmLen:]
	ne.PutUint16(a[0:], attrLen)
	ne.PutUint16(a[2:], unix.RTA_DST)
	dst := r.Masked().Addr().As4()
	copy(a[4:8], dst[:])
	ne.PutUint16(a[8:], attrLen)
	ne.PutUint16(a[10:], unix.RTA_OIF)
	ne.PutUint32(a[12:], uint32(ifindex))
	return b
}
