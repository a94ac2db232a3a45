package bootstrap

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"

	"jailmgr/debian/dependency"
	"jailmgr/session"
	"jailmgr/store/tree"
)

// corePackages are configured first, in this order, as debootstrap does:
// users and groups, the base layout and dpkg must be in place before the
// other maintainer scripts run.
var corePackages = []string{"base-passwd", "base-files", "dpkg", "libc6", "perl-base"}

const (
	policyRcD   = "usr/sbin/policy-rc.d"
	policyRcDSh = "#!/bin/sh\n# Written by jailmgr while it configures a new root: no daemon starts.\nexit 101\n"
	fakeSSD     = "#!/bin/sh\necho\necho \"Warning: Fake start-stop-daemon called, doing nothing\"\n"
)

// configure runs the maintainer scripts inside the staged root with its own
// dpkg: every preinst (in dependency order), then dpkg --configure, with
// daemons blocked by policy-rc.d and a fake start-stop-daemon.
func configure(ctx context.Context, o *Options, root *tree.Root, pkgs []*unpacked, logf *os.File) error {
	undo, err := blockDaemons(root)
	if err != nil {
		return err
	}
	script := configureScript(root, pkgs)
	cmd, err := session.Chroot(root.Path, "/bin/sh", "-c", script)
	if err != nil {
		return err
	}
	// dpkg syncs its database at every step of every package; the staged
	// root is not an image until it is committed (and the files jailmgr
	// unpacked were not synced either).
	session.SuppressSync(cmd)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C", "LANG=C",
		"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
		"DPKG_ADMINDIR=/var/lib/dpkg", "DPKG_ROOT=",
	}
	if dv := findVersion(pkgs, "dpkg"); dv != "" {
		cmd.Env = append(cmd.Env, "DPKG_RUNNING_VERSION="+dv)
	}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	// In a process group of its own, the helper and the scripts do not
	// hear a Ctrl-C at the terminal: jailmgr does, and ends the run by
	// killing the helper, pid 1 of the scripts' pid namespace, which
	// takes every process in it along. (dpkg interrupted by the terminal
	// would fail with complaints of its own, which could come back
	// before the interrupt is known here.)
	cmd.SysProcAttr.Setpgid = true
	runErr := cmd.Start()
	if runErr == nil {
		stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
		runErr = cmd.Wait()
		stop()
	}
	undoErr := undo()
	if ctx.Err() != nil {
		return fmt.Errorf("configure packages: %w", context.Cause(ctx))
	}
	if runErr != nil {
		return configureError(logf.Name(), runErr)
	}
	return undoErr
}

// configureError is the error of a configure run that ended with err: the
// packages its log names as failed, with their own output, or else the
// end of the log.
func configureError(logPath string, err error) error {
	data, rerr := os.ReadFile(logPath)
	if rerr != nil {
		return fmt.Errorf("configure packages: %w (and its log cannot be read: %v)", err, rerr)
	}
	e := &ConfigureError{Err: err, Failures: failuresFromLog(string(data))}
	if len(e.Failures) == 0 {
		e.Tail = lastLines(string(data), 25)
	}
	return e
}

