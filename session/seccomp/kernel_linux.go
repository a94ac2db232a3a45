package seccomp

import (
	"fmt"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

// hostKernel is the running kernel's version, for minKernel conditions.
var hostKernel = sync.OnceValues(func() (mobyseccomp.KernelVersion, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return mobyseccomp.KernelVersion{}, fmt.Errorf("uname: %w", err)
	}
	return parseRelease(unix.ByteSliceToString(uts.Release[:]))
})

// parseRelease reads the version and major revision from a kernel release
// such as "6.1.0-18-amd64"; minKernel conditions compare nothing finer.
func parseRelease(release string) (mobyseccomp.KernelVersion, error) {
	var v mobyseccomp.KernelVersion
	if _, err := fmt.Sscanf(release, "%d.%d", &v.Kernel, &v.Major); err != nil {
		return v, fmt.Errorf("parse kernel release %q: %w", release, err)
	}
	return v, nil
}
