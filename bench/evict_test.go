package bench

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A file read into the page cache is all there before evictFiles and none
// of it after, and its content is unchanged.
func TestEvictFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "object")
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	if n := cachedPages(t, p); n != len(data)/os.Getpagesize() {
		t.Fatalf("%d pages cached after a read, want all %d", n, len(data)/os.Getpagesize())
	}
	if err := evictFiles(dir); err != nil {
		t.Fatal(err)
	}
	if n := cachedPages(t, p); n != 0 {
		t.Errorf("%d pages still cached after evictFiles", n)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != string(data) {
		t.Errorf("the file after evictFiles: %d bytes, %v", len(b), err)
	}
}

// cachedPages counts the pages of file p in the page cache (mincore(2)).
func cachedPages(t *testing.T, p string) int {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
