//go:build !jailmgr_init

package session

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoACL is returned when a session's state folder cannot carry the ACL
// that lets its owner reach the session's root.
var ErrNoACL = errors.New("session: the run folder's filesystem refuses POSIX ACLs")

// The kernel's POSIX ACL xattr format (linux/posix_acl_xattr.h): a
// little-endian u32 version, then entries of u16 tag, u16 permissions and
// u32 id, sorted by tag, then id.
const (
	aclVersion  = 2
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclMask     = 0x10
	aclOther    = 0x20
	aclExecute  = 0x01
	aclRWX      = 0x07
	aclNoID     = 0xffffffff
	aclXattr    = "system.posix_acl_access"
)

// searchOnlyACL is the access ACL of a state folder: rwx for its owner
// (root), search (--x) for the session's user and nothing for anyone else,
// as `setfacl -m u:UID:--x` on a 0700 folder makes it.
func searchOnlyACL(uid uint32) []byte {
	entries := []struct {
		tag, perm uint16
		id        uint32
	}{
		{aclUserObj, aclRWX, aclNoID},
		{aclUser, aclExecute, uid},
		{aclGroupObj, 0, aclNoID},
		{aclMask, aclExecute, aclNoID},
		{aclOther, 0, aclNoID},
	}
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// grantSearch lets uid, and nobody else but root, pass through dir (a
// 0700 root folder): the session's owner reaches <dir>/root, where schroot
// clients copy files in and out, and neither lists dir nor opens the state
// and the control socket in it (root's, 0600), nor enters <dir>/private.
func grantSearch(dir string, uid int) error {
	err := unix.Setxattr(dir, aclXattr, searchOnlyACL(uint32(uid)), 0)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %s cannot let uid %d reach the session's root: mount that filesystem with ACL support (the acl option; tmpfs, ext4 and xfs have it), or open the session as root", ErrNoACL, dir, uid)
	}
	if err != nil {
		return fmt.Errorf("let uid %d reach %s: %w", uid, dir, err)
	}
	return nil
}
