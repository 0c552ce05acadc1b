package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// File is one file of an image built FROM scratch.
type File struct {
	Path string // inside the image, absolute
	Mode int64
	Data []byte
}

// BuildScratchImage builds ref FROM scratch holding files, with the given
// entrypoint, through the engine's classic builder: no base image, so no
// registry is contacted.
func BuildScratchImage(ctx context.Context, cli *client.Client, ref string, files []File, entrypoint []string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	ep, _ := json.Marshal(entrypoint) // cannot fail: strings
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	for i, f := range files {
		name := fmt.Sprintf("f%d", i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: f.Mode, Size: int64(len(f.Data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
		fmt.Fprintf(&df, "COPY %s %s\n", name, f.Path)
	}
	fmt.Fprintf(&df, "ENTRYPOINT %s\n", ep)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(df.Len())}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, df.String()); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{ref}, Remove: true, ForceRemove: true, Version: build.BuilderV1,
		Labels: map[string]string{LabelManagedBy: "slipway"},
	})
	if err != nil {
		return fmt.Errorf("building image %s: %w", ref, err)
	}
	defer res.Body.Close()
	return readBuildStream(ref, res.Body)
}

// readBuildStream drains the builder's progress, returning the error it
// reports in the stream (the HTTP status is 200 even when a step fails).
func readBuildStream(ref string, r io.Reader) error {
	dec := json.NewDecoder(r)
	var log strings.Builder
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("building image %s: reading the build's output: %w", ref, err)
		}
		log.WriteString(m.Stream)
		if m.Error != "" {
			return fmt.Errorf("building image %s: %s\n%s", ref, m.Error, log.String())
		}
	}
}

// ensurePauseImage builds the infra image unless the engine has it. Its tag
// is derived from the program's bytes, so a changed program is a new image.
func ensurePauseImage(ctx context.Context, cli *client.Client) (string, error) {
	prog, err := pauseProgram(goruntime.GOARCH)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(prog)
	ref := "slipway-pause:" + hex.EncodeToString(sum[:6])
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspecting the infra image %s: %w", ref, err)
	}
	if err := BuildScratchImage(ctx, cli, ref, []File{{Path: "/pause", Mode: 0o755, Data: prog}}, []string{"/pause"}); err != nil {
		return "", fmt.Errorf("the infra container's image: %w", err)
	}
	return ref, nil
}

// pauseProgram is the infra container's program: a static ELF executable
// that sleeps forever in the kernel, written out here byte by byte so that
// neither a registry nor a Go toolchain is needed where Slipway runs. As
// PID 1 of its container with no signal handler, it ignores SIGTERM; the
// driver removes it with SIGKILL.
func pauseProgram(arch string) ([]byte, error) {
	var machine elf.Machine
	var code []byte
	switch arch {
	case "amd64":
		machine = elf.EM_X86_64
		code = []byte{
			0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
			0x0f, 0x05, // syscall
			0xeb, 0xf7, // jmp back to the mov
		}
	case "arm64":
		// arm64 has no pause(2); ppoll(NULL, 0, NULL, NULL) blocks alike.
		machine = elf.EM_AARCH64
		for _, ins := range []uint32{
			0xd2800000, // mov x0, #0
			0xd2800001, // mov x1, #0
			0xd2800002, // mov x2, #0
			0xd2800003, // mov x3, #0
			0xd2800928, // mov x8, #73 (ppoll)
			0xd4000001, // svc #0
			0x17fffffa, // b back to the first mov
		} {
			code = binary.LittleEndian.AppendUint32(code, ins)
		}
	default:
		return nil, fmt.Errorf("the docker runtime's infra program is not available on %s (only amd64 and arm64)", arch)
	}
	const base = 0x400000
	const hdrs = 64 + 56 // ELF header + one program header
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Entry: base + hdrs, Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 1,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	size := uint64(hdrs + len(code))
	ph := elf.Prog64{
		Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Vaddr: base, Paddr: base, Filesz: size, Memsz: size, Align: 0x1000,
	}
	_ = binary.Write(&b, binary.LittleEndian, h) // cannot fail on a buffer
	_ = binary.Write(&b, binary.LittleEndian, ph)
	b.Write(code)
	return b.Bytes(), nil
}

// imageMissing is StartContainer's error for an image the engine lacks.
type imageMissing struct{ image string }

func (e imageMissing) Error() string {
	return fmt.Sprintf("image %q is not present locally and cannot be pulled: build it with `slipway build` or `docker build`", e.image)
}

func (e imageMissing) Is(target error) bool { return target == errNotFound }
