//go:build !jailmgr_init

package session

import (
	"fmt"
	"os"
	"slices"

	"jailmgr/conf"
	"jailmgr/session/seccomp"
)

// Spec is everything Begin needs: the jail, where its root comes from, and
// for whom it is opened.
type Spec struct {
	Jail *conf.Jail
	// Lower is the image's rootfs, or the jail's directory.
	Lower string
	// ImageRef is name:version of the image, "" for directory jails.
	ImageRef string
	// StoreDir holds overlay upper dirs (sessions/<id>, persist/<jail>).
	StoreDir string
	// RunDir holds the state folders (default DefaultRunDir).
	RunDir string
	// Name is the session id asked for; "" makes one.
	Name string
	User User
	// Labels are kept in the session's state for front ends (the schroot
	// command line records which chroot and alias a session came from).
	Labels map[string]string
	// Automatic is a session that lives for one command of its caller
	// (jailmgr run): its init is killed when the caller exits, and Begin
	// starts no monitor; the caller starts one with Watch once the command
	// has run long enough to be worth it, and ends the session itself.
	Automatic bool
}

// CheckAccess applies schroot's rules: root may use any jail; others must
// be in users or groups (or root-users/root-groups). asRoot asks for root
// inside, which only root-users and root-groups (and root) get.
func CheckAccess(j *conf.Jail, u User, asRoot bool) error {
	if u.UID == 0 {
		return nil
	}
	inRoot := slices.Contains(j.RootUsers, u.Name) || anyIn(u.GroupNames, j.RootGroups)
	if asRoot {
		if !inRoot {
			return fmt.Errorf("%w: %s may not be root in jail %s (add the user to root-users or a group in root-groups)", ErrDenied, u.Name, j.Name)
		}
		return nil
	}
	if inRoot || slices.Contains(j.Users, u.Name) || anyIn(u.GroupNames, j.Groups) {
		return nil
	}
	// Who else may is not said: through a setuid jailmgr, that is
	// root's configuration, which a user need not be able to read.
	return fmt.Errorf("%w: %s may not use jail %s (ask its admin to add you to its users or groups)", ErrDenied, u.Name, j.Name)
}

func anyIn(have, allowed []string) bool {
	for _, h := range have {
		if slices.Contains(allowed, h) {
			return true
		}
	}
	return false
}

// checkSpec rejects what would fail half-way: binds whose source is missing,
// a root that is not there, a seccomp profile that cannot be read.
func checkSpec(s *Spec) error {
	if s.Jail.Tarball != "" {
		if st, err := os.Stat(s.Jail.Tarball); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("begin session in %s: archive %s is not a file", s.Jail.Name, s.Jail.Tarball)
		}
		if _, err := archiveCompression(s.Jail.Tarball); err != nil {
			return fmt.Errorf("begin session in %s: %w", s.Jail.Name, err)
		}
	} else if st, err := os.Stat(s.Lower); err != nil || !st.IsDir() {
		return fmt.Errorf("begin session in %s: root %s is not a directory", s.Jail.Name, s.Lower)
	}
	if p := s.Jail.Personality; p != "" {
		if _, ok := conf.Personalities[p]; !ok {
			return fmt.Errorf("begin session in %s: unknown personality %q", s.Jail.Name, p)
		}
	}
	for _, b := range s.Jail.Binds {
		if _, err := os.Stat(b.Source); err != nil {
			return fmt.Errorf("begin session in %s: bind source %s: %w (create it, or fix the jail's bind)", s.Jail.Name, b.Source, err)
		}
	}
	if p := s.Jail.Seccomp; p != "default" && p != "none" {
		if _, err := seccomp.Load(p); err != nil {
			return fmt.Errorf("begin session in %s: %w", s.Jail.Name, err)
		}
	}
	return nil
}
