package control

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// generateIndex returns a Packages-like index of n paragraphs in canonical
// form (what WriteTo produces), shaped like a real one: about twenty fields,
// a long Depends and a multi-line Description.
func generateIndex(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "Package: pkg%d\n", i)
		fmt.Fprintf(&b, "Source: src%d (1.%d-1)\n", i/3, i%7)
		fmt.Fprintf(&b, "Version: 1:%d.%d.%d-%d+deb12u%d\n", i%5, i%11, i%13, i%3+1, i%4)
		b.WriteString("Installed-Size: 1234\n")
		b.WriteString("Maintainer: Debian Maintainers <maint@example.org>\n")
		b.WriteString("Architecture: amd64\n")
		fmt.Fprintf(&b, "Depends: libc6 (>= 2.34), libfoo%d (= 1.%d), bar | baz (>> 2~), quux:any\n", i, i)
		b.WriteString("Description: an example package for the benchmark\n")
		b.WriteString(" This package does nothing; its description spans several lines\n")
		b.WriteString(" so that continuation lines are exercised.\n .\n")
		b.WriteString("  * a bullet\n\t* a tab-indented bullet\n")
		b.WriteString("Multi-Arch: same\n")
		b.WriteString("Homepage: https://example.org/pkg\n")
		b.WriteString("Description-md5: 0123456789abcdef0123456789abcdef\n")
		b.WriteString("Tag: devel::library, role::shared-lib\n")
		b.WriteString("Section: libs\n")
		b.WriteString("Priority: optional\n")
		fmt.Fprintf(&b, "Filename: pool/main/p/pkg%d/pkg%d_1.0-1_amd64.deb\n", i, i)
		b.WriteString("Size: 123456\n")
		b.WriteString("MD5sum: 0123456789abcdef0123456789abcdef\n")
		b.WriteString("SHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n")
	}
	return b.String()
}

// BenchmarkReader streams a generated index of 10,000 paragraphs, about a
// sixth of a Debian main Packages index.
func BenchmarkReader(b *testing.B) {
	data := []byte(generateIndex(10000))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), "bench")
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 10000 {
			b.Fatalf("read %d paragraphs, want 10000", n)
		}
	}
}

func BenchmarkWriteTo(b *testing.B) {
	ps := readAll(b, generateIndex(1000))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range ps {
			if _, err := p.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	}
}
