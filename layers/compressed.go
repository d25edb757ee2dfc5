package layers

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// MaxTarTrailer is how many bytes a tar stream may hold after its
// end-of-archive marker (GNU tar pads to its 10 KiB record size; a stream
// with more is refused, so that no decompressor is drained without end).
const MaxTarTrailer = 1 << 20

// Uncompressed is the content of a stream that may be compressed (gzip,
// bzip2 or zstd, told by its first bytes; anything else is read as is).
// Compressors check their stream only at its end (gzip's CRC32 and length,
// zstd's frame checksum, bzip2's stream CRC), so a reader that stops early,
// as a tar reader does at the end-of-archive marker, must call Finish.
type Uncompressed struct {
	r     io.Reader
	close func()
	kind  string // of compression, "" for none
	// bad is the first error of the decompressor itself.
	bad error
	tee io.Writer
}

// NewUncompressed starts decompressing r. xz is refused with an error that
// says so: no xz decoder is linked in.
func NewUncompressed(r io.Reader) (*Uncompressed, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("corrupt gzip stream: %w", err)
		}
		return &Uncompressed{r: z, close: func() { z.Close() }, kind: "gzip"}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("corrupt zstd stream: %w", err)
		}
		return &Uncompressed{r: z, close: z.Close, kind: "zstd"}, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return &Uncompressed{r: bzip2.NewReader(br), close: func() {}, kind: "bzip2"}, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, errors.New("xz-compressed streams are not supported; decompress with xz -d first")
	}
	return &Uncompressed{r: br, close: func() {}}, nil
}

// Tee has every decompressed byte, including those Finish reads, also
// written to w (a hash), which must not fail.
func (u *Uncompressed) Tee(w io.Writer) { u.tee = w }

// Read reads decompressed bytes. An error names the compression.
func (u *Uncompressed) Read(p []byte) (int, error) {
	if u.bad != nil {
		return 0, u.bad
	}
	n, err := u.r.Read(p)
	if u.tee != nil {
		u.tee.Write(p[:n])
	}
	if err != nil && err != io.EOF && u.kind != "" {
		err = fmt.Errorf("corrupt %s stream: %w", u.kind, err)
		u.bad = err
	}
	return n, err
}

// Finish reads the stream to its end, so that the decompressor checks it,
// and refuses more than limit bytes of content left.
func (u *Uncompressed) Finish(limit int64) error {
	if u.bad != nil {
		return u.bad
	}
	n, err := io.Copy(io.Discard, io.LimitReader(u, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		return fmt.Errorf("more than %d bytes follow the end of the tar stream", limit)
	}
	return nil
}

// Explain returns the error that says why reading the content failed with
// err: the decompressor's, when its check fails on the rest of the stream
// (a changed byte usually breaks the content before the checksum is read),
// else err.
func (u *Uncompressed) Explain(err error) error {
	if ferr := u.Finish(MaxTarTrailer); u.bad != nil {
		return ferr
	}
	return err
}

// Close releases the decompressor.
func (u *Uncompressed) Close() { u.close() }