// configureScript is the shell script the root's /bin/sh runs.
func configureScript(root *tree.Root, pkgs []*unpacked) string {
	var b strings.Builder
	b.WriteString("set -e\nexec </dev/null\nldconfig\n")
	madeAwk := false
	if !root.Exists("usr/bin/awk") && root.Exists("usr/bin/mawk") {
		b.WriteString("ln -s mawk /usr/bin/awk\n")
		madeAwk = true
	}
	specs := map[string]string{}
	for _, p := range pkgs {
		spec := p.c.Name
		if p.control.Paragraph.Get("Multi-Arch") == "same" {
			spec += ":" + p.c.Arch
		}
		specs[p.c.Name] = spec
	}
	for _, p := range installOrder(pkgs) {
		if _, ok := p.control.File("preinst"); !ok {
			continue
		}
		fmt.Fprintf(&b, "echo 'jailmgr: preinst %s'\n", p.c.Name)
		fmt.Fprintf(&b, "DPKG_MAINTSCRIPT_PACKAGE=%s DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 DPKG_MAINTSCRIPT_ARCH=%s DPKG_MAINTSCRIPT_NAME=preinst /var/lib/dpkg/info/%s.preinst install\n",
			p.c.Name, p.c.Arch, specs[p.c.Name])
	}
	var core []string
	for _, n := range corePackages {
		if _, ok := specs[n]; ok {
			core = append(core, n)
		}
	}
	if len(core) > 0 {
		fmt.Fprintf(&b, "dpkg --force-depends --force-confold --configure %s\n", strings.Join(core, " "))
	}
	if madeAwk {
		b.WriteString("rm -f /usr/bin/awk\n")
	}
	if _, ok := specs["mawk"]; ok {
		b.WriteString("dpkg --force-depends --force-confold --configure mawk\n")
	}
	// Packages never declare a dependency on an Essential one (Policy
	// 3.5), so every Essential package and what it depends on is
	// configured before any other: a postinst may use what an Essential
	// package's postinst makes (usrmerge's needs debianutils' /etc/shells)
	// without saying so. debootstrap gets this only by chance, from the
	// order dpkg's deferrals happen to give; apt and mmdebstrap do it so.
	if ess := essentialClosure(pkgs); len(ess) > 0 {
		names := make([]string, 0, len(ess))
		for _, p := range ess {
			names = append(names, specs[p.c.Name])
		}
		fmt.Fprintf(&b, "dpkg --force-depends --force-confold --configure %s\n", strings.Join(names, " "))
	}
	b.WriteString("dpkg --force-confold --configure --pending\n")
	// dpkg did not unpack these packages, so their ldconfig trigger never
	// fired: build the linker cache once at the end.
	b.WriteString("ldconfig\n")
	return b.String()
}

// installOrder sorts packages so that each comes after what it
// pre-depends on and depends on, as far as cycles allow.
func installOrder(pkgs []*unpacked) []*unpacked {
	by := map[string]*unpacked{}
	names := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		by[p.c.Name] = p
		names = append(names, p.c.Name)
	}
	sort.Strings(names)
	// Core packages first, in their order.
	ordered := append(append([]string{}, corePackages...), names...)
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var out []*unpacked
	var visit func(n string)
	visit = func(n string) {
		p, ok := by[n]
		if !ok || state[n] != 0 {
			return
		}
		state[n] = 1
		if p.c.relations() == nil {
			for _, rels := range []dependency.Relations{p.c.rel.predeps, p.c.rel.deps} {
				for _, alts := range rels {
					for _, r := range alts {
						if _, ok := by[r.Name]; ok {
							visit(r.Name)
							break
						}
					}
				}
			}
		}
		state[n] = 2
		out = append(out, p)
	}
	for _, n := range ordered {
		visit(n)
	}
	return out
}

// essentialClosure is the Essential packages and everything they
// pre-depend and depend on (the first alternative that is present), in
// installOrder's order, leaving out the core packages, which are
// configured before them.
func essentialClosure(pkgs []*unpacked) []*unpacked {
	by := map[string]*unpacked{}
	for _, p := range pkgs {
		by[p.c.Name] = p
	}
	in := map[string]bool{}
	var walk func(p *unpacked)
	walk = func(p *unpacked) {
		if in[p.c.Name] {
			return
		}
		in[p.c.Name] = true
		if p.c.relations() != nil {
			return
		}
		for _, rels := range []dependency.Relations{p.c.rel.predeps, p.c.rel.deps} {
			for _, alts := range rels {
				for _, r := range alts {
					if d, ok := by[r.Name]; ok {
						walk(d)
						break
					}
				}
			}
		}
	}
	for _, p := range pkgs {
		if p.c.Essential {
			walk(p)
		}
	}
	var out []*unpacked
	for _, p := range installOrder(pkgs) {
		if in[p.c.Name] && !slices.Contains(corePackages, p.c.Name) {
			out = append(out, p)
		}
	}
	return out
}

