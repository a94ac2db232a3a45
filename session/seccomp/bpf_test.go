package seccomp

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data as the kernel hands it to a filter.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [argCount]uint64
}

// call is a native amd64 syscall with the given arguments.
func call(nr uint32, args ...uint64) seccompData {
	d := seccompData{nr: int32(nr), arch: unix.AUDIT_ARCH_X86_64}
	copy(d.args[:], args)
	return d
}

func (d seccompData) bytes() []byte {
	b := make([]byte, offArgs+8*argCount)
	binary.LittleEndian.PutUint32(b[offNr:], uint32(d.nr))
	binary.LittleEndian.PutUint32(b[offArch:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[offArgs+8*i:], a)
	}
	return b
}

// run interprets a seccomp program on d, as the kernel would, for the
// instructions this package emits; anything else is an error, so a program
// using an instruction the interpreter does not know cannot pass silently.
func run(prog []unix.SockFilter, d seccompData) (uint32, error) {
	data := d.bytes()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		cond := func(ok bool) {
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || int(in.K)+4 > len(data) {
				return 0, fmt.Errorf("pc %d: load at offset %d", pc, in.K)
			}
			a = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			cond(a == in.K)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			cond(a > in.K)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			cond(a >= in.K)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			cond(a&in.K != 0)
		case unix.BPF_RET | unix.BPF_K:
			return in.K, nil
		default:
			return 0, fmt.Errorf("pc %d: unknown instruction %#x", pc, in.Code)
		}
	}
	return 0, fmt.Errorf("ran off the end of %d instructions", len(prog))
}

// checkProgram applies the kernel's static checks (bpf_check_classic and
// seccomp_check_filter) that matter for the instructions emitted here: a
// length of 1 to 4096, jumps that land inside the program, loads inside
// seccomp_data, and a return as the last instruction.
func checkProgram(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > unix.BPF_MAXINSNS {
		return fmt.Errorf("length %d is outside 1..%d", len(prog), unix.BPF_MAXINSNS)
	}
	for pc, in := range prog {
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || in.K >= offArgs+8*argCount {
				return fmt.Errorf("pc %d: load at offset %d", pc, in.K)
			}
		case unix.BPF_JMP | unix.BPF_JA:
			if uint64(pc)+1+uint64(in.K) >= uint64(len(prog)) {
				return fmt.Errorf("pc %d: ja %d leaves the program", pc, in.K)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			if pc+1+int(max(in.Jt, in.Jf)) >= len(prog) {
				return fmt.Errorf("pc %d: jump %d/%d leaves the program", pc, in.Jt, in.Jf)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_RET | unix.BPF_K:
		default:
			return fmt.Errorf("pc %d: instruction %#x not allowed", pc, in.Code)
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		return fmt.Errorf("last instruction %#x is not a return", last.Code)
	}
	return nil
}

// retName spells a filter return for test failures.
func retName(r uint32) string {
	data := r & unix.SECCOMP_RET_DATA
	switch r & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%s)", unix.ErrnoName(unix.Errno(data)))
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_TRAP:
		return "TRAP"
	case unix.SECCOMP_RET_LOG:
		return "LOG"
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("TRACE(%d)", data)
	}
	return fmt.Sprintf("%#x", r)
}

func errnoRet(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

// TestAssemblerTrampolines checks jumps further than 255 instructions on
// the true branch, the false branch and both, at distances around the limit.
func TestAssemblerTrampolines(t *testing.T) {
	for _, gap := range []int{0, 1, 120, 250, 251, 252, 253, 254, 255, 256, 300, 1000} {
		var a assembler
		near, far, far2 := a.newLabel(), a.newLabel(), a.newLabel()
		a.loadAbs(offNr)
		a.jump(unix.BPF_JEQ, 1, far, next)  // true branch far
		a.jump(unix.BPF_JGE, 10, next, far) // false branch far
		a.jump(unix.BPF_JEQ, 10, far, next)
		a.jump(unix.BPF_JGT, 11, next, near)
		a.jump(unix.BPF_JEQ, 12, far, far2) // both far
		a.bind(near)
		a.ret(200)
		pad := func() {
			for range gap {
				a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, 0xffffffff)
			}
		}
		pad()
		a.bind(far)
		a.ret(300)
		pad()
		a.bind(far2)
		a.ret(400)
		prog, err := a.assemble()
		if err != nil {
			t.Fatalf("gap %d: %v", gap, err)
		}
		if err := checkProgram(prog); err != nil {
			t.Fatalf("gap %d: %v", gap, err)
		}
		for nr, want := range map[uint32]uint32{1: 300, 2: 300, 9: 300, 10: 300, 11: 200, 12: 300, 13: 400} {
			got, err := run(prog, call(nr))
			if err != nil {
				t.Fatalf("gap %d nr %d: %v", gap, nr, err)
			}
			if got != want {
				t.Errorf("gap %d: nr %d returned %d, want %d", gap, nr, got, want)
			}
		}
		if gap <= 120 && len(prog) != len(a.insns) {
			t.Errorf("gap %d: %d instructions for %d, want no trampolines", gap, len(prog), len(a.insns))
		}
		if gap >= 256 && len(prog) == len(a.insns) {
			t.Errorf("gap %d: no trampolines inserted", gap)
		}
	}
}

func TestAssemblerRejectsBadJumps(t *testing.T) {
	var a assembler
	back := a.newLabel()
	a.bind(back)
	a.loadAbs(offNr)
	a.jump(unix.BPF_JEQ, 1, back, next)
	a.ret(0)
	if _, err := a.assemble(); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("backward jump assembled: %v", err)
	}
	var b assembler
	b.loadAbs(offNr)
	b.jump(unix.BPF_JEQ, 1, b.newLabel(), next)
	b.ret(0)
	if _, err := b.assemble(); err == nil {
		t.Error("jump to an unbound label assembled")
	}
}
