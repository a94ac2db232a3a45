package compress

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"slices"

	"github.com/ulikunitz/xz/lzma"
)

// ErrNotSmall says DecodeSmallXZ does not take this stream; the caller
// decodes it some other way (NewReader, or the xz tool).
var ErrNotSmall = errors.New("compress: not a small single-block xz stream")

// DecodeSmallXZ decodes a whole .xz stream held in memory whose decoded
// size, as its index records it, is at most limit bytes.
//
// It exists for the many small members of a .deb (control.tar.xz is a few
// KiB): the xz tool costs a process start each, and NewReader allocates the
// dictionary the stream declares (8 MiB for "xz -6") however little it
// decodes. Here the dictionary is the decoded size. Only what dpkg-deb
// writes is taken: one stream, one block, the LZMA2 filter alone. Anything
// else is ErrNotSmall, before any decoding; a stream that is taken but
// does not decode, or does not match its recorded size or check, is
// another error. Either way nothing is returned, and the caller can hand
// the stream to a full decoder, which says what is wrong with it.
func DecodeSmallXZ(data []byte, limit int) ([]byte, error) {
	const headerLen, footerLen = 12, 12
	if len(data) < headerLen+footerLen || !bytes.HasPrefix(data, []byte("\xfd7zXZ\x00")) {
		return nil, ErrNotSmall
	}
	flags := data[6:8]
	if crc32.ChecksumIEEE(flags) != binary.LittleEndian.Uint32(data[8:12]) {
		return nil, fmt.Errorf("xz: stream header: %w", errCorrupt)
	}
	footer := data[len(data)-footerLen:]
	if !bytes.Equal(footer[10:], []byte("YZ")) || !bytes.Equal(footer[8:10], flags) {
		// Stream padding or a second stream: not what dpkg-deb writes.
		return nil, ErrNotSmall
	}
	if crc32.ChecksumIEEE(footer[4:10]) != binary.LittleEndian.Uint32(footer[:4]) {
		return nil, fmt.Errorf("xz: stream footer: %w", errCorrupt)
	}
	var check hash.Hash
	checkLen := 0
	switch flags[1] {
	case 0x00:
	case 0x01:
		check, checkLen = crc32.NewIEEE(), 4
	case 0x04:
		check, checkLen = crc64.New(crc64.MakeTable(crc64.ECMA)), 8
	case 0x0a:
		check, checkLen = sha256.New(), 32
	default:
		return nil, ErrNotSmall
	}

	// The index: one record, the block's unpadded and decoded sizes.
	indexLen := (int(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
	indexAt := len(data) - footerLen - indexLen
	if indexAt < headerLen {
		return nil, fmt.Errorf("xz: index size %d: %w", indexLen, errCorrupt)
	}
	index := data[indexAt : len(data)-footerLen]
	if crc32.ChecksumIEEE(index[:len(index)-4]) != binary.LittleEndian.Uint32(index[len(index)-4:]) {
		return nil, fmt.Errorf("xz: index: %w", errCorrupt)
	}
	r := bytes.NewReader(index[:len(index)-4])
	if b, _ := r.ReadByte(); b != 0 {
		return nil, fmt.Errorf("xz: index indicator: %w", errCorrupt)
	}
	records, err1 := binary.ReadUvarint(r)
	unpadded, err2 := binary.ReadUvarint(r)
	size, err3 := binary.ReadUvarint(r)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("xz: index: %w", errCorrupt)
	}
	if records == 0 && indexAt == headerLen {
		return []byte{}, nil // no block: empty input
	}
	if records != 1 || size > uint64(limit) {
		return nil, ErrNotSmall
	}
	// The block: header, compressed data, padding to four bytes, check;
	// its unpadded size leaves the padding out. The index follows it.
	// A block that does not fill the space between the stream header and
	// the index is another layout (concatenated streams, say).
	if unpadded > uint64(indexAt) || int(unpadded) < checkLen+8 {
		return nil, ErrNotSmall
	}
	dataEnd := headerLen + int(unpadded) - checkLen
	if (dataEnd+3)&^3+checkLen != indexAt || !allZero(data[dataEnd:indexAt-checkLen]) {
		return nil, ErrNotSmall
	}
	block := data[headerLen:dataEnd]
	sum := data[indexAt-checkLen : indexAt]

	// The block header: its own size, flags, optional sizes, one filter.
	hdrLen := (int(block[0]) + 1) * 4
	if block[0] == 0 || hdrLen > len(block) {
		return nil, fmt.Errorf("xz: block header: %w", errCorrupt)
	}
	hdr := block[:hdrLen]
	if crc32.ChecksumIEEE(hdr[:hdrLen-4]) != binary.LittleEndian.Uint32(hdr[hdrLen-4:]) {
		return nil, fmt.Errorf("xz: block header: %w", errCorrupt)
	}
	bf := hdr[1]
	if bf&0x3c != 0 || bf&0x03 != 0 {
		// Reserved bits, or more than one filter (a BCJ filter, say).
		return nil, ErrNotSmall
	}
	hr := bytes.NewReader(hdr[2 : hdrLen-4])
	if bf&0x40 != 0 {
		if _, err := binary.ReadUvarint(hr); err != nil {
			return nil, fmt.Errorf("xz: block header: %w", errCorrupt)
		}
	}
	if bf&0x80 != 0 {
		n, err := binary.ReadUvarint(hr)
		if err != nil || n != size {
			return nil, fmt.Errorf("xz: block header size %d, index %d: %w", n, size, errCorrupt)
		}
	}
	id, err1 := binary.ReadUvarint(hr)
	propLen, err2 := binary.ReadUvarint(hr)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("xz: block header: %w", errCorrupt)
	}
	if id != 0x21 || propLen != 1 {
		return nil, ErrNotSmall
	}

	dictCap := max(int(size), lzma.MinDictCap)
	in := bytes.NewReader(block[hdrLen:])
	dec, err := lzma.Reader2Config{DictCap: dictCap}.NewReader2(in)
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	// Exactly the index's size, then the end of the LZMA2 stream, with
	// all of the block's data used.
	out := make([]byte, size)
	if _, err := io.ReadFull(dec, out); err != nil {
		return nil, fmt.Errorf("xz: decoding %d bytes: %v: %w", size, err, errCorrupt)
	}
	if n, err := dec.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) || in.Len() != 0 {
		return nil, fmt.Errorf("xz: more data than the index's %d bytes: %w", size, errCorrupt)
	}
	if check != nil {
		check.Write(out)
		// CRC32 and CRC64 are stored little-endian, SHA-256 as its bytes.
		got := check.Sum(nil)
		if checkLen != 32 {
			slices.Reverse(got)
		}
		if !bytes.Equal(got, sum) {
			return nil, fmt.Errorf("xz: check of the decoded data: %w", errCorrupt)
		}
	}
	return out, nil
}

var errCorrupt = errors.New("corrupt stream")

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
