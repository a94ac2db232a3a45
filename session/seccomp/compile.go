package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The host this package compiles for: amd64, whose syscalls arrive with
// AUDIT_ARCH_X86_64; x32 calls arrive with the same audit arch and bit 30
// set in the syscall number, i386 calls (int 0x80) with AUDIT_ARCH_I386.
const (
	nativeArch  = specs.ArchX86_64
	nativeName  = "amd64" // the name includes/excludes arches use, as in moby
	nativeAudit = unix.AUDIT_ARCH_X86_64
	x32Bit      = 0x40000000
)

// Offsets into struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }.
// Arguments are little-endian on amd64: the low half comes first.
const (
	offNr    = 0
	offArch  = 4
	offArgs  = 16
	argCount = 6
)

// operators are the argument comparisons Docker profiles use.
var operators = map[specs.LinuxSeccompOperator]bool{
	specs.OpEqualTo: true, specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true,
	specs.OpGreaterThan: true, specs.OpGreaterEqual: true, specs.OpMaskedEqual: true,
}

// chunk bounds a run of syscall comparisons that share one return, so
// every comparison reaches it with an 8-bit jump offset.
const chunk = 200

// Compile builds the filter for p as it applies to a jail keeping caps (for
// example "CAP_SYS_ADMIN"), on this host's kernel version. Rules are
// selected as Docker selects them: an includes condition needs every listed
// capability, an excludes condition any one.
func Compile(p *Profile, caps []string) ([]unix.SockFilter, error) {
	if p == nil || p.spec == nil {
		return nil, errors.New("compile seccomp profile: no profile")
	}
	prog, err := compile(p.spec, caps, hostKernel)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp profile %s: %w", p.name, err)
	}
	return prog, nil
}

// rule is one compiled rule: conditions that must all hold, then a return.
type rule struct {
	conds []specs.LinuxSeccompArg
	ret   uint32
}

// syscallRules holds what one syscall number does: the conditional rules in
// profile order, then the unconditional return.
type syscallRules struct {
	conditional []rule
	fallback    uint32
	hasFallback bool
}

// compile is Compile with the kernel version injected, so tests can pin it.
func compile(p *mobyseccomp.Seccomp, caps []string, kernel func() (mobyseccomp.KernelVersion, error)) ([]unix.SockFilter, error) {
	if err := validate(p); err != nil {
		return nil, err
	}
	def := actionValue(p.DefaultAction, p.DefaultErrnoRet)
	byNr, err := selectRules(p, caps, kernel)
	if err != nil {
		return nil, err
	}

	var a assembler
	// Anything not natively amd64 is decided before the syscall number is
	// looked at: numbers mean different syscalls under another ABI.
	foreign := foreignReturn(def)
	arches := listedArches(p)
	native := a.newLabel()
	a.loadAbs(offArch)
	a.jump(unix.BPF_JEQ, nativeAudit, native, next)
	if arches[specs.ArchX86] {
		notI386 := a.newLabel()
		a.jump(unix.BPF_JEQ, unix.AUDIT_ARCH_I386, next, notI386)
		a.ret(foreign)
		a.bind(notI386)
	}
	a.ret(unix.SECCOMP_RET_KILL_PROCESS)

	a.bind(native)
	a.loadAbs(offNr)
	x32 := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	if arches[specs.ArchX32] {
		x32 = foreign
	}
	// A tracer skips a call by setting its number to -1, and the kernel runs
	// the filter again on that; like libseccomp, let it reach the default
	// action instead of taking it for an x32 call.
	notX32 := a.newLabel()
	a.jump(unix.BPF_JGE, x32Bit, next, notX32)
	a.jump(unix.BPF_JEQ, 0xffffffff, notX32, next)
	a.ret(x32)
	a.bind(notX32)

	// Syscalls that only have an unconditional return are grouped by that
	// return; those with argument conditions get a block of their own.
	nrs := make([]uint32, 0, len(byNr))
	for nr := range byNr {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	groups := map[uint32][]uint32{}
	var rets []uint32
	blocks := map[uint32]label{}
	for _, nr := range nrs {
		r := byNr[nr]
		switch {
		case len(r.conditional) > 0:
			blocks[nr] = a.newLabel()
		case r.fallback != def:
			if _, ok := groups[r.fallback]; !ok {
				rets = append(rets, r.fallback)
			}
			groups[r.fallback] = append(groups[r.fallback], nr)
		}
	}
	for _, ret := range rets {
		for group := range slices.Chunk(groups[ret], chunk) {
			hit, miss := a.newLabel(), a.newLabel()
			for i, nr := range group {
				if i < len(group)-1 {
					a.jump(unix.BPF_JEQ, nr, hit, next)
				} else {
					a.jump(unix.BPF_JEQ, nr, hit, miss)
				}
			}
			a.bind(hit)
			a.ret(ret)
			a.bind(miss)
		}
	}
	for _, nr := range nrs {
		if l, ok := blocks[nr]; ok {
			a.jump(unix.BPF_JEQ, nr, l, next)
		}
	}
	a.ret(def)

	for _, nr := range nrs {
		l, ok := blocks[nr]
		if !ok {
			continue
		}
		a.bind(l)
		r := byNr[nr]
		for _, ru := range r.conditional {
			fail := a.newLabel()
			for _, c := range ru.conds {
				emitCond(&a, c, fail)
			}
			a.ret(ru.ret)
			a.bind(fail)
		}
		if r.hasFallback {
			a.ret(r.fallback)
		} else {
			a.ret(def)
		}
	}
	return a.assemble()
}

// foreignReturn is what a call through the i386 or x32 ABI gets when the
// profile lists that ABI: the default action, unless that would let the
// call run unfiltered, because there is no table to match it by name.
func foreignReturn(def uint32) uint32 {
	switch def & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG:
		return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	}
	return def
}

