package main

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"jailmgr/session"
)

// The privilege model. Like schroot, jailmgr can be installed setuid root
// ('make install SETUID=1') so that users who are not root open sessions in
// the jails the configuration grants them. Run that way by such a user, it:
//
//   - notes the real user and group, keeps the caller's environment aside
//     for the commands it runs in jails (environment = preserve), and
//     empties its own but for PATH, TERM and SUDO_UID/SUDO_GID, which name
//     the real caller and which session.Caller trusts only because the
//     real uid is now 0 and it alone wrote them (sudo's allowlist, not a
//     denylist: nothing the caller exports steers the root process);
//   - drops the caller's supplementary groups, and becomes root through and
//     through (real, effective and saved ids), so that the helpers it
//     re-executes are plain root processes and the caller can neither
//     trace it nor write its memory;
//   - sets umask 022;
//   - lets cobra (or the schroot parser) parse the whole command line, and
//     then runs it only if the command it resolved to is one a user of
//     jails needs and every flag set anywhere on the line is one that
//     command lists as safe (setuidAllowed). Everything else — a command or
//     flag nobody listed, --store, --config, a bootstrap, an image command —
//     is root's. Deny by default: a new command or flag is root-only until
//     it is added there.
//
// The commands that are open check schroot's access rules and session
// ownership for the caller.

// privileged is set once the process has taken over a setuid-root start.
var privileged struct {
	on       bool
	uid, gid int
	// env is the caller's environment as it came.
	env []string
}

// keptEnv are the variables a setuid jailmgr keeps of its caller's for
// itself (the jail's commands get the caller's whole environment where the
// jail preserves it).
var keptEnv = []string{"TERM"}

// setuidPath is PATH in a setuid jailmgr: the caller's is not trusted.
const setuidPath = "/usr/sbin:/usr/bin:/sbin:/bin"

// takeSetuid turns a setuid-root start by another user into the model above.
// It returns an error only when it cannot become root as it should.
func takeSetuid() error {
	ruid, euid, _ := unix.Getresuid()
	if euid != 0 || ruid == 0 {
		return nil
	}
	rgid, _, _ := unix.Getresgid()
	privileged.env = os.Environ()
	kept := map[string]string{}
	for _, k := range keptEnv {
		if v, ok := os.LookupEnv(k); ok {
			kept[k] = v
		}
	}
	os.Clearenv()
	for k, v := range kept {
		os.Setenv(k, v)
	}
	os.Setenv("PATH", setuidPath)
	// syscall's (not x/sys/unix's) set the ids of every thread of the
	// process, as the Go runtime already has several.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setuid start: drop supplementary groups: %w", err)
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("setuid start: set group ids: %w", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("setuid start: set user ids: %w", err)
	}
	unix.Umask(0o022)
	os.Setenv("SUDO_UID", strconv.Itoa(ruid))
	os.Setenv("SUDO_GID", strconv.Itoa(rgid))
	privileged.on, privileged.uid, privileged.gid = true, ruid, rgid
	return nil
}

// callerEnv is the environment the caller gave jailmgr: what a jail that
// preserves the environment passes on to its commands.
func callerEnv() []string {
	if privileged.on {
		return privileged.env
	}
	return os.Environ()
}

// callerGetenv is os.Getenv over callerEnv.
func callerGetenv(key string) string {
	for _, kv := range callerEnv() {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// callerIsRoot tells whether the caller is root (directly or through
// sudo), who may see and touch every session; a setuid start by another
// user is not.
func callerIsRoot() bool {
	return !privileged.on && os.Getuid() == 0
}

// setuidAllowed lists, by command path, the commands a user may run through
// a setuid jailmgr and the flags (by long name) each may be given. The
// global --quiet and --help are allowed everywhere; nothing else is unless
// it is listed here.
var setuidAllowed = map[string][]string{
	"jailmgr run":             {"user", "directory", "preserve-fds"},
	"jailmgr shell":           {"user", "preserve-fds"},
	"jailmgr session begin":   {"name", "user"},
	"jailmgr session run":     {"user", "directory", "preserve-fds"},
	"jailmgr session end":     {},
	"jailmgr session list":    {"json"},
	"jailmgr session info":    {"json"},
	"jailmgr session recover": {},
	"jailmgr jail list":       {"json"},
	"jailmgr jail show":       {"json"},
	"jailmgr doctor":          {"json"},
	// schroot's own command line, parsed by its own parser (no cobra
	// flags); runSchroot applies the same rule to what that parser found.
	"jailmgr schroot": {},
	"jailmgr help":    {},
}

// setuidEverywhere are the flags any allowed command may be given.
var setuidEverywhere = []string{"quiet", "help"}

// checkSetuid decides, for a setuid start, whether the command cobra
// resolved may run with the flags that were set. It runs after cobra has
// parsed the whole line (every spelling, every position), before the
// command's own code.
func checkSetuid(cmd *cobra.Command) error {
	if !privileged.on {
		return nil
	}
	path := cmd.CommandPath()
	flags, ok := setuidAllowed[path]
	if !ok {
		return deniedCommand(strings.TrimPrefix(path, "jailmgr "))
	}
	var bad []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if !slices.Contains(flags, f.Name) && !slices.Contains(setuidEverywhere, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: %s %s for root only: through a setuid jailmgr, the store, the configuration and everything they name are root's own (run it as root or with sudo)",
			session.ErrDenied, strings.Join(bad, ", "), isOrAre(len(bad)))
	}
	return nil
}

// deniedCommand is the refusal of a command a user may not run.
func deniedCommand(what string) error {
	name := strconv.Itoa(privileged.uid)
	if u, err := session.LookupUser(privileged.uid, privileged.gid); err == nil {
		name = u.Name
	}
	var open []string
	for p := range setuidAllowed {
		if p != "jailmgr help" {
			open = append(open, strings.TrimPrefix(p, "jailmgr "))
		}
	}
	sort.Strings(open)
	return fmt.Errorf("%s: %w: '%s' needs root (run it as root or with sudo); through a setuid jailmgr users may run: %s",
		name, session.ErrDenied, what, strings.Join(open, ", "))
}

func isOrAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
