//go:build jailmgr_init

package session

// maybeRunHostRole: jailmgr-init has no host roles; they run from jailmgr.
func maybeRunHostRole() {}