// listedArches are the architectures the profile covers on this host: the
// architectures list, or the archMap entry for amd64 with its
// sub-architectures — the entries for other hosts do not apply here.
func listedArches(p *mobyseccomp.Seccomp) map[specs.Arch]bool {
	set := map[specs.Arch]bool{nativeArch: true}
	for _, a := range p.Architectures {
		set[a] = true
	}
	for _, m := range p.ArchMap {
		if m.Arch == nativeArch {
			for _, a := range m.SubArches {
				set[a] = true
			}
		}
	}
	return set
}

// selectRules keeps the rules that apply to this host and jail, resolves
// their names, and groups them by syscall number. Unknown names are skipped
// as Docker skips them: a profile names syscalls of every architecture.
//
// Arguments follow runc: conditions on different arguments must all hold,
// but conditions repeated on one argument each make a rule of their own,
// since requiring arg0 == 1 and arg0 == 2 at once would never match. Of two
// unconditional rules for one syscall the first wins.
func selectRules(p *mobyseccomp.Seccomp, caps []string, kernel func() (mobyseccomp.KernelVersion, error)) (map[uint32]*syscallRules, error) {
	have := map[string]bool{}
	for _, c := range caps {
		have[strings.ToUpper(c)] = true
	}
	byNr := map[uint32]*syscallRules{}
	for i, call := range p.Syscalls {
		ok, err := applies(call, have, kernel)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		if !ok {
			continue
		}
		ret := actionValue(call.Action, call.ErrnoRet)
		rules := splitArgs(call.Args, ret)
		names := call.Names
		if call.Name != "" {
			names = []string{call.Name}
		}
		for _, name := range names {
			nr, ok := syscallNumbers()[name]
			if !ok {
				continue
			}
			r := byNr[nr]
			if r == nil {
				r = &syscallRules{}
				byNr[nr] = r
			}
			for _, ru := range rules {
				if len(ru.conds) > 0 {
					r.conditional = append(r.conditional, ru)
				} else if !r.hasFallback {
					r.fallback, r.hasFallback = ru.ret, true
				}
			}
		}
	}
	return byNr, nil
}

