package fstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// caller is who the system calls of a step run as: user and group IDs,
// supplementary groups, the capabilities a root caller runs without, and
// the umask.
type caller struct {
	name     string
	uid, gid int
	groups   []int
	drop     []int
	umask    int
}

// The callers of the posix cases. The fixture's /home/user belongs to
// 1000:1000, /empty-dir to 7:8 and /bin/sg to group 50: byMember is in
// those groups without owning anything.
var (
	byRoot         = caller{name: "root", umask: 0o022}
	byOwner        = caller{name: "owner", uid: 1000, gid: 1000, groups: []int{1000}, umask: 0o022}
	byMember       = caller{name: "group-member", uid: 1001, gid: 1001, groups: []int{1001, 1000, 8, 50}, umask: 0o022}
	byOther        = caller{name: "other", uid: 1002, gid: 1002, groups: []int{1002}, umask: 0o022}
	byRootNoDAC    = caller{name: "root-without-CAP_DAC_OVERRIDE", drop: []int{unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH}, umask: 0o022}
	byRootNoFowner = caller{name: "root-without-CAP_FOWNER", drop: []int{unix.CAP_FOWNER}, umask: 0o022}
	byRootNoFsetid = caller{name: "root-without-CAP_FSETID", drop: []int{unix.CAP_FSETID}, umask: 0o022}
	byRootNoChown  = caller{name: "root-without-CAP_CHOWN", drop: []int{unix.CAP_CHOWN}, umask: 0o022}
	byRootNoMknod  = caller{name: "root-without-CAP_MKNOD", drop: []int{unix.CAP_MKNOD}, umask: 0o022}

	allCallers = []caller{byRoot, byOwner, byMember, byOther, byRootNoDAC, byRootNoFowner, byRootNoFsetid}
)

func (c caller) has(capability int) bool { return c.uid == 0 && !slices.Contains(c.drop, capability) }

func (c caller) inGroup(gid uint32) bool {
	return uint32(c.gid) == gid || slices.Contains(c.groups, int(gid))
}

// may is generic_permission: whether c gets mask (of R_OK, W_OK, X_OK) on
// an inode of st's mode and owner.
func (c caller) may(st *unix.Stat_t, mask uint32) bool {
	perm := st.Mode & 7
	switch {
	case uint32(c.uid) == st.Uid:
		perm = st.Mode >> 6 & 7
	case c.inGroup(st.Gid):
		perm = st.Mode >> 3 & 7
	}
	if perm&mask == mask {
		return true
	}
	dir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if c.has(unix.CAP_DAC_OVERRIDE) && (dir || mask&unix.X_OK == 0 || st.Mode&0o111 != 0) {
		return true
	}
	return c.has(unix.CAP_DAC_READ_SEARCH) && (mask == unix.R_OK || dir && mask&unix.W_OK == 0)
}

// owns is inode_owner_or_capable.
func (c caller) owns(st *unix.Stat_t) bool {
	return uint32(c.uid) == st.Uid || c.has(unix.CAP_FOWNER)
}

// mayDelete is may_delete's permission part for removing or renaming
// away an entry of file in dir: write and search on dir, and in a sticky
// directory owning the file or the directory, or CAP_FOWNER.
func (c caller) mayDelete(dir, file *unix.Stat_t) syscall.Errno {
	if !c.may(dir, unix.W_OK|unix.X_OK) {
		return unix.EACCES
	}
	if dir.Mode&unix.S_ISVTX != 0 && uint32(c.uid) != file.Uid && uint32(c.uid) != dir.Uid && !c.has(unix.CAP_FOWNER) {
		return unix.EPERM
	}
	return 0
}

