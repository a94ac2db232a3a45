package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"jailmgr/conf"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

const auditArchAArch64 = 0xc00000b7

// kernelAt pins the kernel version minKernel conditions see.
func kernelAt(kernel, major uint64) func() (mobyseccomp.KernelVersion, error) {
	return func() (mobyseccomp.KernelVersion, error) {
		return mobyseccomp.KernelVersion{Kernel: kernel, Major: major}, nil
	}
}

// mustCompile compiles and checks the program the way the kernel would.
func mustCompile(t testing.TB, p *Profile, caps []string, kernel func() (mobyseccomp.KernelVersion, error)) []unix.SockFilter {
	t.Helper()
	prog, err := compile(p.spec, caps, kernel)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if err := checkProgram(prog); err != nil {
		t.Fatalf("kernel would refuse the program: %v", err)
	}
	return prog
}

// mustParse parses a profile written in the test.
func mustParse(t testing.TB, profile string) *Profile {
	t.Helper()
	p, err := parse("test.json", []byte(profile))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type probe struct {
	what string
	in   seccompData
	want uint32
}

func expect(t *testing.T, prog []unix.SockFilter, probes []probe) {
	t.Helper()
	for _, p := range probes {
		got, err := run(prog, p.in)
		if err != nil {
			t.Fatalf("%s: %v", p.what, err)
		}
		if got != p.want {
			t.Errorf("%s: filter returns %s, want %s", p.what, retName(got), retName(p.want))
		}
	}
}

const (
	allow = unix.SECCOMP_RET_ALLOW
	eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	kill  = unix.SECCOMP_RET_KILL_PROCESS
)

// TestDefaultProfile checks Docker's default profile for the default
// capability set: the calls a jail must not make are refused, ordinary ones
// pass, and argument rules (clone, socket, personality) hold on all 64 bits.
func TestDefaultProfile(t *testing.T) {
	prog := mustCompile(t, Default(), conf.DefaultCapabilities, kernelAt(6, 1))
	if len(prog) > 1000 {
		t.Errorf("default profile takes %d instructions; grouping by action should keep it near 400", len(prog))
	}
	const ns = unix.CLONE_NEWNS | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
	expect(t, prog, []probe{
		{"read", call(unix.SYS_READ), allow},
		{"openat", call(unix.SYS_OPENAT), allow},
		{"getpid", call(unix.SYS_GETPID), allow},
		{"execve", call(unix.SYS_EXECVE), allow},
		{"chroot (CAP_SYS_CHROOT is kept)", call(unix.SYS_CHROOT), allow},
		{"ptrace on kernel 6.1", call(unix.SYS_PTRACE), allow},
		{"mount", call(unix.SYS_MOUNT), eperm},
		{"umount2", call(unix.SYS_UMOUNT2), eperm},
		{"unshare", call(unix.SYS_UNSHARE, unix.CLONE_NEWUSER), eperm},
		{"setns", call(unix.SYS_SETNS), eperm},
		{"keyctl", call(unix.SYS_KEYCTL), eperm},
		{"bpf", call(unix.SYS_BPF), eperm},
		{"init_module", call(unix.SYS_INIT_MODULE), eperm},
		{"kexec_load", call(unix.SYS_KEXEC_LOAD), eperm},
		{"reboot", call(unix.SYS_REBOOT), eperm},
		{"clone3 (glibc falls back to clone)", call(unix.SYS_CLONE3), errnoRet(unix.ENOSYS)},
		{"unassigned number", call(999), eperm},
		{"clone for fork", call(unix.SYS_CLONE, uint64(unix.SIGCHLD)), allow},
		{"clone for a thread", call(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD), allow},
		{"clone with CLONE_NEWNS", call(unix.SYS_CLONE, unix.CLONE_NEWNS|uint64(unix.SIGCHLD)), eperm},
		{"clone with namespaces", call(unix.SYS_CLONE, ns), eperm},
		{"clone with bits above 32 only", call(unix.SYS_CLONE, 1<<40|uint64(unix.SIGCHLD)), allow},
		{"socket AF_UNIX", call(unix.SYS_SOCKET, unix.AF_UNIX), allow},
		{"socket AF_INET", call(unix.SYS_SOCKET, unix.AF_INET), allow},
		{"socket AF_INET6", call(unix.SYS_SOCKET, unix.AF_INET6), allow},
		{"socket AF_NETLINK", call(unix.SYS_SOCKET, unix.AF_NETLINK), allow},
		{"socket AF_AX25 (removed from the kernel)", call(unix.SYS_SOCKET, unix.AF_AX25), eperm},
		{"socket AF_ALG", call(unix.SYS_SOCKET, unix.AF_ALG), eperm},
		{"socket AF_NFC (between AF_ALG and AF_VSOCK)", call(unix.SYS_SOCKET, unix.AF_NFC), allow},
		{"socket AF_VSOCK", call(unix.SYS_SOCKET, unix.AF_VSOCK), eperm},
		{"socket AF_KCM", call(unix.SYS_SOCKET, unix.AF_KCM), allow},
		{"socket past AF_MCTP", call(unix.SYS_SOCKET, unix.AF_MCTP+1), eperm},
		{"socket AF_INET with a high half", call(unix.SYS_SOCKET, 1<<32|unix.AF_INET), eperm},
		{"personality 0", call(unix.SYS_PERSONALITY, 0), allow},
		{"personality query", call(unix.SYS_PERSONALITY, 0xffffffff), allow},
		{"personality 0xffffffff in the high half", call(unix.SYS_PERSONALITY, 0xffffffff<<32), eperm},
		{"personality ADDR_NO_RANDOMIZE", call(unix.SYS_PERSONALITY, 0x0040000), eperm},
		{"i386 call (listed in archMap)", seccompData{nr: 1, arch: unix.AUDIT_ARCH_I386}, eperm},
		{"aarch64 call (not for this host)", seccompData{nr: unix.SYS_READ, arch: auditArchAArch64}, kill},
		{"x32 read (listed in archMap)", call(x32Bit | unix.SYS_READ), eperm},
		{"skipped by a tracer (-1)", seccompData{nr: -1, arch: unix.AUDIT_ARCH_X86_64}, eperm},
	})

	old := mustCompile(t, Default(), conf.DefaultCapabilities, kernelAt(4, 4))
	expect(t, old, []probe{{"ptrace on kernel 4.4", call(unix.SYS_PTRACE), eperm}})
}

// TestDefaultProfileCapabilities checks that kept capabilities widen the
// profile as Docker widens it, and only those.
func TestDefaultProfileCapabilities(t *testing.T) {
	caps := append(slices.Clone(conf.DefaultCapabilities), "CAP_SYS_ADMIN", "cap_sys_module")
	prog := mustCompile(t, Default(), caps, kernelAt(6, 1))
	expect(t, prog, []probe{
		{"mount", call(unix.SYS_MOUNT), allow},
		{"unshare", call(unix.SYS_UNSHARE, unix.CLONE_NEWNS), allow},
		{"setns", call(unix.SYS_SETNS), allow},
		{"clone with namespaces", call(unix.SYS_CLONE, unix.CLONE_NEWNS|unix.CLONE_NEWPID), allow},
		{"clone3", call(unix.SYS_CLONE3), allow},
		{"init_module (lower-case capability name)", call(unix.SYS_INIT_MODULE), allow},
		{"bpf (CAP_SYS_ADMIN opens it too)", call(unix.SYS_BPF), allow},
		{"settimeofday (needs CAP_SYS_TIME)", call(unix.SYS_SETTIMEOFDAY), eperm},
		{"acct (needs CAP_SYS_PACCT)", call(unix.SYS_ACCT), eperm},
		{"reboot (needs CAP_SYS_BOOT)", call(unix.SYS_REBOOT), eperm},
	})
	none := mustCompile(t, Default(), nil, kernelAt(6, 1))
	expect(t, none, []probe{
		{"chroot without CAP_SYS_CHROOT", call(unix.SYS_CHROOT), eperm},
		{"read", call(unix.SYS_READ), allow},
	})
}

// TestRoundTrip checks that the default profile written out as JSON and
// loaded back compiles to the same program, which exercises Load's decoding
// of every construct the default profile uses.
func TestRoundTrip(t *testing.T) {
	data, err := json.Marshal(mobyseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	want := mustCompile(t, Default(), conf.DefaultCapabilities, kernelAt(6, 1))
	got := mustCompile(t, mustParse(t, string(data)), conf.DefaultCapabilities, kernelAt(6, 1))
	if !slices.Equal(got, want) {
		t.Errorf("loaded default profile compiles to %d instructions, Default() to %d, and they differ", len(got), len(want))
	}
}

// cmp is the reference for one comparison, in plain 64-bit Go arithmetic.
var reference = map[string]func(arg, v, v2 uint64) bool{
	"SCMP_CMP_EQ":        func(a, v, _ uint64) bool { return a == v },
	"SCMP_CMP_NE":        func(a, v, _ uint64) bool { return a != v },
	"SCMP_CMP_LT":        func(a, v, _ uint64) bool { return a < v },
	"SCMP_CMP_LE":        func(a, v, _ uint64) bool { return a <= v },
	"SCMP_CMP_GT":        func(a, v, _ uint64) bool { return a > v },
	"SCMP_CMP_GE":        func(a, v, _ uint64) bool { return a >= v },
	"SCMP_CMP_MASKED_EQ": func(a, m, d uint64) bool { return a&m == d },
}

// TestArgumentComparisons compiles every operator against values chosen to
// differ in one half only, and checks each against 64-bit Go arithmetic on
// arguments just around them — in every argument slot.
func TestArgumentComparisons(t *testing.T) {
	values := []uint64{0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 | 1, 1<<32 | 0xffffffff,
		2 << 32, 0x8000000000000000, 0xfffffffffffffffe, 0xffffffffffffffff, 0x123456789abcdef0}
	var args []uint64
	for _, v := range values {
		args = append(args, v-1, v, v+1, v^1<<32, v^1, ^v)
	}
	for op, ref := range reference {
		for _, index := range []int{0, 3, 5} {
			for _, v := range values {
				v2 := v & 0x00ff00ff00ff00ff // a datum within the mask
				p := mustParse(t, fmt.Sprintf(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
					{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,
					 "args":[{"index":%d,"value":%d,"valueTwo":%d,"op":%q}]}]}`, index, v, v2, op))
				prog := mustCompile(t, p, nil, kernelAt(6, 1))
				for _, a := range args {
					in := call(unix.SYS_GETPID)
					in.args[index] = a
					// A wrong slot must not be consulted: fill the others.
					for i := range in.args {
						if i != index {
							in.args[i] = ^a
						}
					}
					got, err := run(prog, in)
					if err != nil {
						t.Fatal(err)
					}
					want := uint32(allow)
					if ref(a, v, v2) {
						want = errnoRet(7)
					}
					if got != want {
						t.Errorf("%s arg%d=%#x against %#x/%#x: %s, want %s", op, index, a, v, v2, retName(got), retName(want))
					}
				}
			}
		}
	}
}

// TestRuleSemantics checks how rules combine, following runc: conditions on
// different arguments are ANDed, conditions repeated on one argument are
// ORed, and a syscall's conditional rules come before its plain one.
func TestRuleSemantics(t *testing.T) {
	p := mustParse(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
		{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[
			{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
		{"names":["write"],"action":"SCMP_ACT_ALLOW","args":[
			{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
		{"names":["close"],"action":"SCMP_ACT_ALLOW"},
		{"names":["close"],"action":"SCMP_ACT_ERRNO","errnoRet":9,"args":[{"index":0,"value":100,"op":"SCMP_CMP_GE"}]},
		{"names":["close"],"action":"SCMP_ACT_KILL"},
		{"name":"dup","action":"SCMP_ACT_TRAP"},
		{"names":["dup2"],"action":"SCMP_ACT_LOG"},
		{"names":["dup3"],"action":"SCMP_ACT_TRACE"},
		{"names":["pipe"],"action":"SCMP_ACT_KILL_THREAD"},
		{"names":["pipe2"],"action":"SCMP_ACT_KILL_PROCESS"},
		{"names":["no_such_call","fstatat64","getpid"],"action":"SCMP_ACT_ALLOW"}
	]}`)
	prog := mustCompile(t, p, nil, kernelAt(6, 1))
	expect(t, prog, []probe{
		{"read both args match", call(unix.SYS_READ, 1, 2), allow},
		{"read one arg matches", call(unix.SYS_READ, 1, 3), eperm},
		{"write arg0 = 1", call(unix.SYS_WRITE, 1), allow},
		{"write arg0 = 2", call(unix.SYS_WRITE, 2), allow},
		{"write arg0 = 3", call(unix.SYS_WRITE, 3), eperm},
		{"close low fd", call(unix.SYS_CLOSE, 3), allow},
		{"close high fd", call(unix.SYS_CLOSE, 100), errnoRet(9)},
		{"dup (name)", call(unix.SYS_DUP), unix.SECCOMP_RET_TRAP},
		{"dup2", call(unix.SYS_DUP2), unix.SECCOMP_RET_LOG},
		{"dup3 (trace is ENOSYS)", call(unix.SYS_DUP3), errnoRet(unix.ENOSYS)},
		{"pipe", call(unix.SYS_PIPE), unix.SECCOMP_RET_KILL_THREAD},
		{"pipe2", call(unix.SYS_PIPE2), kill},
		{"getpid after unknown names", call(unix.SYS_GETPID), allow},
		{"i386 (no arches listed)", seccompData{arch: unix.AUDIT_ARCH_I386}, kill},
		{"x32 (no arches listed)", call(x32Bit | unix.SYS_GETPID), kill},
	})
}

// TestForeignABIs checks the i386 and x32 ABIs: listed ones get a denying
// default action, or ENOSYS when the default would let them through.
func TestForeignABIs(t *testing.T) {
	const deny = `{"names":["mount"],"action":"SCMP_ACT_ERRNO"}`
	permissive := mustParse(t, `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[`+deny+`]}`)
	expect(t, mustCompile(t, permissive, nil, kernelAt(6, 1)), []probe{
		{"native mount", call(unix.SYS_MOUNT), eperm},
		{"native read", call(unix.SYS_READ), allow},
		{"x32 mount", call(x32Bit | unix.SYS_MOUNT), errnoRet(unix.ENOSYS)},
		{"i386 mount", seccompData{nr: 21, arch: unix.AUDIT_ARCH_I386}, errnoRet(unix.ENOSYS)},
	})
	onlyX32 := mustParse(t, `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":null,"archMap":[
		{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_X86"]},
		{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X32"]}],"syscalls":[]}`)
	expect(t, mustCompile(t, onlyX32, nil, kernelAt(6, 1)), []probe{
		{"x32", call(x32Bit | unix.SYS_READ), eperm},
		{"i386 (listed only for aarch64 hosts)", seccompData{arch: unix.AUDIT_ARCH_I386}, kill},
	})
	errno := mustParse(t, `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X32"]}`)
	expect(t, mustCompile(t, errno, nil, kernelAt(6, 1)), []probe{
		{"x32", call(x32Bit | unix.SYS_READ), errnoRet(unix.ENOSYS)},
		{"native read", call(unix.SYS_READ), errnoRet(unix.ENOSYS)},
		{"i386", seccompData{arch: unix.AUDIT_ARCH_I386}, kill},
	})
}

// TestConditions checks includes and excludes on arches, caps and kernel.
func TestConditions(t *testing.T) {
	p := mustParse(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
		{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm64"]}},
		{"names":["write"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm64","amd64"]}},
		{"names":["close"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["amd64"]}},
		{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN","CAP_NET_ADMIN"]}},
		{"names":["umount2"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_CHOWN","CAP_NET_ADMIN"]}},
		{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5.10"}},
		{"names":["getpid"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"5.10"}}
	]}`)
	cases := []struct {
		caps   []string
		kernel func() (mobyseccomp.KernelVersion, error)
		probes []probe
	}{
		{[]string{"CAP_SYS_ADMIN"}, kernelAt(5, 4), []probe{
			{"read (arm64 only)", call(unix.SYS_READ), eperm},
			{"write (arm64, amd64)", call(unix.SYS_WRITE), allow},
			{"close (not amd64)", call(unix.SYS_CLOSE), eperm},
			{"mount with one of two caps", call(unix.SYS_MOUNT), eperm},
			{"umount2 without excluded caps", call(unix.SYS_UMOUNT2), allow},
			{"ptrace on 5.4", call(unix.SYS_PTRACE), eperm},
			{"getpid on 5.4", call(unix.SYS_GETPID), allow},
		}},
		{[]string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}, kernelAt(5, 10), []probe{
			{"mount with both caps", call(unix.SYS_MOUNT), allow},
			{"umount2 with an excluded cap", call(unix.SYS_UMOUNT2), eperm},
			{"ptrace on 5.10", call(unix.SYS_PTRACE), allow},
			{"getpid on 5.10", call(unix.SYS_GETPID), eperm},
		}},
		{nil, kernelAt(6, 0), []probe{
			{"ptrace on 6.0", call(unix.SYS_PTRACE), allow},
		}},
	}
	for _, c := range cases {
		expect(t, mustCompile(t, p, c.caps, c.kernel), c.probes)
	}
	broken := func() (mobyseccomp.KernelVersion, error) { return mobyseccomp.KernelVersion{}, errors.New("no uname") }
	if _, err := compile(p.spec, nil, broken); err == nil || !strings.Contains(err.Error(), "syscalls[5]") {
		t.Errorf("compile without a kernel version = %v, want an error naming syscalls[5]", err)
	}
}

// TestLarge checks the 4096-instruction limit: every syscall allowed fits,
// and an oversized profile is refused rather than truncated.
func TestLarge(t *testing.T) {
	var names []string
	for name := range syscallNumbers() {
		names = append(names, name)
	}
	all, _ := json.Marshal(names)
	p := mustParse(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":`+string(all)+`,"action":"SCMP_ACT_ALLOW"},
		{"names":["mount"],"action":"SCMP_ACT_ERRNO","args":[{"index":2,"value":1,"op":"SCMP_CMP_NE"}]}]}`)
	prog := mustCompile(t, p, nil, kernelAt(6, 1))
	for name, nr := range syscallNumbers() {
		want := uint32(allow)
		if name == "mount" {
			continue
		}
		if got, _ := run(prog, call(nr)); got != want {
			t.Errorf("%s: %s, want ALLOW", name, retName(got))
		}
	}
	expect(t, prog, []probe{
		{"mount arg2 = 1 (conditional rule first)", call(unix.SYS_MOUNT, 0, 0, 1), allow},
		{"mount arg2 = 0", call(unix.SYS_MOUNT, 0, 0, 0), eperm},
	})

	var rules []string
	for i := range 1000 {
		rules = append(rules, fmt.Sprintf(`{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":%d,"op":"SCMP_CMP_EQ"}]}`, i))
	}
	big := mustParse(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[`+strings.Join(rules, ",")+`]}`)
	if _, err := compile(big.spec, nil, kernelAt(6, 1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("compile of 1000 conditional rules = %v, want ErrTooLarge", err)
	}

	// Many syscalls with argument rules put their blocks further than a
	// conditional jump reaches from the comparisons that lead to them.
	rules = rules[:0]
	for nr := range 80 {
		rules = append(rules, fmt.Sprintf(`{"names":[%q],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":%d,"op":"SCMP_CMP_EQ"}]},
			{"names":[%[1]q],"action":"SCMP_ACT_ERRNO","errnoRet":%[3]d,"args":[{"index":1,"value":%[2]d,"op":"SCMP_CMP_EQ"}]}`, nameOf(t, uint32(nr)), nr, nr+1))
	}
	spread := mustParse(t, `{"defaultAction":"SCMP_ACT_KILL","syscalls":[`+strings.Join(rules, ",")+`]}`)
	prog = mustCompile(t, spread, nil, kernelAt(6, 1))
	if !slices.ContainsFunc(prog, func(f unix.SockFilter) bool { return f.Code == unix.BPF_JMP|unix.BPF_JA }) {
		t.Fatal("program has no trampolines; the test no longer covers far jumps")
	}
	for nr := range uint32(80) {
		expect(t, prog, []probe{
			{fmt.Sprintf("nr %d arg0 match", nr), call(nr, uint64(nr)), allow},
			{fmt.Sprintf("nr %d arg1 match", nr), call(nr, 1000, uint64(nr)), errnoRet(unix.Errno(nr + 1))},
			{fmt.Sprintf("nr %d no match", nr), call(nr, 1000, 1000), unix.SECCOMP_RET_KILL_THREAD},
		})
	}
}

// nameOf finds the name of syscall nr in the table.
func nameOf(t *testing.T, nr uint32) string {
	t.Helper()
	for name, n := range syscallNumbers() {
		if n == nr {
			return name
		}
	}
	t.Fatalf("no syscall %d in the table", nr)
	return ""
}
