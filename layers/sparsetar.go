package layers

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A sparse file goes into a tar stream as GNU tar writes it in PAX format
// (GNU sparse format 1.0): a PAX header carrying GNU.sparse.name, .realsize,
// .major=1 and .minor=0, then a ustar header whose data is the sparse map
// ("COUNT\nOFFSET\nLENGTH\n..." padded to 512 bytes) followed by the data
// runs. archive/tar reads this format but does not write it, so the two
// headers are made here.

// holes lists the data runs of object file obj when it has holes.
func holes(obj *os.File, size int64) ([]extent, bool, error) {
	var xs []extent
	var data int64
	err := dataExtents(obj, size, func(x extent) error {
		xs = append(xs, x)
		data += x.len
		return nil
	})
	if err != nil || data == size {
		return nil, false, err
	}
	if n := len(xs); n == 0 || xs[n-1].off+xs[n-1].len < size {
		xs = append(xs, extent{size, 0}) // as GNU tar marks a trailing hole
	}
	return xs, true, nil
}

// writeSparseEntry writes e, whose object obj has the data runs xs, as a
// GNU sparse entry to w (a tar stream between entries), and verifies the
// object as it goes.
func writeSparseEntry(w io.Writer, e *Entry, obj *os.File, xs []extent, buf []byte) error {
	sparseMap := strconv.AppendInt(nil, int64(len(xs)), 10)
	sparseMap = append(sparseMap, '\n')
	var data int64
	for _, x := range xs {
		sparseMap = fmt.Appendf(sparseMap, "%d\n%d\n", x.off, x.len)
		data += x.len
	}
	sparseMap = append(sparseMap, make([]byte, pad512(int64(len(sparseMap))))...)
	headers, err := sparseHeaders(e, int64(len(sparseMap))+data)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(headers, sparseMap...)); err != nil {
		return err
	}
	h := newContentHash()
	var done int64
	for _, x := range xs {
		h.zeros(x.off - done)
		if _, err := io.CopyBuffer(io.MultiWriter(w, h), io.NewSectionReader(obj, x.off, x.len), buf); err != nil {
			return fmt.Errorf("object %s: %w", e.Digest, err)
		}
		done = x.off + x.len
	}
	h.zeros(e.Size - done)
	if got := h.digest(); got != e.Digest {
		return fmt.Errorf("object %s hashes to %s: %w", e.Digest, got, ErrCorrupt)
	}
	_, err = w.Write(make([]byte, pad512(data+int64(len(sparseMap)))))
	return err
}

func pad512(n int64) int64 { return -n & 511 }

// sparseHeaders returns the PAX header and the ustar header of sparse entry
// e whose data section (map and runs) has size bytes.
func sparseHeaders(e *Entry, size int64) ([]byte, error) {
	recs := map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     e.Path[1:],
		"GNU.sparse.realsize": strconv.FormatInt(e.Size, 10),
		"mtime":               formatPAXTime(e.Mtime),
		"uid":                 strconv.FormatUint(uint64(e.UID), 10),
		"gid":                 strconv.FormatUint(uint64(e.GID), 10),
	}
	for _, x := range e.Xattrs {
		recs["SCHILY.xattr."+x.Name] = string(x.Value)
	}
	var pax bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		pax.WriteString(paxRecord(k, recs[k]))
	}
	base := path.Base(e.Path)
	xhdr, err := ustarBlock(&tar.Header{Name: "PaxHeaders.0/" + ustarName(base), Size: int64(pax.Len())}, tar.TypeXHeader)
	if err != nil {
		return nil, err
	}
	fhdr, err := ustarBlock(&tar.Header{Name: "GNUSparseFile.0/" + ustarName(base), Mode: int64(e.Mode), Size: size, ModTime: time.Unix(e.Mtime/1e9, 0)}, tar.TypeReg)
	if err != nil {
		return nil, err
	}
	out := append(xhdr, pax.Bytes()...)
	out = append(out, make([]byte, pad512(int64(pax.Len())))...)
	return append(out, fhdr...), nil
}

// ustarBlock formats hdr as a ustar header block of type typ: archive/tar
// formats it as a regular file, and the type byte and checksum are set
// here, as archive/tar refuses to write PAX headers it did not make.
func ustarBlock(hdr *tar.Header, typ byte) ([]byte, error) {
	var b bytes.Buffer
	hdr.Typeflag, hdr.Format = tar.TypeReg, tar.FormatUSTAR
	if err := tar.NewWriter(&b).WriteHeader(hdr); err != nil {
		return nil, err
	}
	blk := b.Bytes()[:512]
	blk[156] = typ
	copy(blk[148:156], "        ")
	var sum int64
	for _, c := range blk {
		sum += int64(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return blk, nil
}

// paxRecord formats one PAX record: "LEN KEY=VALUE\n", LEN counting itself.
func paxRecord(k, v string) string {
	rest := " " + k + "=" + v + "\n"
	n := len(rest) + 1
	for n < len(rest)+len(strconv.Itoa(n)) {
		n++
	}
	return strconv.Itoa(n) + rest
}

// formatPAXTime formats nanoseconds since the epoch as PAX does.
func formatPAXTime(ns int64) string {
	t := time.Unix(0, ns)
	s := strconv.FormatInt(t.Unix(), 10)
	if frac := t.Nanosecond(); frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%09d", frac), "0")
	}
	return s
}

// ustarName is name as ustar can hold it (at most 80 ASCII bytes), for
// readers that do not know the sparse format; the others read the whole
// name from GNU.sparse.name.
func ustarName(name string) string {
	b := []byte(name[:min(len(name), 80)])
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '_'
		}
	}
	return string(b)
}
