package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"jailmgr/session"
)

// clientSignals catches the signals that stop a client of a session —
// SIGINT, SIGTERM, SIGHUP, SIGQUIT — for the whole of its work: from
// before a session begins until it has ended. None of them may kill the
// client half-way (a session would be left behind) or be lost (a command
// would run on, and its client wait for it). What arrives before the
// command has started stops the run before it starts (see first); what
// arrives from then on goes to the command (see forward).
type clientSignals struct {
	notified chan os.Signal
	fwd      chan os.Signal
	onSignal func(syscall.Signal)
	quit     chan struct{}
	done     chan struct{}

	mu  sync.Mutex
	got []syscall.Signal
}

// catchSignals starts catching. ctx is main's: a SIGINT or SIGTERM that
// came before this call was caught there, and only ctx tells of it.
// onSignal, if set, hears of each signal as it arrives.
func catchSignals(ctx context.Context, onSignal func(syscall.Signal)) *clientSignals {
	c := &clientSignals{notified: make(chan os.Signal, 8), fwd: make(chan os.Signal, 8), onSignal: onSignal,
		quit: make(chan struct{}), done: make(chan struct{})}
	signal.Notify(c.notified, session.ForwardedSignals()...)
	if ctx == nil {
		ctx = context.Background()
	}
	go c.loop(ctx)
	return c
}

func (c *clientSignals) loop(ctx context.Context) {
	defer close(c.done)
	ctxDone := ctx.Done()
	// Whether SIGINT or SIGTERM came here: main's context then heard of
	// it too, and it is no news when the context ends.
	interrupted := false
	take := func(s os.Signal) {
		sig := s.(syscall.Signal)
		interrupted = interrupted || sig == syscall.SIGINT || sig == syscall.SIGTERM
		c.handle(sig)
	}
	for {
		select {
		case <-c.quit:
			return
		case s := <-c.notified:
			take(s)
		case <-ctxDone:
			ctxDone = nil
			// os/signal hands a signal to every channel registered at that
			// moment under one lock, which Notify takes too: once this
			// (idempotent) call returns, a signal that reached main's
			// context and this catcher both is in notified.
			signal.Notify(c.notified, session.ForwardedSignals()...)
			for drained := false; !drained; {
				select {
				case s := <-c.notified:
					take(s)
				default:
					drained = true
				}
			}
			if !interrupted {
				c.handle(contextSignal(ctx))
			}
		}
	}
}

func (c *clientSignals) handle(sig syscall.Signal) {
	c.mu.Lock()
	c.got = append(c.got, sig)
	c.mu.Unlock()
	if c.onSignal != nil {
		c.onSignal(sig)
	}
	select {
	case c.fwd <- sig:
	default: // eight pending already: the command has been told
	}
}

// first is the first signal caught, 0 for none yet.
func (c *clientSignals) first() syscall.Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return 0
	}
	return c.got[0]
}

// forward is what session.Run passes on to the command: every signal
// caught, including those that came before the run.
func (c *clientSignals) forward() <-chan os.Signal { return c.fwd }

// stop ends the catching; signals take their default action again (or
// main's, for SIGINT and SIGTERM).
func (c *clientSignals) stop() {
	signal.Stop(c.notified)
	close(c.quit)
	<-c.done
}

// contextSignal is the signal that cancelled main's context (see
// signalContext); anything else that ended it stops the client as SIGTERM
// would.
func contextSignal(ctx context.Context) syscall.Signal {
	var c signalCause
	if errors.As(context.Cause(ctx), &c) {
		if sig, ok := c.sig.(syscall.Signal); ok {
			return sig
		}
	}
	return syscall.SIGTERM
}

// signalStatus is the exit status of a command whose error says that a
// signal caught by main stopped it (its cause is a signalCause, see
// signalContext): 128 + the signal's number, as a shell reports a process
// the signal killed (130 for Ctrl-C, 143 for SIGTERM).
func signalStatus(err error) (int, bool) {
	var c signalCause
	if !errors.As(err, &c) {
		return 0, false
	}
	sig, ok := c.sig.(syscall.Signal)
	if !ok {
		return 0, false
	}
	return 128 + int(sig), true
}
