package session

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// LookupUser describes the user with the given ids from the host's
// /etc/passwd and /etc/group (read directly: jailmgr is built without cgo,
// and NSS modules have no place in a tool that sets up jails).
func LookupUser(uid, gid int) (User, error) {
	u := User{UID: uid, GID: gid, Home: "/", Shell: "/bin/sh"}
	// Read whole, not by bufio.Scanner: a line over its 64 KiB limit
	// would end the scan early and silently.
	pw, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return u, fmt.Errorf("look up user %d: %w", uid, err)
	}
	for _, l := range strings.Split(string(pw), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 7 || f[2] != strconv.Itoa(uid) {
			continue
		}
		u.Name, u.Home, u.Shell, u.Passwd = f[0], f[5], f[6], l
		break
	}
	if u.Name == "" {
		if uid != 0 {
			return u, fmt.Errorf("look up user %d: not in /etc/passwd", uid)
		}
		u.Name = "root"
	}
	gr, err := os.ReadFile("/etc/group")
	if err != nil {
		return u, fmt.Errorf("look up groups of %s: %w", u.Name, err)
	}
	for _, l := range strings.Split(string(gr), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 4 {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if id == gid {
			u.PrimaryGroup = f[0]
		}
		member := id == gid
		for _, m := range strings.Split(f[3], ",") {
			member = member || (m == u.Name && m != "")
		}
		if !member {
			continue
		}
		u.GroupNames = append(u.GroupNames, f[0])
		u.Group = append(u.Group, l)
		if id != gid {
			u.Groups = append(u.Groups, id)
		}
	}
	return u, nil
}

// LookupUserName describes the user with the given name, as LookupUser.
func LookupUserName(name string) (User, error) {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return User{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			break
		}
		return LookupUser(uid, gid)
	}
	return User{}, fmt.Errorf("look up user %s: %w", name, ErrNoUser)
}

// ErrNoUser is returned for a user the host does not know.
var ErrNoUser = errors.New("session: no such user")

// Caller is the user a command runs for: the one who ran sudo (SUDO_UID,
// SUDO_GID), else the real user.
func Caller() (User, error) {
	uid, gid := os.Getuid(), os.Getgid()
	if os.Getuid() == 0 {
		if v, err := strconv.Atoi(os.Getenv("SUDO_UID")); err == nil {
			uid = v
			if g, err := strconv.Atoi(os.Getenv("SUDO_GID")); err == nil {
				gid = g
			}
		}
	}
	return LookupUser(uid, gid)
}
