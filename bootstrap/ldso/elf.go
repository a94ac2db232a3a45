package ldso

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
)

// dynamic is what the loader reads from an object's program headers.
type dynamic struct {
	interp   string
	needed   []string
	soname   string
	rpath    string
	runpath  string
	hasRun   bool
	nodeflib bool
}

// maxSegment bounds what is read of PT_INTERP, PT_DYNAMIC and the dynamic
// string table: real ones are a few KiB, a corrupt header may claim GiBs.
const maxSegment = 16 << 20

// readDynamic reads PT_INTERP and the dynamic table through the program
// headers, as ld.so does: section headers may be stripped, and the loader
// never looks at them.
func readDynamic(f *elf.File) (*dynamic, error) {
	d := &dynamic{}
	var dyn []byte
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			b, err := readProg(p, 0, p.Filesz)
			if err != nil {
				return nil, fmt.Errorf("read PT_INTERP: %w", err)
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			d.interp = string(b)
		case elf.PT_DYNAMIC:
			b, err := readProg(p, 0, p.Filesz)
			if err != nil {
				return nil, fmt.Errorf("read PT_DYNAMIC: %w", err)
			}
			dyn = b
		}
	}
	if dyn == nil {
		return d, nil // statically linked
	}
	entSize := 16
	if f.Class == elf.ELFCLASS32 {
		entSize = 8
	}
	var strtab, strsz uint64
	haveStrtab := false
	var neededOff []uint64
	var sonameOff, rpathOff, runpathOff uint64
	var haveSoname, haveRpath bool
	for i := 0; i+entSize <= len(dyn); i += entSize {
		var tag int64
		var val uint64
		if entSize == 16 {
			tag, val = int64(f.ByteOrder.Uint64(dyn[i:])), f.ByteOrder.Uint64(dyn[i+8:])
		} else {
			tag, val = int64(int32(f.ByteOrder.Uint32(dyn[i:]))), uint64(f.ByteOrder.Uint32(dyn[i+4:]))
		}
		switch elf.DynTag(tag) {
		case elf.DT_NULL:
			i = len(dyn)
		case elf.DT_NEEDED:
			neededOff = append(neededOff, val)
		case elf.DT_SONAME:
			sonameOff, haveSoname = val, true
		case elf.DT_RPATH:
			rpathOff, haveRpath = val, true
		case elf.DT_RUNPATH:
			runpathOff, d.hasRun = val, true
		case elf.DT_STRTAB:
			strtab, haveStrtab = val, true
		case elf.DT_STRSZ:
			strsz = val
		case elf.DT_FLAGS_1:
			d.nodeflib = elf.DynFlag1(val)&elf.DF_1_NODEFLIB != 0
		}
	}
	if len(neededOff) == 0 && !haveSoname && !haveRpath && !d.hasRun {
		return d, nil
	}
	if !haveStrtab {
		return nil, fmt.Errorf("%w: dynamic table without DT_STRTAB", errMalformed)
	}
	strs, err := readVaddr(f, strtab, strsz)
	if err != nil {
		return nil, fmt.Errorf("read dynamic string table: %w", err)
	}
	str := func(off uint64) (string, error) {
		if off >= uint64(len(strs)) {
			return "", fmt.Errorf("%w: string offset %d beyond DT_STRSZ %d", errMalformed, off, len(strs))
		}
		s := strs[off:]
		end := bytes.IndexByte(s, 0)
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated string at offset %d", errMalformed, off)
		}
		return string(s[:end]), nil
	}
	for _, off := range neededOff {
		s, err := str(off)
		if err != nil {
			return nil, err
		}
		d.needed = append(d.needed, s)
	}
	if haveSoname {
		if d.soname, err = str(sonameOff); err != nil {
			return nil, err
		}
	}
	// An object with DT_RUNPATH has its DT_RPATH ignored (glibc's
	// get-dynamic-info drops it).
	if d.hasRun {
		if d.runpath, err = str(runpathOff); err != nil {
			return nil, err
		}
	} else if haveRpath {
		if d.rpath, err = str(rpathOff); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// readVaddr reads size bytes at a virtual address, through the PT_LOAD
// segment that maps it.
func readVaddr(f *elf.File, addr, size uint64) ([]byte, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr-p.Vaddr >= p.Filesz {
			continue
		}
		off := addr - p.Vaddr
		if size > p.Filesz-off {
			return nil, fmt.Errorf("%w: %d bytes at %#x run past their segment", errMalformed, size, addr)
		}
		return readProg(p, off, size)
	}
	return nil, fmt.Errorf("%w: address %#x is in no PT_LOAD segment", errMalformed, addr)
}

func readProg(p *elf.Prog, off, size uint64) ([]byte, error) {
	if size > maxSegment {
		return nil, fmt.Errorf("%w: segment of %d bytes", errMalformed, size)
	}
	b := make([]byte, size)
	if _, err := p.ReadAt(b, int64(off)); err != nil && !(err == io.EOF && size == 0) {
		return nil, err
	}
	return b, nil
}

// isELF tells an ELF file from anything else by its magic.
func isELF(head []byte) bool {
	return len(head) >= 4 && bytes.Equal(head[:4], []byte(elf.ELFMAG))
}
