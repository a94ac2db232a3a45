package seccomp

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// label names an instruction position; jumps refer to labels so the layout
// can change while the program is assembled.
type label int

// next is the label of the instruction right after a jump.
const next label = -1

// insn is one instruction before assembly. For conditional jumps jt and jf
// are the targets; an unconditional jump (BPF_JA) keeps its target in jt.
type insn struct {
	code   uint16
	k      uint32
	jt, jf label
}

func (i insn) isJump() bool { return i.code&0x07 == unix.BPF_JMP }
func (i insn) isJA() bool   { return i.code == unix.BPF_JMP|unix.BPF_JA }

// assembler collects instructions and labels, then lays them out. Classic BPF
// jumps only forward, and a conditional jump reaches at most 255
// instructions; assemble inserts an unconditional jump as a trampoline where
// a target is further away, so callers never count instructions.
type assembler struct {
	insns  []insn
	labels []int // label → index into insns it is bound to; -1 while unbound
}

func (a *assembler) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// bind makes l point at the next instruction emitted.
func (a *assembler) bind(l label) { a.labels[l] = len(a.insns) }

func (a *assembler) stmt(code uint16, k uint32) {
	a.insns = append(a.insns, insn{code: code, k: k, jt: next, jf: next})
}

// jump emits a conditional jump: BPF_JMP|op|BPF_K comparing A with k.
func (a *assembler) jump(op uint16, k uint32, jt, jf label) {
	a.insns = append(a.insns, insn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

// ja emits an unconditional jump.
func (a *assembler) ja(to label) {
	a.insns = append(a.insns, insn{code: unix.BPF_JMP | unix.BPF_JA, jt: to, jf: next})
}

func (a *assembler) ret(k uint32) { a.stmt(unix.BPF_RET|unix.BPF_K, k) }

// loadAbs loads the 32-bit word at offset into seccomp_data.
func (a *assembler) loadAbs(offset uint32) { a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offset) }

var errBadJump = errors.New("seccomp: internal error: jump backwards, past the end or to an unbound label")

// maxCondJump is the furthest a conditional jump's 8-bit offset reaches.
const maxCondJump = 255

// assemble lays the program out and resolves every label.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	n := len(a.insns)
	// far[i][0] and far[i][1] say whether jt and jf of instruction i go
	// through a trampoline placed right after it. Trampolines only lengthen
	// jumps, so marking them until nothing changes terminates.
	far := make([][2]bool, n)
	pos := make([]int, n+1)
	for {
		p := 0
		for i := range a.insns {
			pos[i] = p
			p++
			if far[i][0] {
				p++
			}
			if far[i][1] {
				p++
			}
		}
		pos[n] = p
		if p > unix.BPF_MAXINSNS {
			return nil, fmt.Errorf("%w: %d instructions, at most %d", ErrTooLarge, p, unix.BPF_MAXINSNS)
		}
		changed := false
		for i, in := range a.insns {
			if !in.isJump() || in.isJA() {
				continue
			}
			for side, l := range [2]label{in.jt, in.jf} {
				if far[i][side] {
					continue
				}
				to, err := a.target(l, i)
				if err != nil {
					return nil, err
				}
				if pos[to]-(pos[i]+1) > maxCondJump {
					far[i][side] = true
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}

	out := make([]unix.SockFilter, 0, pos[n])
	// offset is the distance from the instruction at position from to the
	// target of l, as seen from instruction i.
	offset := func(from int, l label, i int) (uint32, error) {
		to, err := a.target(l, i)
		if err != nil {
			return 0, err
		}
		return uint32(pos[to] - (from + 1)), nil
	}
	for i, in := range a.insns {
		f := unix.SockFilter{Code: in.code, K: in.k}
		if !in.isJump() {
			out = append(out, f)
			continue
		}
		if in.isJA() {
			k, err := offset(pos[i], in.jt, i)
			if err != nil {
				return nil, err
			}
			f.K = k
			out = append(out, f)
			continue
		}
		var tramp []label
		var off [2]uint32
		for side, l := range [2]label{in.jt, in.jf} {
			if far[i][side] {
				off[side] = uint32(len(tramp))
				tramp = append(tramp, l)
				continue
			}
			k, err := offset(pos[i], l, i)
			if err != nil {
				return nil, err
			}
			off[side] = k
		}
		f.Jt, f.Jf = uint8(off[0]), uint8(off[1])
		out = append(out, f)
		for j, l := range tramp {
			k, err := offset(pos[i]+1+j, l, i)
			if err != nil {
				return nil, err
			}
			out = append(out, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: k})
		}
	}
	return out, nil
}

// target returns the index of the instruction l is bound to, which must lie
// after the jump at index from and within the program; next is from+1.
func (a *assembler) target(l label, from int) (int, error) {
	to := from + 1
	if l != next {
		if int(l) < 0 || int(l) >= len(a.labels) {
			return 0, errBadJump
		}
		to = a.labels[l]
	}
	if to <= from || to >= len(a.insns) {
		return 0, errBadJump
	}
	return to, nil
}
