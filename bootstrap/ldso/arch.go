package ldso

import "debug/elf"

// ABI is the kind of object the loader accepts: the class, byte order and
// machine of the executable. A library of another ABI in a search
// directory is passed over, as the loader passes it over.
type ABI struct {
	Class   elf.Class
	Data    elf.Data
	Machine elf.Machine
	Flags   uint32 // e_flags: tells armhf from armel
}

func abiOf(f *elf.File, head []byte) ABI {
	return ABI{Class: f.Class, Data: f.Data, Machine: f.Machine, Flags: elfFlags(f, head)}
}

// same reports whether the loader of a accepts an object of b.
func (a ABI) same(b ABI) bool {
	if a.Class != b.Class || a.Data != b.Data || a.Machine != b.Machine {
		return false
	}
	if a.Machine == elf.EM_ARM {
		return a.Flags&efARMHardFloat == b.Flags&efARMHardFloat
	}
	return true
}

func (a ABI) String() string {
	s := a.Class.String() + " " + a.Machine.String()
	if a.Data == elf.ELFDATA2MSB {
		s += " big-endian"
	}
	return s
}

// efARMHardFloat is EF_ARM_ABI_FLOAT_HARD: armhf, not armel.
const efARMHardFloat = 0x400

// archInfo is what the loader of one Debian architecture knows about itself.
type archInfo struct {
	arch     string // Debian's name
	triplet  string // the multiarch folder name
	platform string // AT_PLATFORM, what $PLATFORM expands to; "" when it depends on the CPU
}

// Arch is the Debian architecture name of the ABI, or "" when Debian has none.
func (a ABI) Arch() string { return a.info().arch }

func (a ABI) info() archInfo {
	le := a.Data == elf.ELFDATA2LSB
	is64 := a.Class == elf.ELFCLASS64
	switch a.Machine {
	case elf.EM_X86_64:
		if is64 {
			return archInfo{"amd64", "x86_64-linux-gnu", "x86_64"}
		}
		return archInfo{"x32", "x86_64-linux-gnux32", "x86_64"}
	case elf.EM_386:
		return archInfo{"i386", "i386-linux-gnu", "i686"}
	case elf.EM_AARCH64:
		return archInfo{"arm64", "aarch64-linux-gnu", "aarch64"}
	case elf.EM_ARM:
		if a.Flags&efARMHardFloat != 0 {
			return archInfo{"armhf", "arm-linux-gnueabihf", ""}
		}
		return archInfo{"armel", "arm-linux-gnueabi", ""}
	case elf.EM_PPC64:
		if le {
			return archInfo{"ppc64el", "powerpc64le-linux-gnu", ""}
		}
		return archInfo{"ppc64", "powerpc64-linux-gnu", ""}
	case elf.EM_S390:
		return archInfo{"s390x", "s390x-linux-gnu", ""}
	case elf.EM_RISCV:
		return archInfo{"riscv64", "riscv64-linux-gnu", ""}
	case elf.EM_LOONGARCH:
		return archInfo{"loong64", "loongarch64-linux-gnu", ""}
	case elf.EM_MIPS:
		switch {
		case is64 && le:
			return archInfo{"mips64el", "mips64el-linux-gnuabi64", ""}
		case le:
			return archInfo{"mipsel", "mipsel-linux-gnu", ""}
		}
	}
	return archInfo{}
}

// elfFlags reads e_flags from the first bytes of the file, which
// debug/elf does not keep in its FileHeader.
func elfFlags(f *elf.File, head []byte) uint32 {
	off := 0x30
	if f.Class == elf.ELFCLASS32 {
		off = 0x24
	}
	if len(head) < off+4 {
		return 0
	}
	return f.ByteOrder.Uint32(head[off:])
}
