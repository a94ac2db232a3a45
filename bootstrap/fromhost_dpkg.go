package bootstrap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"jailmgr/bootstrap/ldso"
	"jailmgr/debian/control"
	"jailmgr/store"
)

// hostPackages names the host's installed dpkg packages that own files
// (real host paths), from /var/lib/dpkg/info/*.list and status. A listed
// path counts by where it really leads: dpkg lists a file under the name
// its package ships (/lib/x86_64-linux-gnu/libc.so.6), which a merged-/usr
// host reaches through a symlink. A host without dpkg gives no packages.
func hostPackages(root string, files []string) ([]store.Package, error) {
	const admin = "/var/lib/dpkg"
	want := map[string]bool{}
	bases := map[string]bool{}
	for _, f := range files {
		want[f] = true
		bases[path.Base(f)] = true
	}
	infoDir := hostFile(root, admin+"/info")
	ents, err := os.ReadDir(infoDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read host packages: %w", err)
	}
	owners := map[string]bool{} // "name" or "name:arch", as the .list is named
	for _, e := range ents {
		spec, ok := strings.CutSuffix(e.Name(), ".list")
		if !ok {
			continue
		}
		data, err := os.ReadFile(hostFile(root, admin+"/info/"+e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read host packages: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !bases[path.Base(line)] || !path.IsAbs(line) {
				continue
			}
			if real, _, err := ldso.Realpath(root, line); err == nil && want[real] {
				owners[spec] = true
				break
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read host packages: %s: %w", e.Name(), err)
		}
	}
	if len(owners) == 0 {
		return nil, nil
	}
	f, err := os.Open(hostFile(root, admin+"/status"))
	if err != nil {
		return nil, fmt.Errorf("read host packages: %w", err)
	}
	defer f.Close()
	var out []store.Package
	r := control.NewReader(f, admin+"/status")
	for {
		para, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read host packages: %w", err)
		}
		name, arch := para.Get("Package"), para.Get("Architecture")
		if !strings.HasSuffix(para.Get("Status"), " installed") || !(owners[name] || owners[name+":"+arch]) {
			continue
		}
		out = append(out, store.Package{Name: name, Version: para.Get("Version"), Arch: arch})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Arch < out[j].Arch
	})
	return out, nil
}
