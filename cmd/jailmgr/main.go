// Command jailmgr builds versioned jail images from Debian and Ubuntu
// archives and opens isolated sessions in them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"jailmgr/session"
)

func main() {
	session.MaybeRunInternal()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