// enter makes the calling thread c, with its own working directory dir
// and umask. The thread must be locked and is never given back: raw
// system calls change the credentials of this thread alone, as
// syscall.Setuid would not.
func (c caller) enter(dir string) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	unix.Umask(c.umask)
	groups := make([]uint32, len(c.groups)+1)
	for i, g := range c.groups {
		groups[i] = uint32(g)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.groups)), uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(c.gid), uintptr(c.gid), uintptr(c.gid)); e != 0 {
		return fmt.Errorf("setresgid: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(c.uid), uintptr(c.uid), uintptr(c.uid)); e != 0 {
		return fmt.Errorf("setresuid: %w", e)
	}
	if len(c.drop) == 0 {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, cp := range c.drop {
		bit := uint32(1) << (cp % 32)
		data[cp/32].Effective &^= bit
		data[cp/32].Permitted &^= bit
		data[cp/32].Inheritable &^= bit
	}
	return unix.Capset(&hdr, &data[0])
}

// step is one system call of a case and the errors it may end with (none:
// it must succeed).
type step struct {
	what string
	call func() error
	want []syscall.Errno
}

func ok(what string, call func() error) step { return step{what: what, call: call} }

func fails(what string, call func() error, want ...syscall.Errno) step {
	return step{what: what, call: call, want: want}
}

// expect is ok when e is 0 and fails with e otherwise.
func expect(what string, call func() error, e syscall.Errno) step {
	if e == 0 {
		return ok(what, call)
	}
	return fails(what, call, e)
}

// either is yes when cond holds and no otherwise.
func either(cond bool, yes, no syscall.Errno) syscall.Errno {
	if cond {
		return yes
	}
	return no
}

// allow is ok when allowed and fails with denied otherwise.
func allow(what string, call func() error, allowed bool, denied syscall.Errno) step {
	if allowed {
		denied = 0
	}
	return expect(what, call, denied)
}

// as runs steps in order as c, on a thread of c's own whose working
// directory is the mount (so paths are relative to it and may be as long
// as PATH_MAX allows), and fails the test for every step that ends
// otherwise than it wants.
func (f fsT) as(c caller, steps ...step) {
	f.Helper()
	errs := make([]error, len(steps))
	var enterErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread ends with the goroutine, but not at once (and the
		// main thread never does): its working directory must not keep
		// the mount busy.
		defer unix.Chdir("/")
		if enterErr = c.enter(f.dir); enterErr != nil {
			return
		}
		for i, s := range steps {
			errs[i] = s.call()
		}
	}()
	<-done
	if enterErr != nil {
		f.Fatalf("become %s: %v", c.name, enterErr)
	}
	for i, s := range steps {
		if !outcome(errs[i], s.want) {
			f.Errorf("%s as %s: got %s, want %s", s.what, c.name, errText(errs[i]), wantText(s.want))
		}
	}
}

func outcome(err error, want []syscall.Errno) bool {
	if len(want) == 0 {
		return err == nil
	}
	return slices.ContainsFunc(want, func(e syscall.Errno) bool { return errors.Is(err, e) })
}

func errText(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	if err == nil {
		return "success"
	}
	return err.Error()
}

func wantText(want []syscall.Errno) string {
	if len(want) == 0 {
		return "success"
	}
	names := make([]string, len(want))
	for i, e := range want {
		names[i] = unix.ErrnoName(e)
	}
	return strings.Join(names, " or ")
}

// The system calls of steps, on paths relative to the mount.

func opChmod(p string, mode uint32) func() error { return func() error { return unix.Chmod(p, mode) } }

func opChown(p string, uid, gid int) func() error {
	return func() error { return unix.Lchown(p, uid, gid) }
}

func opOpen(p string, flags int, mode uint32) func() error {
	return func() error {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC|unix.O_NONBLOCK, mode)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
}

func opAccess(p string, mask uint32) func() error {
	return func() error { return unix.Access(p, mask) }
}

func opMkdir(p string, mode uint32) func() error { return func() error { return unix.Mkdir(p, mode) } }

func opMknod(p string, mode uint32, dev int) func() error {
	return func() error { return unix.Mknod(p, mode, dev) }
}

func opRmdir(p string) func() error  { return func() error { return unix.Rmdir(p) } }
func opUnlink(p string) func() error { return func() error { return unix.Unlink(p) } }

func opLink(from, to string) func() error   { return func() error { return unix.Link(from, to) } }
func opRename(from, to string) func() error { return func() error { return unix.Rename(from, to) } }

func opSymlink(target, p string) func() error { return func() error { return unix.Symlink(target, p) } }

func opTruncate(p string, n int64) func() error { return func() error { return unix.Truncate(p, n) } }

func opStat(p string) func() error {
	return func() error {
		var st unix.Stat_t
		return unix.Lstat(p, &st)
	}
}

func opUtimes(p string, ts []unix.Timespec, flags int) func() error {
	return func() error { return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, flags) }
}

