//go:build !jailmgr_init

// Package session turns a root directory into an isolated place to run
// commands: mounts, namespaces and the helper process that sets them up.
//
// Chroot is the building block the bootstrap uses to run maintainer scripts
// in a staged root: the command runs in new mount, pid, uts and ipc
// namespaces, with /proc and /dev mounted inside the root. Every mount lives
// only in that mount namespace, so it vanishes with the last process in it —
// even when jailmgr is killed — and can never be left behind on the host.
package session

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"jailmgr/internal/role"
	"jailmgr/session/seccomp"
)

// initArg is the hidden first argument that makes jailmgr run as the
// namespace helper instead of its command line.
const initArg = "__jailmgr-chroot-init"

// Chroot returns a command that runs argv inside root. The caller sets Env,
// Stdin, Stdout and Stderr as for any exec.Cmd.
func Chroot(root string, argv ...string) (*exec.Cmd, error) {
	cmd := exec.Command(selfExe, append([]string{initArg, root}, argv...)...)
	cmd.Args[0] = "jailmgr"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd, nil
}

// Overlay names the layers of an overlay that ChrootOverlay mounts.
type Overlay struct {
	Lower, Upper, Work string
}

// overlayArg tells the helper to mount an overlay at the root first.
const overlayArg = "--overlay"

// ChrootOverlay is Chroot over an overlay of ov.Lower at root, with writes
// going to ov.Upper. The overlay is mounted in the helper's own mount
// namespace, so it too vanishes with the helper, however that ends; what the
// command wrote stays in ov.Upper.
func ChrootOverlay(ov Overlay, root string, argv ...string) (*exec.Cmd, error) {
	for _, p := range []string{ov.Lower, ov.Upper, ov.Work} {
		if strings.ContainsAny(p, ",:\\") {
			return nil, fmt.Errorf("overlay path %q holds ',', ':' or '\\'", p)
		}
	}
	cmd, err := Chroot(root, argv...)
	if err != nil {
		return nil, err
	}
	cmd.Args = append([]string{cmd.Args[0], initArg, overlayArg, ov.Lower, ov.Upper, ov.Work}, cmd.Args[2:]...)
	return cmd, nil
}

// noSyncArg tells the helper to make the command's sync calls no-ops.
const noSyncArg = "--no-sync"

// SuppressSync makes cmd, from Chroot or ChrootOverlay, run with fsync,
// fdatasync, sync, syncfs, sync_file_range and msync answered with success
// and doing nothing, as systemd-nspawn's --suppress-sync does. dpkg syncs
// its database at every step of every package, which costs a bootstrap
// about a second; the tree being built is not an image until it is
// committed, and a crash before that throws it away anyway.
func SuppressSync(cmd *exec.Cmd) {
	cmd.Args = append([]string{cmd.Args[0], initArg, noSyncArg}, cmd.Args[2:]...)
}

// noSyncProfile is the filter SuppressSync loads: errno 0 is success.
const noSyncProfile = `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "msync"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]}`

// suppressSync loads noSyncProfile into this process, for what it runs.
func suppressSync() error {
	p, err := seccomp.Parse("sync suppression", []byte(noSyncProfile))
	if err != nil {
		return err
	}
	filter, err := seccomp.Compile(p, nil)
	if err != nil {
		return err
	}
	return seccomp.InstallPrivileged(filter)
}

// MaybeRunInit runs an internal role, such as the namespace helper Chroot
// starts, and exits when this process was started as one; otherwise it
// returns at once. main (and a test binary's TestMain) calls it first.
func MaybeRunInit() { role.Run() }

// runChrootInit is the namespace helper's role: [--no-sync] [--overlay
// LOWER UPPER WORK] ROOT COMMAND [ARG...].
func runChrootInit(args []string) int {
	noSync := len(args) >= 3 && args[0] == noSyncArg
	if noSync {
		args = args[1:]
	}
	var ov *Overlay
	if len(args) >= 6 && args[0] == overlayArg {
		ov = &Overlay{Lower: args[1], Upper: args[2], Work: args[3]}
		args = args[4:]
	}
	if len(args) < 2 {
		return usage(initArg, "[--no-sync] [--overlay LOWER UPPER WORK] ROOT COMMAND [ARG...]")
	}
	code, err := chrootInit(ov, noSync, args[0], args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "jailmgr: %v\n", err)
	}
	return code
}

// chrootInit runs as pid 1 of the new pid namespace: it mounts, chroots and
// runs the command, and its exit takes every leftover process with it.
func chrootInit(ov *Overlay, noSync bool, root string, argv []string) (int, error) {
	// Mount events must not propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return 1, &MountError{Op: "make private", Target: "/", Err: err}
	}
	if ov != nil {
		// No redirects, metacopy or index: the upper dir then holds whole
		// files, plain whiteouts and opaque markers, which a reader of the
		// upper dir alone can merge with the lower one.
		opts := "lowerdir=" + ov.Lower + ",upperdir=" + ov.Upper + ",workdir=" + ov.Work + ",redirect_dir=off,metacopy=off,index=off"
		if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
			return 1, &MountError{Op: "mount", Source: "overlay " + opts, Target: root, FSType: "overlay", Err: err}
		}
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 1, fmt.Errorf("open root %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	if err := mountIn(rootfd, "proc", "proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
		return 1, err
	}
	if err := mountIn(rootfd, "dev", "/dev", "", unix.MS_BIND|unix.MS_REC); err != nil {
		return 1, err
	}
	if noSync {
		if err := suppressSync(); err != nil {
			return 1, fmt.Errorf("suppress sync: %w", err)
		}
	}
	// Only the command is chrooted; this pid 1 keeps the host's root, as
	// the init outside a debootstrap chroot does. Maintainer scripts ask
	// ischroot whether they run in a chroot, which compares / with
	// /proc/1/root: focal's libc6 postinst, told "no", would re-execute
	// init and sleep a second. (Nothing here is a boundary: the scripts
	// run as root, as they do under debootstrap.)
	path, err := lookPathIn(rootfd, argv[0], os.Getenv("PATH"))
	if err != nil {
		return 127, fmt.Errorf("run %s in %s: %w", argv[0], root, err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if exit.ExitCode() >= 0 {
			return exit.ExitCode(), nil
		}
		return 128 + int(exit.Sys().(syscall.WaitStatus).Signal()), nil
	}
	if err != nil {
		return 127, fmt.Errorf("run %s in %s: %w", argv[0], root, err)
	}
	return 0, nil
}