// blockDaemons installs policy-rc.d and a fake start-stop-daemon; the
// returned func puts the real one back and removes policy-rc.d.
func blockDaemons(root *tree.Root) (func() error, error) {
	madePolicy := false
	if !root.Exists(policyRcD) {
		if err := root.WriteFile(policyRcD, []byte(policyRcDSh), 0o755); err != nil {
			return nil, fmt.Errorf("block daemons: %w", err)
		}
		madePolicy = true
	}
	ssd := ""
	for _, p := range []string{"usr/sbin/start-stop-daemon", "sbin/start-stop-daemon"} {
		if st, err := root.Lstat(p); err == nil && st.Mode&0o170000 == 0o100000 {
			ssd = p
			break
		}
	}
	if ssd != "" {
		if err := root.Rename(ssd, ssd+".REAL"); err != nil {
			return nil, fmt.Errorf("block daemons: %w", err)
		}
		if err := root.WriteFile(ssd, []byte(fakeSSD), 0o755); err != nil {
			return nil, fmt.Errorf("block daemons: %w", err)
		}
	}
	return func() error {
		if ssd != "" {
			if err := root.Rename(ssd+".REAL", ssd); err != nil {
				return fmt.Errorf("restore start-stop-daemon: %w", err)
			}
		}
		if madePolicy {
			return root.Remove(policyRcD)
		}
		return nil
	}, nil
}

// makeDevices creates the device nodes debootstrap puts in a new root's
// /dev, so that the image works with a plain chroot too.
func makeDevices(root *tree.Root) error {
	if os.Getuid() != 0 {
		return nil
	}
	type node struct {
		name         string
		major, minor int64
		mode         int64
	}
	for _, n := range []node{{"null", 1, 3, 0o666}, {"zero", 1, 5, 0o666}, {"full", 1, 7, 0o666}, {"random", 1, 8, 0o666}, {"urandom", 1, 9, 0o666}, {"tty", 5, 0, 0o666}, {"console", 5, 1, 0o600}} {
		h := &tar.Header{Typeflag: tar.TypeChar, Name: "dev/" + n.name, Mode: n.mode, Devmajor: n.major, Devminor: n.minor}
		if err := root.WriteEntry(h, nil, tree.Options{}); err != nil {
			return fmt.Errorf("create /dev: %w", err)
		}
	}
	for _, d := range []string{"dev/pts", "dev/shm"} {
		if err := root.MkdirAll(d); err != nil {
			return fmt.Errorf("create /dev: %w", err)
		}
	}
	links := map[string]string{"dev/ptmx": "pts/ptmx", "dev/fd": "/proc/self/fd", "dev/stdin": "/proc/self/fd/0", "dev/stdout": "/proc/self/fd/1", "dev/stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := root.Symlink(target, name); err != nil {
			return fmt.Errorf("create /dev: %w", err)
		}
	}
	return nil
}

func findVersion(pkgs []*unpacked, name string) string {
	for _, p := range pkgs {
		if p.c.Name == name {
			return p.c.Version
		}
	}
	return ""
}

// runHooks runs each customize hook on the host with the root as $1, as
// mmdebstrap's --customize-hook does. A hook that fails is named, with
// what it printed.
func runHooks(ctx context.Context, hooks []string, rootDir string, logf *os.File) error {
	for i, h := range hooks {
		fmt.Fprintf(logf, "jailmgr: customize hook %d: %s\n", i+1, h)
		start, err := logf.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("run customize hook %d: %w", i+1, err)
		}
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h, "sh", rootDir)
		cmd.Stdout, cmd.Stderr = logf, logf
		// As for the maintainer scripts (see configure): a Ctrl-C is
		// jailmgr's to handle, and it ends the whole hook, not only its
		// shell.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		err = cmd.Run()
		if ctx.Err() != nil {
			return fmt.Errorf("run customize hook %d: %w", i+1, context.Cause(ctx))
		}
		if err != nil {
			var b strings.Builder
			fmt.Fprintf(&b, "customize hook %d (%s) failed (%v)", i+1, h, err)
			out := hookOutput(logf.Name(), start)
			if len(out) == 0 {
				b.WriteString(", printing nothing")
			} else {
				b.WriteString(":")
				writeQuoted(&b, elide(out, maxFailureLines))
			}
			return errors.New(b.String())
		}
	}
	return nil
}

// hookOutput is what a hook wrote to the log from offset start on.
func hookOutput(logPath string, start int64) []string {
	data, err := os.ReadFile(logPath)
	if err != nil || start > int64(len(data)) {
		return nil
	}
	out := strings.TrimRight(string(data[start:]), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// lastLines is the last n lines of a log.
func lastLines(log string, n int) []string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// tail returns the last n lines of a log file, indented, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var b strings.Builder
	writeQuoted(&b, lastLines(string(data), n))
	return strings.TrimPrefix(b.String(), "\n")
}
