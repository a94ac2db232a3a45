package bootstrap

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"jailmgr/debian/control"
	"jailmgr/store/tree"
)

// writeDpkgDB registers unpacked packages the way dpkg --unpack leaves them:
// status "install ok unpacked", new conffiles as <file>.dpkg-new with the
// hash "newconffile", control files in info/, and the trigger interests that
// dpkg would have recorded. dpkg --configure then finishes the job.
func writeDpkgDB(root *tree.Root, pkgs []*unpacked) error {
	const admin = "var/lib/dpkg"
	for _, d := range []string{"info", "updates", "triggers", "alternatives", "parts"} {
		if err := root.MkdirAll(admin + "/" + d); err != nil {
			return fmt.Errorf("create dpkg database: %w", err)
		}
	}
	for _, f := range []string{"available", "diversions", "statoverride", "triggers/Unincorp"} {
		if !root.Exists(admin + "/" + f) {
			if err := root.WriteFile(admin+"/"+f, nil, 0o644); err != nil {
				return fmt.Errorf("create dpkg database: %w", err)
			}
		}
	}
	// Format 1 is the multiarch layout of info/ (pkg:arch.list for
	// Multi-Arch: same packages).
	if err := root.WriteFile(admin+"/info/format", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("create dpkg database: %w", err)
	}
	sorted := append([]*unpacked{}, pkgs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].c.Name < sorted[j].c.Name })
	var status bytes.Buffer
	fileTriggers := map[string][]string{}
	explicit := map[string][]string{}
	for _, p := range sorted {
		spec := p.c.Name
		if p.control.Paragraph.Get("Multi-Arch") == "same" {
			spec += ":" + p.c.Arch
		}
		if err := writeInfo(root, spec, p); err != nil {
			return err
		}
		para := statusParagraph(p)
		if _, err := para.WriteTo(&status); err != nil {
			return fmt.Errorf("write dpkg status: %w", err)
		}
		status.WriteByte('\n')
		if t, ok := p.control.File("triggers"); ok {
			for _, l := range strings.Split(string(t.Data), "\n") {
				f := strings.Fields(l)
				if len(f) != 2 || !strings.HasPrefix(f[0], "interest") {
					continue
				}
				opt := ""
				if f[0] == "interest-noawait" {
					opt = "/noawait"
				}
				if strings.HasPrefix(f[1], "/") {
					fileTriggers[f[1]] = append(fileTriggers[f[1]], spec+opt)
				} else {
					explicit[f[1]] = append(explicit[f[1]], spec+opt)
				}
			}
		}
	}
	if err := root.WriteFile(admin+"/status", status.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write dpkg status: %w", err)
	}
	var tf bytes.Buffer
	paths := make([]string, 0, len(fileTriggers))
	for p := range fileTriggers {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for _, spec := range fileTriggers[p] {
			fmt.Fprintf(&tf, "%s %s\n", p, spec)
		}
	}
	if tf.Len() > 0 {
		if err := root.WriteFile(admin+"/triggers/File", tf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write dpkg triggers: %w", err)
		}
	}
	for name, specs := range explicit {
		if strings.ContainsAny(name, "/") || name == "File" || name == "Unincorp" || strings.HasPrefix(name, ".") {
			continue
		}
		if err := root.WriteFile(admin+"/triggers/"+name, []byte(strings.Join(specs, "\n")+"\n"), 0o644); err != nil {
			return fmt.Errorf("write dpkg triggers: %w", err)
		}
	}
	return nil
}

// statusParagraph is the package's control paragraph as dpkg records it
// after unpacking.
func statusParagraph(p *unpacked) *control.Paragraph {
	src := p.control.Paragraph
	para := &control.Paragraph{}
	for _, f := range src.Fields {
		para.Fields = append(para.Fields, f)
		if strings.EqualFold(f.Name, "Package") {
			para.Fields = append(para.Fields, control.Field{Name: "Status", Value: "install ok unpacked"})
		}
	}
	if len(p.conffiles) > 0 {
		var b strings.Builder
		for _, c := range p.conffiles {
			b.WriteString("\n " + c + " newconffile")
		}
		para.Set("Conffiles", b.String())
	}
	return para
}

// writeInfo writes info/<spec>.list, .md5sums and the package's control files.
func writeInfo(root *tree.Root, spec string, p *unpacked) error {
	const info = "var/lib/dpkg/info/"
	list := strings.Join(p.files, "\n")
	if list != "" {
		list += "\n"
	}
	if err := root.WriteFile(info+spec+".list", []byte(list), 0o644); err != nil {
		return fmt.Errorf("write dpkg info of %s: %w", spec, err)
	}
	// A package's own md5sums member is registered as dpkg does, even
	// when it is empty (some are: dpkg --audit then reports nothing, while
	// a missing file is "missing the md5sums control file"); without one,
	// the sums computed while unpacking stand in.
	if _, own := p.control.File("md5sums"); !own && len(p.md5sums) > 0 {
		if err := root.WriteFile(info+spec+".md5sums", p.md5sums, 0o644); err != nil {
			return fmt.Errorf("write dpkg info of %s: %w", spec, err)
		}
	}
	for _, f := range p.control.Files {
		if f.Name == "control" {
			continue
		}
		if strings.ContainsAny(f.Name, "/") || strings.HasPrefix(f.Name, ".") {
			return fmt.Errorf("write dpkg info of %s: control member %q: %w", spec, f.Name, ErrVerify)
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		if err := root.WriteFile(info+spec+"."+f.Name, f.Data, mode); err != nil {
			return fmt.Errorf("write dpkg info of %s: %w", spec, err)
		}
		// dpkg extracts control.tar keeping its times, then moves the
		// files into info/.
		if !f.ModTime.IsZero() {
			if err := root.Chtimes(info+spec+"."+f.Name, f.ModTime); err != nil {
				return fmt.Errorf("write dpkg info of %s: %w", spec, err)
			}
		}
	}
	return nil
}
