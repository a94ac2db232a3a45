// Command jailmgr builds versioned jail images from Debian and Ubuntu
// archives and opens isolated sessions in them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"jailmgr/session"
)

func main() {
	if err := takeSetuid(); err != nil {
		fmt.Fprintf(os.Stderr, "jailmgr: %v\n", err)
		os.Exit(1)
	}
	session.MaybeRunInternal()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
