// Package seccomp loads Docker-format seccomp profiles, compiles them to
// classic BPF and installs them, without cgo or libseccomp.
//
// A profile is read as Docker reads it (github.com/moby/profiles/seccomp
// types): a default action, the architectures it covers (architectures or
// archMap), and syscall rules with optional argument conditions, each rule
// included or excluded by the jail's capabilities, the architecture and the
// kernel version. Names the architecture lacks are skipped, as Docker skips
// them, so one profile serves every architecture.
//
// Limits:
//   - Filters are built for amd64 only; the name table comes from
//     golang.org/x/sys/unix (see mksysnum.go).
//   - There are no syscall tables for the i386 and x32 ABIs, so their calls
//     cannot be matched by name. When the profile lists the ABI they get the
//     default action — or ENOSYS when that action would let them through
//     unchecked (SCMP_ACT_ALLOW, SCMP_ACT_LOG), since otherwise a deny rule
//     could be dodged by entering the kernel through the other ABI. An ABI the
//     profile does not list kills the process, like libseccomp's bad-arch
//     action.
//   - SCMP_ACT_TRACE returns ENOSYS, what the kernel returns when no tracer is
//     attached; honouring it would let a tracer inside the jail decide.
//   - SCMP_ACT_NOTIFY and listenerPath are refused: nothing serves a listener.
//   - The profile's flags are ignored; Install always synchronises threads.
package seccomp

//go:generate go run mksysnum.go

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var (
	// ErrInvalidProfile is wrapped by every error about a profile's content.
	ErrInvalidProfile = errors.New("seccomp: invalid profile")
	// ErrTooLarge reports a program over the kernel's 4096-instruction limit.
	ErrTooLarge = errors.New("seccomp: filter too large")
	// ErrThreadSync reports a thread that could not take the filter, because
	// it already runs under a filter that is not an ancestor of this one.
	ErrThreadSync = errors.New("seccomp: cannot synchronise filter to all threads")
)

// Profile is a seccomp profile: Docker's default or one loaded from a file.
// It holds no compiled program; Compile builds one for a set of capabilities.
type Profile struct {
	name string // where the profile came from, for errors
	spec *mobyseccomp.Seccomp
}

// Default returns Docker's default profile: an allowlist of about 350
// syscalls, widened for the capabilities a jail keeps (CAP_SYS_ADMIN lets
// mount, unshare and setns through, and so on).
func Default() *Profile {
	return &Profile{name: "default", spec: mobyseccomp.DefaultProfile()}
}

// Load reads a profile in Docker's JSON format. Errors name the file and,
// where they can, the line or the field that is wrong.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load seccomp profile: %w", err)
	}
	return parse(path, data)
}

// Parse reads a profile in Docker's JSON format from data; name (the file
// it came from) is used in errors.
func Parse(name string, data []byte) (*Profile, error) { return parse(name, data) }

// parse decodes and validates a profile; name is used in errors.
func parse(name string, data []byte) (*Profile, error) {
	var spec mobyseccomp.Seccomp
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("load seccomp profile %s: %w", name, withLine(data, err))
	}
	if err := validate(&spec); err != nil {
		return nil, fmt.Errorf("load seccomp profile %s: %w", name, err)
	}
	return &Profile{name: name, spec: &spec}, nil
}

// withLine prefixes a JSON decoding error with the line it points at.
func withLine(data []byte, err error) error {
	var offset int64
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		offset = syntax.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	default:
		return err
	}
	offset = min(max(offset, 0), int64(len(data)))
	return fmt.Errorf("line %d: %w", 1+bytes.Count(data[:offset], []byte("\n")), err)
}

// maxErrno is the largest errno the kernel passes back (MAX_ERRNO); larger
// values are silently clamped, which would hide a typo in the profile.
const maxErrno = 4095

// knownArches are the architecture names libseccomp accepts.
var knownArches = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
	specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
	specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
	specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
}

// validate checks every rule, whether or not this host and jail would
// select it, so a profile that loads here loads everywhere.
func validate(p *mobyseccomp.Seccomp) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidProfile, fmt.Sprintf(format, args...))
	}
	if p.DefaultAction == "" {
		return invalid("defaultAction: missing")
	}
	if err := checkAction(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return invalid("defaultAction: %v", err)
	}
	if p.ListenerPath != "" {
		return invalid("listenerPath: seccomp notification is not supported")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return invalid("both architectures and archMap are given; use one")
	}
	for i, a := range p.Architectures {
		if !slices.Contains(knownArches, a) {
			return invalid("architectures[%d]: unknown architecture %q", i, a)
		}
	}
	for i, m := range p.ArchMap {
		if !slices.Contains(knownArches, m.Arch) {
			return invalid("archMap[%d].architecture: unknown architecture %q", i, m.Arch)
		}
		for j, a := range m.SubArches {
			if !slices.Contains(knownArches, a) {
				return invalid("archMap[%d].subArchitectures[%d]: unknown architecture %q", i, j, a)
			}
		}
	}
	if len(p.LinuxSeccomp.Syscalls) > 0 {
		// Only code can fill the shadowed runtime-spec field; JSON fills Syscalls.
		return invalid("runtime-spec syscalls given; use the profile's syscalls")
	}
	for i, call := range p.Syscalls {
		if call == nil {
			return invalid("syscalls[%d]: null", i)
		}
		if call.Name != "" && len(call.Names) > 0 {
			return invalid("syscalls[%d]: both name and names are given; use one", i)
		}
		if call.Name == "" && len(call.Names) == 0 {
			return invalid("syscalls[%d]: no syscall names", i)
		}
		if slices.Contains(call.Names, "") {
			return invalid("syscalls[%d].names: empty name", i)
		}
		if err := checkAction(call.Action, call.ErrnoRet); err != nil {
			return invalid("syscalls[%d].action: %v", i, err)
		}
		for j, arg := range call.Args {
			if arg.Index >= argCount {
				return invalid("syscalls[%d].args[%d].index: %d is not below %d", i, j, arg.Index, argCount)
			}
			if _, ok := operators[arg.Op]; !ok {
				return invalid("syscalls[%d].args[%d].op: unknown operator %q", i, j, arg.Op)
			}
		}
	}
	return nil
}

// checkAction rejects actions this package cannot compile and errno values
// that would not reach the caller as written.
func checkAction(act specs.LinuxSeccompAction, errnoRet *uint) error {
	switch act {
	case specs.ActErrno:
		if errnoRet != nil && *errnoRet > maxErrno {
			return fmt.Errorf("errnoRet %d is above %d", *errnoRet, maxErrno)
		}
		return nil
	case specs.ActTrace:
		return nil // errnoRet would be the tracer's message; it is ignored
	case specs.ActNotify:
		return fmt.Errorf("%s is not supported: nothing listens for notifications", act)
	case specs.ActAllow, specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap, specs.ActLog:
		if errnoRet != nil {
			return fmt.Errorf("errnoRet is given for %s, which returns no errno", act)
		}
		return nil
	}
	return fmt.Errorf("unknown action %q", act)
}
