package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"

	"jailmgr/store"
)

// ErrInterrupted is what an InterruptedError is (errors.Is).
var ErrInterrupted = errors.New("bootstrap: interrupted")

// InterruptedError is the error of a run whose context ended (Ctrl-C,
// SIGTERM) before it committed anything. Whatever else failed on the way
// (a download cut short, a child process killed) followed from the
// interrupt, and is not reported.
type InterruptedError struct {
	// Cause is why the context ended (context.Cause).
	Cause error
}

func (e *InterruptedError) Error() string { return "interrupted: nothing committed" }

func (e *InterruptedError) Unwrap() error { return e.Cause }

func (e *InterruptedError) Is(target error) bool { return target == ErrInterrupted }

// KeptLogError is the error of a run that failed after its log was
// started: the log is kept in the store (see store.KeepLog), and the
// error says where.
type KeptLogError struct {
	Err  error
	Path string
}

func (e *KeptLogError) Error() string { return fmt.Sprintf("%v\nfull log: %s", e.Err, e.Path) }

func (e *KeptLogError) Unwrap() error { return e.Err }

// abandon ends a run that did not commit: it keeps the log at logPath (if
// the run failed after making one) as logName in the store's logs, removes
// the staging area and returns err as the user should see it: an
// InterruptedError when ctx ended, else err with the kept log's path.
func abandon(ctx context.Context, st *store.Store, stg *store.Staging, logPath, logName string, err error) error {
	if err == nil {
		// Nothing was built (an existing version was reused).
		stg.Abort()
		return nil
	}
	kept := ""
	var keepErr error
	if logPath != "" && ctx.Err() == nil {
		kept, keepErr = st.KeepLog(logPath, logName)
	}
	stg.Abort()
	// A Ctrl-C reaches the whole foreground process group: a child of
	// ours (xz) may die of it, and its failure come back, before the
	// signal has ended ctx. Looking again after the staging area is gone
	// leaves time for that, and the child's failure is then no news.
	if ctx.Err() != nil {
		if kept != "" {
			os.Remove(kept)
		}
		return &InterruptedError{Cause: context.Cause(ctx)}
	}
	if keepErr != nil {
		return errors.Join(err, keepErr)
	}
	if kept != "" {
		return &KeptLogError{Err: err, Path: kept}
	}
	return err
}
