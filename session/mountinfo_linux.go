//go:build !jailmgr_init

package session

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
)

// mountsBelow lists the mount points at or below dir, shallowest first.
func mountsBelow(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Clean(dir)))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Mountpoint)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) < len(out[j]) })
	return out, nil
}
