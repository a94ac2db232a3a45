//go:build !jailmgr_init

package session

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"jailmgr/session/cgroup"
)

// Check is one thing the host must offer for jails to work fully.
type Check struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
	Affects string `json:"affects,omitempty"` // what is missing without it
}

// Doctor reports what this kernel and host support for jailmgr.
func Doctor() []Check {
	var out []Check
	add := func(name string, ok bool, detail, affects string) {
		c := Check{Name: name, OK: ok, Detail: detail}
		if !ok {
			c.Affects = affects
		}
		out = append(out, c)
	}
	add("root", os.Geteuid() == 0, "euid "+itoa(os.Geteuid()), "bootstrap and sessions need root")
	for _, ns := range []struct{ name, affects string }{
		{"mnt", "sessions"}, {"pid", "sessions"}, {"uts", "sessions (hostname)"}, {"ipc", "sessions"},
		{"net", "network = none"}, {"cgroup", "a private cgroup view for commands"},
	} {
		_, err := os.Stat("/proc/self/ns/" + ns.name)
		add("namespace "+ns.name, err == nil, errText(err, "available"), ns.affects)
	}
	userns := readTrim("/proc/sys/user/max_user_namespaces")
	add("namespace user", userns != "" && userns != "0", "max_user_namespaces "+dashIfEmpty(userns), "nothing yet (jailmgr runs as root)")
	fs := readTrim("/proc/filesystems")
	add("overlayfs", strings.Contains(fs, "\toverlay"), "in /proc/filesystems", "ephemeral jails and persistent image jails")
	var st unix.Stat_t
	add("openat2", openat2Works(), "RESOLVE_BENEATH lookups (Linux 5.6+)", "bootstrap's safe unpacking and session mounts")
	seccompMode, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	add("seccomp", err == nil, "filter mode available (current mode "+itoa(seccompMode)+")", "seccomp = default or a profile")
	add("pivot_root", unix.Stat("/", &st) == nil, "always on Linux", "")
	layout, err := cgroup.Layout()
	add("cgroups", err == nil, strings.TrimSpace(layout+" "+errText(err, "")), "memory, cpus and pids limits, and ending every process of a session")
	for _, c := range []string{"memory", "cpu", "pids"} {
		ok := err == nil && strings.Contains(layout, c+":")
		add("cgroup controller "+c, ok, "as in the layout above", c+" limits")
	}
	init, ok, detail := initCheck()
	add("session init", ok, init+": "+detail, "sessions")
	return out
}

// initCheck names the program session inits run, and whether it can.
func initCheck() (string, bool, string) {
	p, err := initProgram()
	if err != nil {
		return "?", false, err.Error()
	}
	if p == selfExe {
		self, _ := os.Executable()
		p = self
		if buildStamp == "" {
			return p, true, "jailmgr itself (a build without make's stamp uses no jailmgr-init)"
		}
		return p, true, "jailmgr itself (no jailmgr-init beside it that only root or jailmgr's owner can write; 'make install' puts one in ../lib/jailmgr)"
	}
	out, err := exec.Command(p, buildArg).Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != buildStamp {
		return p, false, fmt.Sprintf("of another build (%q, not %q): install jailmgr and jailmgr-init together ('make install')", got, buildStamp)
	}
	return p, true, "the lean init of this build"
}

func openat2Works() bool {
	root, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func errText(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }
