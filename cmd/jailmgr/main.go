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
	if err := session.MarkInheritedCloseOnExec(); err != nil {
		fmt.Fprintf(os.Stderr, "jailmgr: %v\n", err)
		os.Exit(1)
	}
	// A role (a session's init, the exec helper…) runs before anything
	// else, and never through a setuid start (internal/role).
	session.MaybeRunInternal()
	if err := takeSetuid(); err != nil {
		fmt.Fprintf(os.Stderr, "jailmgr: %v\n", err)
		os.Exit(1)
	}
	// Called as schroot (a link made by 'make install-schroot'), jailmgr
	// is schroot, with schroot's own command line and signal handling.
	if filepath.Base(os.Args[0]) == "schroot" {
		a := newApp(os.Stdin, os.Stdout, os.Stderr)
		a.globalsFromEnv()
		os.Exit(a.runSchroot(os.Args[0], os.Args[1:]))
	}
	ctx, stop := signalContext(os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalContext is signal.NotifyContext with the signal as the context's
// cause (a signalCause), so that a client that starts catching signals
// later still learns which one came first (see catchSignals).
func signalContext(sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			cancel(signalCause{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(context.Canceled)
	}
}

// signalCause is why main's context ended: a signal.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string { return c.sig.String() + " signal received" }
