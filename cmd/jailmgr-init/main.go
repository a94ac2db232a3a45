//go:build jailmgr_init

// Command jailmgr-init is the session init of jailmgr, built alone: pid 1
// of a session's namespaces, which sets the jail up and starts commands in
// it. jailmgr starts it from where it is installed (next to jailmgr, or in
// ../lib/jailmgr), and runs itself in that role when it is not there; this
// binary holds the session code only, so that it starts in about half the
// time jailmgr takes (see BENCHMARKS.md).
//
// Build it with -tags jailmgr_init (make build does).
package main

import (
	"fmt"
	"os"

	"jailmgr/session"
)

func main() {
	if err := session.MarkInheritedCloseOnExec(); err != nil {
		fmt.Fprintf(os.Stderr, "jailmgr-init: %v\n", err)
		os.Exit(1)
	}
	session.MaybeRunInternal()
	fmt.Fprintln(os.Stderr, "jailmgr-init: this is jailmgr's session init, started by 'jailmgr session begin' and 'jailmgr run'; it is not run by hand")
	os.Exit(2)
}
