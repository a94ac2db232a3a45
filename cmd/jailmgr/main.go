// Command jailmgr builds versioned jail images from Debian and Ubuntu
// archives and opens isolated sessions in them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"jailmgr/session"
)

func main() {
	if err := takeSetuid(); err != nil {
		fmt.Fprintf(os.Stderr, "jailmgr: %v\n", err)
		os.Exit(1)
	}
	session.MaybeRunInternal()
	// Called as schroot (a link made by 'make install-schroot'), jailmgr
	// is schroot, with schroot's own command line and signal handling.
	if filepath.Base(os.Args[0]) == "schroot" {
		a := newApp(os.Stdin, os.Stdout, os.Stderr)
		a.globalsFromEnv()
		os.Exit(a.runSchroot(os.Args[0], os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
