package main

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// ensureStatic refuses to open sessions from a dynamically linked jailmgr:
// the session init runs this binary again inside the jail, where the host's
// dynamic loader and libc are not (or not in the same version).
func ensureStatic() error {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("read own executable: %w", err)
	}
	defer f.Close()
	dynamic, err := hasInterpreter(f)
	if err != nil {
		return fmt.Errorf("read own executable: %w", err)
	}
	if dynamic {
		return fmt.Errorf("this jailmgr is dynamically linked, but sessions run it inside jails: build it with 'make build' (CGO_ENABLED=0)")
	}
	return nil
}

// hasInterpreter tells whether an ELF file names a dynamic loader. Only
// the file and program headers are read (every session start asks this,
// and parsing the section table of a large binary is not free).
func hasInterpreter(r io.ReaderAt) (bool, error) {
	var buf [4096]byte
	n, err := r.ReadAt(buf[:], 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	b := buf[:n]
	if len(b) < 64 || string(b[:4]) != elf.ELFMAG || elf.Class(b[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return false, fmt.Errorf("not a 64-bit ELF file")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(b[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	off, size, num := bo.Uint64(b[32:]), uint64(bo.Uint16(b[54:])), uint64(bo.Uint16(b[56:]))
	if size < 4 || off+size*num > uint64(len(b)) {
		return false, fmt.Errorf("program headers beyond the first %d bytes", len(b))
	}
	for i := uint64(0); i < num; i++ {
		if elf.ProgType(bo.Uint32(b[off+i*size:])) == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}