func opSetxattr(p, name string) func() error {
	return func() error { return unix.Lsetxattr(p, name, []byte("v"), 0) }
}

func opGetxattr(p, name string) func() error {
	return func() error {
		_, err := unix.Lgetxattr(p, name, make([]byte, 64))
		if errors.Is(err, unix.ENODATA) {
			return nil // allowed: the attribute is missing
		}
		return err
	}
}

// opOnFd opens p with flags and runs call on the descriptor.
func opOnFd(p string, flags int, call func(fd int) error) func() error {
	return func() error {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		defer unix.Close(fd)
		return call(fd)
	}
}

// opWrite appends a byte to p.
func opWrite(p string) func() error {
	return opOnFd(p, unix.O_WRONLY|unix.O_APPEND, func(fd int) error {
		_, err := unix.Write(fd, []byte("w"))
		return err
	})
}

// opReaddir lists the directory p.
func opReaddir(p string) func() error {
	return func() error {
		_, err := os.ReadDir(p)
		return err
	}
}

// Setting up, as root in the test's own goroutine.

// mk makes name as a regular file (or, for a name ending in "/", a
// directory) with mode and owner, the file holding its name.
func (f fsT) mk(name string, mode uint32, uid, gid int) {
	f.Helper()
	if strings.HasSuffix(name, "/") {
		f.ok(os.Mkdir(f.p(name), 0o700))
	} else {
		f.write(name, filepath.Base(name))
	}
	f.ok(os.Lchown(f.p(name), uid, gid))
	f.ok(unix.Chmod(f.p(name), mode))
}

// oldTime is the mtime and atime the time cases give entries first, to
// see whether an operation changes them.
var oldTime = unix.Timespec{Sec: 1_500_000_000, Nsec: 500}

// stamps are the times of an entry an operation may change.
type stamps struct{ mtime, ctime unix.Timespec }

// age sets the mtime of names to oldTime and returns their times then,
// after a pause long enough for any later change to show in ctime.
func (f fsT) age(names ...string) []stamps {
	f.Helper()
	out := make([]stamps, len(names))
	for i, n := range names {
		f.ok(unix.UtimesNanoAt(unix.AT_FDCWD, f.p(n), []unix.Timespec{oldTime, oldTime}, unix.AT_SYMLINK_NOFOLLOW))
		st := f.stat(n)
		out[i] = stamps{st.Mtim, st.Ctim}
	}
	time.Sleep(20 * time.Millisecond)
	return out
}

// wantTimes checks whether name's mtime and ctime changed since before,
// as changed says.
func (f fsT) wantTimes(name string, before stamps, mtime, ctime bool) {
	f.Helper()
	st := f.stat(name)
	if got := st.Mtim != before.mtime; got != mtime {
		f.Errorf("%s: mtime changed=%v (%v -> %v), want changed=%v", name, got, before.mtime, st.Mtim, mtime)
	}
	if got := st.Ctim != before.ctime; got != ctime {
		f.Errorf("%s: ctime changed=%v (%v -> %v), want changed=%v", name, got, before.ctime, st.Ctim, ctime)
	}
	if mtime && st.Mtim.Nano() < before.ctime.Nano() {
		f.Errorf("%s: mtime %v is older than the operation", name, st.Mtim)
	}
}

// wantOwner checks name's owner.
func (f fsT) wantOwner(name string, uid, gid int) {
	f.Helper()
	if st := f.stat(name); st.Uid != uint32(uid) || st.Gid != uint32(gid) {
		f.Errorf("%s: owner %d:%d, want %d:%d", name, st.Uid, st.Gid, uid, gid)
	}
}

// wantLinks checks name's link count.
func (f fsT) wantLinks(name string, n uint64) {
	f.Helper()
	if st := f.stat(name); st.Nlink != n {
		f.Errorf("%s: %d links, want %d", name, st.Nlink, n)
	}
}

// mayPath is whether c reaches name (search on every directory above it
// inside the mount) and gets mask on it.
func (f fsT) mayPath(c caller, name string, mask uint32) bool {
	f.Helper()
	for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
		if !c.may(f.stat(d), unix.X_OK) {
			return false
		}
	}
	return c.may(f.stat(name), mask)
}
