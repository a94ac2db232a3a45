// Package privtest attacks a setuid-root install of jailmgr from the
// accounts of users who are not root: the privilege boundary of DESIGN.md,
// one test per class of attack, each with the spellings that class has.
//
// It holds tests only. They install jailmgr with 'make install SETUID=1'
// into a scratch prefix under /var/tmp whose configuration, store, session
// and schroot folders are baked into the binary (a setuid jailmgr takes no
// JAILMGR_* variable from its caller), add two users, prepare images and
// jails as root, and then run every attack as those users against the
// installed binary. An attack passes when what it tried did not happen:
// no root process acted for it, nothing root-owned appeared where the users
// can write, nothing of another user was shown or touched.
//
// Run it as root with 'make test-privilege'; plain 'go test' skips it,
// saying why, because it adds and removes users on the machine. With
// JAILMGR_PRIVTEST_SRC=DIR it installs from another checkout (a baseline
// to compare against); that checkout's Makefile must know the path
// variables (SYSCONFDIR, LOCALSTATEDIR, RUNSTATEDIR, BUILDDIR), or the
// suite stops before it runs anything.
package privtest
