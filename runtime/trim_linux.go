package runtime

import (
	"bufio"
	"bytes"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseFilePagesAfterEachGC has releaseFilePages run after every
// garbage collection of this process (a finalizer, set anew each time,
// says when one ended): a collection, even the runtime's periodic one in
// an idle process, reads the executable's tables of types and stack maps.
func releaseFilePagesAfterEachGC() {
	// 16 bytes: the tiny allocator, which shares a block between
	// smaller objects and so delays their finalizers, leaves it alone.
	type sentinel struct{ _ [16]byte }
	var arm func()
	arm = func() {
		goruntime.SetFinalizer(&sentinel{}, func(*sentinel) {
			releaseFilePages()
			arm()
		})
	}
	arm()
}

// releaseFilePages drops this process's mappings of the pages of files it
// maps read-only and has not changed (its executable's code and read-only
// data, libc's): the supervisor runs most of that code only to start a
// container (and collect garbage: see releaseFilePagesAfterEachGC), and
// sits idle between starts. The pages stay in the page
// cache, shared with every acetate command that runs; the next start maps
// again those it needs, a minor fault each. A mapping holding a private
// copy of any of its pages (relocations made read-only afterwards) is
// left alone, as dropping it would bring back the file's bytes.
func releaseFilePages() {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	var start, end uint64
	readOnlyFile := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		fields := bytes.Fields(line)
		switch {
		case len(fields) >= 5 && bytes.IndexByte(fields[0], '-') > 0 && !bytes.HasSuffix(fields[0], []byte(":")):
			lo, hi, _ := strings.Cut(string(fields[0]), "-")
			start, _ = strconv.ParseUint(lo, 16, 64)
			end, _ = strconv.ParseUint(hi, 16, 64)
			perms := string(fields[1])
			readOnlyFile = string(fields[4]) != "0" && perms[1] == '-' && perms[3] == 'p'
		case readOnlyFile && len(fields) >= 2 && string(fields[0]) == "Anonymous:":
			if string(fields[1]) == "0" {
				unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
			}
			readOnlyFile = false
		}
	}
}
