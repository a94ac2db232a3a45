// Package ldsotest makes ELF objects in code for tests of what reads
// them: just the headers the dynamic loader looks at, with chosen
// interpreter, DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH and DT_FLAGS_1.
package ldsotest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// Object describes a small ELF object to make. Its zero value is an amd64
// shared library with an empty dynamic table.
type Object struct {
	Class   elf.Class   // default ELFCLASS64
	Machine elf.Machine // default EM_X86_64
	Type    elf.Type    // default ET_DYN
	Interp  string      // PT_INTERP, if any
	Static  bool        // no PT_DYNAMIC at all
	Needed  []string
	Soname  string
	RPath   string
	RunPath string
	Flags1  elf.DynFlag1
}

// Bytes is the object as a little-endian ELF file with only program
// headers (PT_LOAD over the whole file, PT_INTERP, PT_DYNAMIC), which is
// all the loader reads; it has no code and is never meant to run.
func (f Object) Bytes() []byte {
	if f.Class == 0 {
		f.Class = elf.ELFCLASS64
	}
	if f.Machine == 0 {
		f.Machine = elf.EM_X86_64
	}
	if f.Type == 0 {
		f.Type = elf.ET_DYN
	}
	is64 := f.Class == elf.ELFCLASS64
	ehsize, phentsize := 52, 32
	if is64 {
		ehsize, phentsize = 64, 56
	}
	nph := 1
	if f.Interp != "" {
		nph++
	}
	if !f.Static {
		nph++
	}
	// Data after the headers: interpreter, string table, dynamic table;
	// virtual addresses equal file offsets.
	off := ehsize + nph*phentsize
	interpOff := off
	off += len(f.Interp) + 1
	var strtab bytes.Buffer
	strtab.WriteByte(0)
	str := func(s string) uint64 {
		o := uint64(strtab.Len())
		strtab.WriteString(s)
		strtab.WriteByte(0)
		return o
	}
	type dyn struct {
		tag elf.DynTag
		val uint64
	}
	var dyns []dyn
	for _, n := range f.Needed {
		dyns = append(dyns, dyn{elf.DT_NEEDED, str(n)})
	}
	if f.Soname != "" {
		dyns = append(dyns, dyn{elf.DT_SONAME, str(f.Soname)})
	}
	if f.RPath != "" {
		dyns = append(dyns, dyn{elf.DT_RPATH, str(f.RPath)})
	}
	if f.RunPath != "" {
		dyns = append(dyns, dyn{elf.DT_RUNPATH, str(f.RunPath)})
	}
	if f.Flags1 != 0 {
		dyns = append(dyns, dyn{elf.DT_FLAGS_1, uint64(f.Flags1)})
	}
	strOff := off
	off += strtab.Len()
	off = (off + 7) &^ 7
	dynOff := off
	dyns = append(dyns, dyn{elf.DT_STRTAB, uint64(strOff)}, dyn{elf.DT_STRSZ, uint64(strtab.Len())}, dyn{elf.DT_NULL, 0})
	dynSize := len(dyns) * 8
	if is64 {
		dynSize = len(dyns) * 16
	}
	if f.Static {
		dynSize = 0
	}
	total := dynOff + dynSize

	var b bytes.Buffer
	le := binary.LittleEndian
	ident := [16]byte{0x7f, 'E', 'L', 'F', byte(f.Class), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	type ph struct {
		typ            elf.ProgType
		off, filesz    uint64
		flags, aligned uint32
	}
	phs := []ph{{typ: elf.PT_LOAD, off: 0, filesz: uint64(total)}}
	if f.Interp != "" {
		phs = append(phs, ph{typ: elf.PT_INTERP, off: uint64(interpOff), filesz: uint64(len(f.Interp) + 1)})
	}
	if !f.Static {
		phs = append(phs, ph{typ: elf.PT_DYNAMIC, off: uint64(dynOff), filesz: uint64(dynSize)})
	}
	if is64 {
		binary.Write(&b, le, elf.Header64{Ident: ident, Type: uint16(f.Type), Machine: uint16(f.Machine), Version: 1,
			Phoff: uint64(ehsize), Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: uint16(nph)})
		for _, p := range phs {
			binary.Write(&b, le, elf.Prog64{Type: uint32(p.typ), Off: p.off, Vaddr: p.off, Paddr: p.off, Filesz: p.filesz, Memsz: p.filesz, Align: 1})
		}
	} else {
		binary.Write(&b, le, elf.Header32{Ident: ident, Type: uint16(f.Type), Machine: uint16(f.Machine), Version: 1,
			Phoff: uint32(ehsize), Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: uint16(nph)})
		for _, p := range phs {
			binary.Write(&b, le, elf.Prog32{Type: uint32(p.typ), Off: uint32(p.off), Vaddr: uint32(p.off), Paddr: uint32(p.off), Filesz: uint32(p.filesz), Memsz: uint32(p.filesz), Align: 1})
		}
	}
	b.WriteString(f.Interp)
	b.WriteByte(0)
	b.Write(strtab.Bytes())
	for b.Len() < dynOff {
		b.WriteByte(0)
	}
	if !f.Static {
		for _, d := range dyns {
			if is64 {
				binary.Write(&b, le, elf.Dyn64{Tag: int64(d.tag), Val: d.val})
			} else {
				binary.Write(&b, le, elf.Dyn32{Tag: int32(d.tag), Val: uint32(d.val)})
			}
		}
	}
	return b.Bytes()
}
