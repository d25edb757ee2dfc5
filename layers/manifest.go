package layers

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// manifestMagic starts every encoded manifest; the digit is the format version.
const manifestMagic = "acetate-manifest-1\n"

// Manifest is the full metadata of one layer: its entries, sorted by
// ComparePaths, each path at most once.
type Manifest struct {
	Entries []Entry
}

// Sort puts the entries in canonical order.
func (m *Manifest) Sort() {
	slices.SortFunc(m.Entries, func(a, b Entry) int { return ComparePaths(a.Path, b.Path) })
}

// Encode returns the canonical encoding of the manifest: the same entries
// always give the same bytes. The layer digest is the sha256 of these bytes.
func (m *Manifest) Encode() []byte {
	var b []byte
	b = append(b, manifestMagic...)
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for i := range m.Entries {
		b = appendEntry(b, &m.Entries[i])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEntry(b []byte, e *Entry) []byte {
	b = appendString(b, e.Path)
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.Mtime)
	var flags byte
	if e.Opaque {
		flags |= 1
	}
	b = append(b, flags)
	switch e.Type {
	case TypeReg:
		b = binary.AppendUvarint(b, uint64(e.Size))
		raw, _ := hex.DecodeString(e.Digest.Encoded())
		b = append(b, raw...)
		b = appendString(b, e.LinkTo)
	case TypeSymlink:
		b = appendString(b, e.Target)
	case TypeChar, TypeBlock:
		b = binary.AppendUvarint(b, uint64(e.Major))
		b = binary.AppendUvarint(b, uint64(e.Minor))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Xattrs)))
	for _, x := range e.Xattrs {
		b = appendString(b, x.Name)
		b = appendString(b, string(x.Value))
	}
	return b
}

// errTruncated is returned for a manifest that ends in the middle of an entry.
var errTruncated = errors.New("truncated manifest")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errTruncated
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

func (d *decoder) byte() byte {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

// DecodeManifest parses the canonical encoding made by Encode.
func DecodeManifest(b []byte) (*Manifest, error) {
	if !bytes.HasPrefix(b, []byte(manifestMagic)) {
		return nil, errors.New("not an acetate manifest (bad header)")
	}
	d := &decoder{b: b[len(manifestMagic):]}
	n := d.uvarint()
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("manifest claims %d entries in %d bytes", n, len(b))
	}
	m := &Manifest{Entries: make([]Entry, 0, n)}
	for i := uint64(0); i < n && d.err == nil; i++ {
		m.Entries = append(m.Entries, d.entry())
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("manifest has %d trailing bytes", len(d.b))
	}
	return m, m.validate()
}

func (d *decoder) entry() Entry {
	e := Entry{Path: d.string(), Type: Type(d.byte())}
	e.Mode = uint32(d.uvarint())
	e.UID = uint32(d.uvarint())
	e.GID = uint32(d.uvarint())
	e.Mtime = d.varint()
	e.Opaque = d.byte()&1 != 0
	switch e.Type {
	case TypeReg:
		e.Size = int64(d.uvarint())
		e.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(d.bytes(32)))
		e.LinkTo = d.string()
	case TypeSymlink:
		e.Target = d.string()
	case TypeChar, TypeBlock:
		e.Major = uint32(d.uvarint())
		e.Minor = uint32(d.uvarint())
	}
	nx := d.uvarint()
	if nx > uint64(len(d.b)) {
		d.err = errTruncated
		return e
	}
	for j := uint64(0); j < nx && d.err == nil; j++ {
		// A copy: a value pointing into the encoded manifest would keep
		// all of it (hundreds of KiB) alive as long as the entry.
		e.Xattrs = append(e.Xattrs, Xattr{Name: d.string(), Value: bytes.Clone(d.bytes(d.uvarint()))})
	}
	return e
}

// validate checks the invariants every manifest keeps, so that a manifest
// that hashes right but was written by a buggy or hostile tool is refused.
func (m *Manifest) validate() error {
	dirs := make(map[string]bool, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		if _, ok := typeNames[e.Type]; !ok {
			return fmt.Errorf("entry %q: unknown type %d", e.Path, e.Type)
		}
		if clean, err := CleanPath(e.Path[min(1, len(e.Path)):]); err != nil || clean != e.Path || e.Path == "" {
			return fmt.Errorf("entry %q: path is not clean and absolute", e.Path)
		}
		if i > 0 && ComparePaths(m.Entries[i-1].Path, e.Path) >= 0 {
			return fmt.Errorf("entry %q: out of order or duplicate", e.Path)
		}
		dirs[e.Path] = e.Type == TypeDir
		if e.Path != "/" && !dirs[Parent(e.Path)] {
			return fmt.Errorf("entry %q: parent is not a directory of this layer", e.Path)
		}
	}
	return nil
}

// Compress returns the zstd form of an encoded manifest as it is stored.
func Compress(raw []byte) []byte {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

// Decompress reverses Compress.
func Decompress(z []byte) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(z, nil)
}
