package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/acetate/acetate/layers"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// A layer manifest travels in chunks: runs of entries, in manifest order,
// cut after every entry whose path's sha256 starts with a byte below 4 (one
// in 64 on average), each a blob holding the run's entries in the store's
// canonical manifest encoding, zstd-compressed. A manifest's encoding is a
// header and then its entries one after the other, so the chunks of a layer
// joined behind the header are its manifest, byte for byte. A cut depends
// only on the path beside it, so two layers that differ by a few paths share
// every other chunk, and a puller rebuilds the chunks of the layers it has
// to fetch only the ones it lacks. The chunks' digests depend on the zstd
// encoder giving the same bytes for the same input, which holds for one
// version of it; when it does not, a chunk is fetched although it was not
// needed, and nothing else changes: the assembled manifest is always checked
// against the layer digest.

// chunk is one run of entries: its encoding and its blob.
type chunk struct {
	payload []byte
	blob    []byte
	digest  digest.Digest
}

// header is what a manifest's encoding holds before its entries.
func header(entries int) []byte {
	empty := (&layers.Manifest{}).Encode() // the magic and a zero count
	return binary.AppendUvarint(empty[:len(empty)-1], uint64(entries))
}

// chunkEntries cuts entries into chunks.
func chunkEntries(entries []layers.Entry) ([]chunk, error) {
	var out []chunk
	start := 0
	for i := range entries {
		if sum := sha256.Sum256([]byte(entries[i].Path)); sum[0] >= 4 && i < len(entries)-1 {
			continue
		}
		run := entries[start : i+1]
		start = i + 1
		payload := (&layers.Manifest{Entries: run}).Encode()[len(header(len(run))):]
		blob, err := compressChunk(payload)
		if err != nil {
			return nil, err
		}
		out = append(out, chunk{payload: payload, blob: blob, digest: digest.FromBytes(blob)})
	}
	return out, nil
}

func compressChunk(payload []byte) ([]byte, error) {
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zw.Close()
	return zw.EncodeAll(payload, nil), nil
}

// decodeChunk returns the payload of a chunk blob.
func decodeChunk(blob []byte) ([]byte, error) {
	zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<28))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	payload, err := zr.DecodeAll(blob, nil)
	if err != nil {
		return nil, fmt.Errorf("manifest chunk: %w", err)
	}
	return payload, nil
}

// localChunks indexes the chunks of every layer in the store by digest.
func localChunks(s *layers.Store) map[digest.Digest][]byte {
	index := map[digest.Digest][]byte{}
	dirs, _ := os.ReadDir(s.LayersDir())
	for _, dir := range dirs {
		m, err := s.ReadLayer(digest.NewDigestFromEncoded(digest.SHA256, dir.Name()))
		if err != nil {
			continue
		}
		chunks, err := chunkEntries(m.Entries)
		if err != nil {
			continue
		}
		for _, c := range chunks {
			index[c.digest] = c.payload
		}
	}
	return index
}

// assemble joins chunk payloads holding n entries into the manifest of layer
// want, and checks it against that digest and the manifest invariants.
func assemble(payloads [][]byte, n int, want digest.Digest) (*layers.Manifest, error) {
	raw := header(n)
	for _, p := range payloads {
		raw = append(raw, p...)
	}
	if got := digest.FromBytes(raw); got != want {
		return nil, fmt.Errorf("layer %s: assembled manifest hashes to %s: %w", want, got, layers.ErrCorrupt)
	}
	m, err := layers.DecodeManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", want, err)
	}
	return m, nil
}
