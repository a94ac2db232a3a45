//go:build !jailmgr_init

package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"jailmgr/session/cgroup"
)

// EndDamaged removes a session whose state file cannot be read: nothing it
// says can be used, so what the session made is found from where Begin
// always makes it — its cgroup (jailmgr/ID), whose processes are killed,
// and the mounts below its state folder — and the folder goes. An
// overlay's upper dir in the store is left to 'image gc'. Root only: the
// session's owner is unknown.
func EndDamaged(runDir, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %q is not a session id (see 'jailmgr session list')", ErrNoSession, id)
	}
	dir := filepath.Join(runDir, id)
	if _, err := os.Lstat(dir); err != nil {
		return fmt.Errorf("%w: %s (see 'jailmgr session list')", ErrNoSession, id)
	}
	var errs []error
	if g, err := cgroup.Open("jailmgr/" + id); err == nil {
		if err := g.Kill(); err != nil {
			errs = append(errs, err)
		}
		if err := g.Remove(); err != nil {
			errs = append(errs, err)
		}
	} else if !errors.Is(err, cgroup.ErrNotFound) {
		errs = append(errs, err)
	}
	if err := unmountAll(dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("end damaged session %s: %w", id, errors.Join(errs...))
	}
	return nil
}
