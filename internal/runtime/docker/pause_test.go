package docker

import (
	"bytes"
	"debug/elf"
	"testing"
)

// The infra program must be a loadable static executable for the engine's
// architecture: one R+X segment covering the file, the entry at the code.
func TestPauseProgramIsALoadableELF(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		machine elf.Machine
		code    int
	}{{"amd64", elf.EM_X86_64, 9}, {"arm64", elf.EM_AARCH64, 28}} {
		prog, err := pauseProgram(tc.arch)
		if err != nil {
			t.Fatalf("%s: %v", tc.arch, err)
		}
		f, err := elf.NewFile(bytes.NewReader(prog))
		if err != nil {
			t.Fatalf("%s: not an ELF file: %v", tc.arch, err)
		}
		if f.Class != elf.ELFCLASS64 || f.Machine != tc.machine || f.Type != elf.ET_EXEC {
			t.Errorf("%s: class %v machine %v type %v, want ELFCLASS64 %v ET_EXEC", tc.arch, f.Class, f.Machine, f.Type, tc.machine)
		}
		if len(f.Progs) != 1 {
			t.Fatalf("%s: %d program headers, want 1", tc.arch, len(f.Progs))
		}
		p := f.Progs[0]
		if p.Type != elf.PT_LOAD || p.Flags != elf.PF_R|elf.PF_X || p.Off != 0 || p.Filesz != uint64(len(prog)) || p.Memsz != p.Filesz {
			t.Errorf("%s: segment %+v, want one R+X PT_LOAD of the whole %d-byte file", tc.arch, p.ProgHeader, len(prog))
		}
		if want := p.Vaddr + 120; f.Entry != want || len(prog) != 120+tc.code {
			t.Errorf("%s: entry %#x, size %d; want entry %#x after the headers and %d bytes of code", tc.arch, f.Entry, len(prog), want, tc.code)
		}
	}
	if _, err := pauseProgram("riscv64"); err == nil {
		t.Errorf("pauseProgram(riscv64) succeeded; want an error naming the supported architectures")
	}
}
