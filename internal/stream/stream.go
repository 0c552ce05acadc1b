// Package stream is the wire protocol of the API's streaming endpoints
// (`slipway exec`, `cp` and `port-forward`), shared by the API server and
// the client. It is a leaf: the standard library only.
//
// Both endpoints are a POST that asks to switch protocols, as WebSockets
// do but without their framing, with the bearer token like every request:
//
//	POST /api/v1/projects/{project}/pods/{name}/exec?container=C&command=ls&command=-l&stdin=true&tty=true
//	Connection: Upgrade
//	Upgrade: slipway-exec.v1
//
//	POST /api/v1/projects/{project}/pods/{name}/portforward?port=8080
//	Connection: Upgrade
//	Upgrade: slipway-tcp.v1
//
// Everything that can be refused is refused before the switch, as an
// ordinary JSON error (no such pod or container, not running, a port
// nothing listens on, a token that may not). Once the server answers
// 101 Switching Protocols the connection carries:
//
//   - slipway-tcp.v1: the bytes of one TCP connection to the pod's
//     address and port, both ways; a side that is done writing half-closes.
//   - slipway-exec.v1: frames both ways, each a channel byte, a 4-byte
//     big-endian length and that many bytes (at most MaxFrame). From the
//     client: Stdin (bytes), StdinEOF (empty: the input ended), Resize
//     (4 bytes: columns and rows, big-endian uint16). From the server:
//     Stdout, Stderr (a TTY carries both on Stdout) and, last, Exit: a
//     JSON ExitStatus with the command's exit code, or the error that
//     ended it; the server closes the connection after it.
package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// The protocols of the Upgrade header.
const (
	ExecProtocol = "slipway-exec.v1"
	TCPProtocol  = "slipway-tcp.v1"
)

// Channels of an exec's frames.
const (
	Stdin    byte = 0
	Stdout   byte = 1
	Stderr   byte = 2
	Resize   byte = 3
	Exit     byte = 4
	StdinEOF byte = 5
)

// MaxFrame bounds a frame's payload; writers split longer writes.
const MaxFrame = 32 << 10

// ExitStatus is the payload of the Exit frame.
type ExitStatus struct {
	// ExitCode is the command's, or -1 when it did not run to its end.
	ExitCode int `json:"exitCode"`
	// Error says why the command did not run or was cut short.
	Error string `json:"error,omitempty"`
}

// TermSize is a terminal's size in characters.
type TermSize struct {
	Cols, Rows uint16
}

// EncodeResize is a Resize frame's payload.
func EncodeResize(s TermSize) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:2], s.Cols)
	binary.BigEndian.PutUint16(b[2:], s.Rows)
	return b[:]
}

// DecodeResize reads a Resize frame's payload.
func DecodeResize(b []byte) (TermSize, error) {
	if len(b) != 4 {
		return TermSize{}, fmt.Errorf("resize frame of %d bytes, want 4", len(b))
	}
	return TermSize{Cols: binary.BigEndian.Uint16(b[:2]), Rows: binary.BigEndian.Uint16(b[2:])}, nil
}

// ErrFrameTooLarge is a frame longer than MaxFrame: the peer is not
// speaking this protocol.
var ErrFrameTooLarge = errors.New("stream frame larger than the limit")

// Reader reads frames.
type Reader struct {
	r   io.Reader
	hdr [5]byte
	buf []byte
}

// NewReader reads frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r, buf: make([]byte, MaxFrame)} }

// Next returns the next frame; its data is valid until the next call.
// A stream that ends between frames is io.EOF, within one
// io.ErrUnexpectedEOF.
func (r *Reader) Next() (channel byte, data []byte, err error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(r.hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes on channel %d (at most %d)", ErrFrameTooLarge, n, r.hdr[0], MaxFrame)
	}
	if _, err := io.ReadFull(r.r, r.buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return r.hdr[0], r.buf[:n], nil
}

// Writer writes frames; it is safe for concurrent use (each frame is
// written whole).
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Frame writes data on a channel, split into frames of at most MaxFrame.
// An empty data writes one empty frame.
func (w *Writer) Frame(channel byte, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), MaxFrame)
		var hdr [5]byte
		hdr[0] = channel
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
		if _, err := w.w.Write(append(hdr[:], data[:n]...)); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// Channel is an io.Writer of one channel's frames.
func (w *Writer) Channel(channel byte) io.Writer { return channelWriter{w, channel} }

// Exit writes the Exit frame.
func (w *Writer) Exit(s ExitStatus) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return w.Frame(Exit, b)
}

type channelWriter struct {
	w  *Writer
	ch byte
}

func (c channelWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.w.Frame(c.ch, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// DecodeExit reads an Exit frame's payload.
func DecodeExit(b []byte) (ExitStatus, error) {
	var s ExitStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return ExitStatus{}, fmt.Errorf("exit frame: %w", err)
	}
	return s, nil
}

// Splice copies between a client connection (whose reads, buffered ones
// first, come from br) and an upstream one until both directions end, half-closing each
// side when the other is done writing. Both ends of a port-forward use it.
func Splice(client net.Conn, br io.Reader, up net.Conn) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, br)
		closeWrite(up)
		close(done)
	}()
	_, _ = io.Copy(client, up)
	closeWrite(client)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}
