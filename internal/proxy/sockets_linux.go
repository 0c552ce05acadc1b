package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ListeningIn returns this machine's listening IPv4 TCP sockets whose
// address lies in p, read from /proc/net/tcp, with the process holding
// each when /proc/<pid>/fd tells (it does for every process to root, and
// for one's own otherwise). Wildcard listeners (0.0.0.0) are left out.
func ListeningIn(p netip.Prefix) ([]Socket, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	var socks []Socket
	inodes := map[string]int{} // socket inode → index in socks
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" { // TCP_LISTEN
			continue
		}
		addr, ok := parseProcAddr(f[1])
		if !ok || !p.Contains(addr.Addr()) {
			continue
		}
		inodes[f[9]] = len(socks)
		socks = append(socks, Socket{Addr: addr})
	}
	if len(socks) > 0 {
		findHolders(socks, inodes)
	}
	return socks, nil
}

// parseProcAddr reads "0100007F:0050": the IPv4 address's 4 bytes read as
// a 32-bit word in host order and printed in hex, then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	ip, port, ok := strings.Cut(s, ":")
	if !ok || len(ip) != 8 {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(ip)
	if err != nil {
		return netip.AddrPort{}, false
	}
	pn, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], binary.BigEndian.Uint32(raw))
	addr := netip.AddrFrom4(a)
	if addr.IsUnspecified() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(pn)), true
}

// findHolders fills the PID and Command of the sockets whose inode some
// process's file descriptor names.
func findHolders(socks []Socket, inodes map[string]int) {
	procs, _ := os.ReadDir("/proc")
	left := len(inodes)
	for _, pe := range procs {
		pid, err := strconv.Atoi(pe.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", pe.Name(), "fd")
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			i, ok := inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]
			if !ok || socks[i].PID != 0 {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join("/proc", pe.Name(), "comm"))
			socks[i].PID, socks[i].Command = pid, strings.TrimSpace(string(comm))
			if left--; left == 0 {
				return
			}
		}
	}
}
