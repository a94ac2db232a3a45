//go:build !jailmgr_init

package session

import "jailmgr/internal/role"

// The roles that work on the host's side, which the lean jailmgr-init does
// not have: the bootstrap's chroot helper and a session's monitor.
func init() {
	role.Register(initArg, runChrootInit)
	role.Register(monitorArg, func(args []string) int {
		if len(args) != 2 {
			return usage(monitorArg, "STATE-DIR INSTANCE")
		}
		return runMonitor(args[0], args[1])
	})
}
