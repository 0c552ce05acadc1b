package router_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// h2Frame is an HTTP/2 frame header and payload, read raw.
type h2Frame struct {
	typ, flags byte
	stream     uint32
	payload    []byte
}

func readH2Frame(r io.Reader) (h2Frame, error) {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return h2Frame{}, err
	}
	f := h2Frame{typ: h[3], flags: h[4], stream: binary.BigEndian.Uint32(h[5:9]) & 0x7fffffff}
	f.payload = make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
	_, err := io.ReadFull(r, f.payload)
	return f, err
}

func writeH2Frame(w io.Writer, typ, flags byte, stream uint32, payload []byte) error {
	n := len(payload)
	h := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags}
	h = binary.BigEndian.AppendUint32(h, stream)
	_, err := w.Write(append(h, payload...))
	return err
}

// hpackLiteral encodes headers as literals without indexing (RFC 7541,
// section 6.2.2), short names and values only.
func hpackLiteral(kv ...string) []byte {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		b = append(b, 0x00, byte(len(kv[i])))
		b = append(b, kv[i]...)
		b = append(b, byte(len(kv[i+1])))
		b = append(b, kv[i+1]...)
	}
	return b
}

// TestTLSShutdownSendsGOAWAY: an HTTP/2 client with a request in flight
// on the HTTPS server gets a GOAWAY (no error, last stream 1) when the
// server shuts down, then the answer to its request; Shutdown returns
// once it is answered.
func TestTLSShutdownSendsGOAWAY(t *testing.T) {
	t.Parallel() // mostly waiting: deadlines and spaced requests
	u := newUpstream(t, "u")
	r := router.New(router.Options{})
	apply(t, r, router.OneBackend("p/h2", "h2.test", "", u.addr.String()))
	certs := router.NewCerts()
	if errs := certs.Apply(router.TLSInput{Routes: []router.TLSRoute{{Key: "p/h2", Host: "h2.test", Cert: selfSigned(t, 1, "h2.test")}}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	srv := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Certs: certs})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln)

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "h2.test", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	shutdownSendsGOAWAY(t, c, u, "https", "h2.test", srv.Shutdown)
}

// shutdownSendsGOAWAY sends a request for /slow on the HTTP/2 connection
// c, held by u, starts shutdown once u has it, and checks for a GOAWAY
// (no error, last stream 1), then the answer, then Shutdown's return.
func shutdownSendsGOAWAY(t *testing.T, c net.Conn, u *upstream, scheme, authority string, shutdown func(context.Context) error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	writeH2Frame(c, 0x4, 0, 0, nil)                                                                                            // SETTINGS
	writeH2Frame(c, 0x1, 0x5, 1, hpackLiteral(":method", "GET", ":scheme", scheme, ":path", "/slow", ":authority", authority)) // HEADERS, END_STREAM|END_HEADERS
	select {
	case <-u.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		shut <- shutdown(ctx)
	}()
	var frames []byte
	for {
		f, err := readH2Frame(c)
		if err != nil {
			t.Fatalf("reading frames (types so far %v): %v", frames, err)
		}
		frames = append(frames, f.typ)
		if f.typ == 0x7 { // GOAWAY
			if last, code := binary.BigEndian.Uint32(f.payload[0:4])&0x7fffffff, binary.BigEndian.Uint32(f.payload[4:8]); last != 1 || code != 0 {
				t.Fatalf("GOAWAY last stream %d, error code %d; want 1 and 0 (NO_ERROR)", last, code)
			}
			break
		}
		if f.typ == 0x4 && f.flags&1 == 0 {
			writeH2Frame(c, 0x4, 0x1, 0, nil) // SETTINGS ACK
		}
	}
	close(u.block)
	var got []byte
	for {
		f, err := readH2Frame(c)
		if err != nil {
			t.Fatalf("no answer after GOAWAY (frame types %v): %v", got, err)
		}
		got = append(got, f.typ)
		if f.stream == 1 && f.typ == 0x0 && f.flags&0x1 != 0 { // DATA with END_STREAM
			break
		}
	}
	if !bytes.Contains(got, []byte{0x1}) {
		t.Errorf("frames on the connection after GOAWAY: %v, want the HEADERS of the answer", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