// splitArgs turns one profile rule's arguments into rules, as runc does.
func splitArgs(args []specs.LinuxSeccompArg, ret uint32) []rule {
	count := map[uint]int{}
	for _, a := range args {
		count[a.Index]++
	}
	var rules []rule
	var together []specs.LinuxSeccompArg
	for _, a := range args {
		if count[a.Index] > 1 {
			rules = append(rules, rule{conds: []specs.LinuxSeccompArg{a}, ret: ret})
		} else {
			together = append(together, a)
		}
	}
	if len(together) > 0 || len(rules) == 0 {
		rules = append(rules, rule{conds: together, ret: ret})
	}
	return rules
}

// applies evaluates a rule's includes and excludes for amd64, the jail's
// capabilities and the running kernel, the way moby's setupSeccomp does.
func applies(call *mobyseccomp.Syscall, caps map[string]bool, kernel func() (mobyseccomp.KernelVersion, error)) (bool, error) {
	atLeast := func(v *mobyseccomp.KernelVersion) (bool, error) {
		k, err := kernel()
		if err != nil {
			return false, fmt.Errorf("compare kernel version with %s: %w", v, err)
		}
		return k.Kernel > v.Kernel || k.Kernel == v.Kernel && k.Major >= v.Major, nil
	}
	if ex := call.Excludes; ex != nil {
		if slices.Contains(ex.Arches, nativeName) {
			return false, nil
		}
		for _, c := range ex.Caps {
			if caps[strings.ToUpper(c)] {
				return false, nil
			}
		}
		if ex.MinKernel != nil {
			if ok, err := atLeast(ex.MinKernel); err != nil || ok {
				return false, err
			}
		}
	}
	if in := call.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, nativeName) {
			return false, nil
		}
		for _, c := range in.Caps {
			if !caps[strings.ToUpper(c)] {
				return false, nil
			}
		}
		if in.MinKernel != nil {
			if ok, err := atLeast(in.MinKernel); err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// actionValue is the filter's return value for a validated action.
func actionValue(act specs.LinuxSeccompAction, errnoRet *uint) uint32 {
	switch act {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW
	case specs.ActErrno:
		if errnoRet != nil {
			return unix.SECCOMP_RET_ERRNO | uint32(*errnoRet)
		}
		return unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	case specs.ActTrace:
		return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG
	}
	return unix.SECCOMP_RET_KILL_THREAD // SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD
}

// emitCond emits one 64-bit argument comparison, compared as unsigned as
// libseccomp does on 64-bit hosts. Classic BPF has a 32-bit accumulator, so
// the high halves decide unless they are equal, then the low halves do. It
// falls through when the condition holds and jumps to fail otherwise.
func emitCond(a *assembler, c specs.LinuxSeccompArg, fail label) {
	lo, hi := offArgs+8*uint32(c.Index), offArgs+8*uint32(c.Index)+4
	v := c.Value
	vlo, vhi := uint32(v), uint32(v>>32)
	pass := a.newLabel()
	switch c.Op {
	case specs.OpEqualTo, specs.OpNotEqual:
		t, f := pass, fail
		if c.Op == specs.OpNotEqual {
			t, f = fail, pass
		}
		a.loadAbs(hi)
		a.jump(unix.BPF_JEQ, vhi, next, f)
		a.loadAbs(lo)
		a.jump(unix.BPF_JEQ, vlo, t, f)
	case specs.OpMaskedEqual:
		// Value is the mask and ValueTwo the datum, as in libseccomp.
		d := c.ValueTwo
		a.loadAbs(hi)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vhi)
		a.jump(unix.BPF_JEQ, uint32(d>>32), next, fail)
		a.loadAbs(lo)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vlo)
		a.jump(unix.BPF_JEQ, uint32(d), pass, fail)
	default:
		// GT and GE directly; LT and LE as their negations.
		t, f := pass, fail
		low := uint16(unix.BPF_JGT)
		switch c.Op {
		case specs.OpGreaterEqual:
			low = unix.BPF_JGE
		case specs.OpLessThan:
			low, t, f = unix.BPF_JGE, fail, pass
		case specs.OpLessEqual:
			t, f = fail, pass
		}
		a.loadAbs(hi)
		a.jump(unix.BPF_JGT, vhi, t, next)
		a.jump(unix.BPF_JEQ, vhi, next, f)
		a.loadAbs(lo)
		a.jump(low, vlo, t, f)
	}
	a.bind(pass)
}
