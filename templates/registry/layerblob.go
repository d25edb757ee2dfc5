package registry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// A layer blob carries what a puller needs to know about one acetate layer:
// a zstd tar holding "chunks", the blobs holding its manifest (see
// chunkEntries), and "packs", the blobs holding its objects in partition
// order, each as lines "DIGEST SIZE".

func encodeLayerBlob(chunks, packs []pack) ([]byte, error) {
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{"chunks", packList(chunks)}, {"packs", packList(packs)}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func packList(packs []pack) []byte {
	var lines strings.Builder
	for _, p := range packs {
		fmt.Fprintf(&lines, "%s %d\n", p.digest, p.size)
	}
	return []byte(lines.String())
}

// decodeLayerBlob reads a layer blob: its chunks and its packs.
func decodeLayerBlob(blob []byte) (chunks, packs []pack, err error) {
	zr, err := zstd.NewReader(bytes.NewReader(blob), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, nil, err
	}
	defer zr.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("layer blob: %w", err)
		}
		if files[hdr.Name], err = io.ReadAll(tr); err != nil {
			return nil, nil, fmt.Errorf("layer blob: %w", err)
		}
	}
	if chunks, err = parsePacks(files["chunks"]); err != nil {
		return nil, nil, err
	}
	if len(chunks) == 0 {
		return nil, nil, fmt.Errorf("layer blob lists no manifest chunks")
	}
	if packs, err = parsePacks(files["packs"]); err != nil {
		return nil, nil, err
	}
	return chunks, packs, nil
}

func parsePacks(b []byte) ([]pack, error) {
	var packs []pack
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var p pack
		var d string
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &d, &p.size); err != nil {
			return nil, fmt.Errorf("pack list line %q: %w", sc.Text(), err)
		}
		p.digest = digest.Digest(d)
		if err := p.digest.Validate(); err != nil || p.size < 0 {
			return nil, fmt.Errorf("pack list line %q: bad digest or size", sc.Text())
		}
		packs = append(packs, p)
	}
	return packs, sc.Err()
}
