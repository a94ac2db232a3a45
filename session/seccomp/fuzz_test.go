package seccomp

import (
	"encoding/json"
	"errors"
	"testing"

	"jailmgr/conf"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

// FuzzLoad feeds arbitrary bytes to the profile parser. Nothing may panic;
// a profile that loads must compile, for any capabilities, to a program the
// kernel accepts (length, jump ranges, loads, final return) or fail with
// ErrTooLarge; and the program must return on every path it is run down.
func FuzzLoad(f *testing.F) {
	def, err := json.Marshal(mobyseccomp.DefaultProfile())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def, uint8(1))
	for _, seed := range []string{
		``, `null`, `{}`, `[]`, `{"defaultAction":"SCMP_ACT_ALLOW"}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X32","SCMP_ARCH_X86"]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
			"args":[{"index":0,"value":18446744073709551615,"valueTwo":4294967296,"op":"SCMP_CMP_MASKED_EQ"},
			{"index":0,"value":1,"op":"SCMP_CMP_LE"},{"index":5,"value":4294967296,"op":"SCMP_CMP_GT"}]}]}`,
		`{"defaultAction":"SCMP_ACT_KILL","syscalls":[{"name":"clone","action":"SCMP_ACT_TRAP",
			"includes":{"caps":["CAP_SYS_ADMIN"],"minKernel":"4.8"},"excludes":{"arches":["x32"]}}]}`,
	} {
		f.Add([]byte(seed), uint8(len(seed)))
	}
	capSets := [][]string{nil, conf.DefaultCapabilities, append([]string{"CAP_SYS_ADMIN", "CAP_BPF"}, conf.DefaultCapabilities...)}
	inputs := []seccompData{
		call(unix.SYS_READ), call(unix.SYS_CLONE, 1<<40|unix.CLONE_NEWNS), call(unix.SYS_WRITE, 0, 1, 2, 3, 4, 5),
		call(x32Bit | unix.SYS_READ), {nr: -1, arch: unix.AUDIT_ARCH_X86_64}, {nr: 3, arch: unix.AUDIT_ARCH_I386},
		{nr: 3, arch: auditArchAArch64}, call(unix.SYS_SOCKET, unix.AF_VSOCK), call(unix.SYS_MOUNT, ^uint64(0), 1<<63),
	}
	// The capability set is part of the input rather than a loop, so one
	// execution compiles once and the fuzzer stays fast on large profiles.
	f.Fuzz(func(t *testing.T, data []byte, capSet uint8) {
		p, err := parse("fuzz.json", data)
		if err != nil {
			return
		}
		caps := capSets[int(capSet)%len(capSets)]
		prog, err := compile(p.spec, caps, kernelAt(5, 10))
		if errors.Is(err, ErrTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("profile loaded but does not compile: %v", err)
		}
		if err := checkProgram(prog); err != nil {
			t.Fatalf("kernel would refuse the program: %v", err)
		}
		for _, in := range inputs {
			if _, err := run(prog, in); err != nil {
				t.Fatalf("run on %+v: %v", in, err)
			}
		}
	})
}
