package fstest

import (
	"fmt"
	"maps"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// posixCases are a POSIX check of the whole system call surface, in the
// shape of pjdfstest's tests per system call (chmod, chown, link, mkdir,
// mkfifo, mknod, open, rename, rmdir, symlink, truncate, ftruncate,
// unlink, utimensat, posix_fallocate) and as broad: every path error of
// every path call (ENOTDIR, ENAMETOOLONG at NAME_MAX and PATH_MAX, ENOENT,
// ELOOP, EACCES, EEXIST); permission checks for the owner, a group
// member, another user and root with and without CAP_DAC_OVERRIDE,
// CAP_FOWNER, CAP_FSETID, CAP_CHOWN and CAP_MKNOD, on template entries
// and on entries the case makes; sticky directories; the set-id bits
// write, truncate and chown clear; link counts; and which of mtime and
// ctime, of the entry and of its directories, each operation updates.
// A caller's expectations come from the kernel's own rules (caller.may,
// caller.mayDelete, setidKept), so that each target must satisfy them,
// not merely agree with the reference. Each caller is a thread of the
// test with its own credentials (caller.enter). Cases are named
// posix/<system call>/<what>. Left out: pjdfstest's chflags and granular
// (BSD flags, NFSv4 ACLs), and EROFS, ENOSPC, EMLINK, EFAULT and ETXTBSY,
// which need a read-only or full filesystem, 65000 links, a bad pointer
// or a running program on the mount.
func posixCases() map[string]func(f fsT) {
	m := map[string]func(f fsT){}
	for _, group := range []map[string]func(f fsT){posixPathCases(), posixPermCases(), posixSetidCases(),
		posixTimeCases(), posixFileCases(), posixDirCases(), posixStickyCases(), posixMiscCases()} {
		maps.Copy(m, group)
	}
	return m
}

// pathOp is a system call on one path, for the path cases.
type pathOp struct {
	call func(p string) func() error
	// creates: the call makes p, which must not exist (EEXIST when it
	// does, unless it replaces).
	creates, replaces bool
	// follows: the call follows a symbolic link at p.
	follows bool
	// dir: the call wants p to be a directory.
	dir bool
}

// pathOps are the path system calls. Calls that make a second name
// (link, rename) undo it on success, so that every step starts alike.
var pathOps = map[string]pathOp{
	"chmod":     {call: func(p string) func() error { return opChmod(p, 0o640) }, follows: true},
	"chown":     {call: func(p string) func() error { return opChown(p, 1, 1) }},
	"open":      {call: func(p string) func() error { return opOpen(p, unix.O_RDONLY, 0) }, follows: true},
	"creat":     {call: func(p string) func() error { return opOpen(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644) }, creates: true},
	"mkdir":     {call: func(p string) func() error { return opMkdir(p, 0o755) }, creates: true},
	"mkfifo":    {call: func(p string) func() error { return opMknod(p, unix.S_IFIFO|0o644, 0) }, creates: true},
	"mknod":     {call: func(p string) func() error { return opMknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))) }, creates: true},
	"symlink":   {call: func(p string) func() error { return opSymlink("target", p) }, creates: true},
	"rmdir":     {call: opRmdir, dir: true},
	"unlink":    {call: opUnlink},
	"truncate":  {call: func(p string) func() error { return opTruncate(p, 1) }, follows: true},
	"utimensat": {call: func(p string) func() error { return opUtimes(p, nil, 0) }, follows: true},
	"lstat":     {call: opStat},
	"setxattr":  {call: func(p string) func() error { return opSetxattr(p, "user.posix") }},
	"link-from": {call: func(p string) func() error {
		return undone(opLink(p, "tmp/link-to"), opUnlink("tmp/link-to"))
	}},
	"link-to": {call: func(p string) func() error { return opLink("tmp/src", p) }, creates: true},
	"rename-from": {call: func(p string) func() error {
		return undone(opRename(p, "tmp/renamed"), opRename("tmp/renamed", p))
	}},
	"rename-to": {call: func(p string) func() error {
		return undone(opRename("tmp/src", p), opRename(p, "tmp/src"))
	}, creates: true, replaces: true},
}

// undone runs call, and undo when call succeeds.
func undone(call, undo func() error) func() error {
	return func() error {
		err := call()
		if err == nil {
			if uerr := undo(); uerr != nil {
				return uerr
			}
		}
		return err
	}
}

// The names of the path cases: a chain of directories of 250-byte names
// under tmp leaves room for a last name of pathMaxLast bytes in a
// relative path of PATH_MAX-1 bytes.
var (
	name255     = strings.Repeat("n", 255)
	name256     = strings.Repeat("n", 256)
	pathMaxDirs = func() string {
		p := "tmp"
		for range 16 {
			p += "/" + strings.Repeat("p", 250)
		}
		return p
	}()
	pathMaxLast = unix.PathMax - 1 - len(pathMaxDirs) - 1
)

// posixPathCases are, for every path system call, pjdfstest's path tests
// (ENOTDIR, ENAMETOOLONG for a name and a path, ENOENT, EACCES for search
// and for write, ELOOP, EEXIST) and the edges: a 255-byte name and a
// PATH_MAX-1-byte relative path work, one byte more does not.
func posixPathCases() map[string]func(f fsT) {
	m := map[string]func(f fsT){}
	for name, op := range pathOps {
		m["posix/"+name+"/path-errors"] = func(f fsT) { f.pathErrors(op) }
		m["posix/"+name+"/name-max-path-max"] = func(f fsT) { f.pathEdges(op) }
	}
	return m
}

// pathErrors checks the errors of op on bad paths, on template entries
// and on entries the case makes.
func (f fsT) pathErrors(op pathOp) {
	// The source of link-to and rename-to belongs to the other caller,
	// whom the sticky /tmp lets move it.
	f.mk("tmp/src", 0o666, byOther.uid, byOther.gid)
	f.write("tmp/file", "file")
	f.ok(os.Symlink("loop", f.p("tmp/loop")))
	f.ok(os.Mkdir(f.p("tmp/closed"), 0o700))
	steps := []step{
		fails("component is a template file", op.call("etc/passwd/x"), unix.ENOTDIR),
		fails("component is a new file", op.call("tmp/file/x"), unix.ENOTDIR),
		fails("256-byte name", op.call("tmp/"+name256), unix.ENAMETOOLONG),
		fails("256-byte directory name", op.call("tmp/"+name256+"/x"), unix.ENAMETOOLONG),
		fails("missing directory", op.call("tmp/missing/x"), unix.ENOENT),
		fails("missing template directory", op.call("tree/missing/x"), unix.ENOENT),
		fails("empty path", op.call(""), unix.ENOENT),
		fails("symbolic link loop in the path", op.call("tmp/loop/x"), unix.ELOOP),
	}
	if !op.creates {
		steps = append(steps, fails("missing entry", op.call("tmp/missing"), unix.ENOENT),
			fails("missing template entry", op.call("tree/missing"), unix.ENOENT))
	}
	if op.follows {
		steps = append(steps, fails("symbolic link loop at the end", op.call("tmp/loop"), unix.ELOOP))
	}
	if op.creates && !op.replaces {
		steps = append(steps, fails("existing template file", op.call("etc/passwd"), unix.EEXIST),
			fails("existing template directory", op.call("tree"), unix.EEXIST),
			fails("existing dangling symbolic link", op.call("dangling"), unix.EEXIST),
			fails("existing new file", op.call("tmp/file"), unix.EEXIST))
	}
	f.as(byRoot, steps...)
	f.as(byOther,
		fails("no search on a template directory", op.call("home/user/x"), unix.EACCES),
		fails("no search on a new directory", op.call("tmp/closed/x"), unix.EACCES))
	if op.creates {
		f.as(byOther, fails("no write on a template directory", op.call("etc/x"), unix.EACCES))
	}
	for _, p := range []string{"tmp/src", "tmp/file", "tmp/loop", "tmp/closed"} {
		f.ok(os.Remove(f.p(p)))
	}
}

// pathEdges checks op on a 255-byte name and on a PATH_MAX-1-byte path,
// and that one byte more gives ENAMETOOLONG.
func (f fsT) pathEdges(op pathOp) {
	f.write("tmp/src", "src")
	long := pathMaxDirs + "/" + strings.Repeat("l", pathMaxLast)
	var prep []step
	for d := "tmp"; d != pathMaxDirs; {
		d = pathMaxDirs[:len(d)+251]
		prep = append(prep, ok("mkdir "+d[:20], opMkdir(d, 0o755)))
	}
	if !op.creates {
		for _, p := range []string{"tmp/" + name255, long} {
			if op.dir {
				prep = append(prep, ok("make the directory", opMkdir(p, 0o755)))
			} else {
				prep = append(prep, ok("make the file", opOpen(p, unix.O_CREAT|unix.O_WRONLY, 0o644)))
			}
		}
	}
	f.as(byRoot, prep...)
	if len(long) != unix.PathMax-1 {
		f.Fatalf("long path of %d bytes", len(long))
	}
	f.as(byRoot,
		ok("255-byte name", op.call("tmp/"+name255)),
		ok("path of PATH_MAX-1 bytes", op.call(long)),
		fails("path of PATH_MAX bytes", op.call(long+"l"), unix.ENAMETOOLONG),
		fails("path of PATH_MAX bytes to a missing entry", op.call(pathMaxDirs+"/"+strings.Repeat("m", pathMaxLast+1)), unix.ENAMETOOLONG))
	for _, p := range []string{"tmp/src", "tmp/" + name255, "tmp/" + strings.Repeat("p", 250)} {
		f.ok(os.RemoveAll(f.p(p)))
	}
}

// ownerOnly is the errno of a call only the owner (or CAP_FOWNER) may
// make on name: EACCES when c cannot reach it, EPERM when c does not own
// it.
func (f fsT) ownerOnly(c caller, name string) syscall.Errno {
	f.Helper()
	switch {
	case !f.mayPath(c, name, 0):
		return unix.EACCES
	case !c.owns(f.stat(name)):
		return unix.EPERM
	}
	return 0
}

// matrixModes are the modes of the permission matrix: each bit alone,
// none, and the classes that grant what the caller's own class does not.
var matrixModes = []uint32{0, 0o400, 0o200, 0o100, 0o040, 0o020, 0o010, 0o004, 0o002, 0o001, 0o077, 0o707, 0o770, 0o666, 0o111}

// lowerEntries are template entries of several modes and owners, as the
// fixture has them.
var lowerEntries = []string{"etc/passwd", "etc/shadow", "bin/tool", "bin/sg", "home/user/notes",
	"home/user/same-content", "empty-file", "empty-dir", "home/user", "tmp", "tree/sub"}

// posixPermCases are pjdfstest's permission tests (open 06, chmod 07,
// chown 07, utimensat 02-06, ...) for every caller: reading, writing,
// executing and searching files and directories of every mode, and the
// calls only an owner may make.
func posixPermCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"posix/open/permission-matrix-new": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/m"), 0o755))
			var names []string
			for _, mode := range matrixModes {
				names = append(names, f.modeName("tmp/m/f", mode, ""), f.modeName("tmp/m/d", mode, "/"))
			}
			f.permissionMatrix(names...)
			f.ok(os.RemoveAll(f.p("tmp/m")))
		},
		"posix/open/permission-matrix-template": func(f fsT) { f.permissionMatrix(lowerEntries...) },
		"posix/chmod/owner-only": func(f fsT) {
			f.ownerOnlyCall(func(p string) func() error { return opChmod(p, 0o604) })
		},
		"posix/utimensat/set-times-owner-only": func(f fsT) {
			f.ownerOnlyCall(func(p string) func() error {
				return opUtimes(p, []unix.Timespec{{Sec: 100}, {Sec: 200}}, 0)
			})
		},
		"posix/utimensat/now-owner-or-writer": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/o"), 0o755))
			for _, c := range allCallers {
				for _, mode := range []uint32{0o644, 0o666, 0o000} {
					name := f.modeName("tmp/o/"+c.name+"-", mode, "")
					f.ok(os.Lchown(f.p(name), 1000, 1000))
					st := f.stat(name)
					f.as(c, allow("UTIME_NOW on "+name, opUtimes(name, nil, 0), c.owns(st) || c.may(st, unix.W_OK), unix.EACCES))
				}
			}
			f.ok(os.RemoveAll(f.p("tmp/o")))
		},
		"posix/chown/who-may-give-and-take": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/o"), 0o755))
			for _, c := range append(allCallers, byRootNoChown) {
				name := "tmp/o/" + c.name
				f.mk(name, 0o644, 1000, 1000)
				chown := c.has(unix.CAP_CHOWN)
				f.as(c,
					allow("give the file away", opChown(name, 1002, -1), chown, unix.EPERM),
					allow("take the file", opChown(name, c.uid, -1), chown || c.uid == 1000, unix.EPERM),
					allow("group the owner is in", opChown(name, -1, 1000), chown || c.uid == 1000, unix.EPERM),
					allow("group the owner is not in", opChown(name, -1, 1002), chown, unix.EPERM),
					ok("-1 -1 changes nothing", opChown(name, -1, -1)))
			}
			f.ok(os.RemoveAll(f.p("tmp/o")))
		},
		"posix/chown/owner-changes-group": func(f fsT) {
			f.mk("tmp/g", 0o644, 1000, 1000)
			f.as(byOwner, ok("chown to the owner's group", opChown("tmp/g", 1000, 1000)))
			f.wantOwner("tmp/g", 1000, 1000)
			member := byMember
			member.uid = 1000
			f.as(member, ok("chown to a supplementary group", opChown("tmp/g", -1, 50)))
			f.wantOwner("tmp/g", 1000, 50)
			f.ok(os.Remove(f.p("tmp/g")))
		},
		"posix/setxattr/user-permission": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/x"), 0o755))
			f.mk("tmp/x/sticky/", 0o1777, 1000, 1000)
			f.ok(os.Symlink("target", f.p("tmp/x/link")))
			for _, c := range allCallers {
				for _, mode := range []uint32{0o644, 0o666, 0o600} {
					name := f.modeName("tmp/x/"+c.name+"-", mode, "")
					f.ok(os.Lchown(f.p(name), 1000, 1000))
					f.as(c, allow("user xattr on "+name, opSetxattr(name, "user.x"), c.may(f.stat(name), unix.W_OK), unix.EACCES),
						allow("read user xattr of "+name, opGetxattr(name, "user.none"), c.may(f.stat(name), unix.R_OK), unix.EACCES))
				}
				st := f.stat("tmp/x/sticky")
				f.as(c,
					fails("user xattr on a symbolic link", opSetxattr("tmp/x/link", "user.x"), unix.EPERM),
					allow("trusted xattr", opSetxattr("tmp/x/"+c.name+"-0666", "trusted.x"), c.uid == 0, unix.EPERM),
					allow("user xattr on a sticky directory of another", opSetxattr("tmp/x/sticky", "user."+c.name), c.owns(st), unix.EPERM),
					allow("user xattr on the template's notes", opSetxattr("home/user/notes", "user."+c.name),
						f.mayPath(c, "home/user/notes", unix.W_OK), unix.EACCES))
			}
			f.ok(os.RemoveAll(f.p("tmp/x")))
		},
	}
}

// modeName makes prefix+mode (a file, or a directory when suffix is
// "/") of that mode and owned by 1000:1000, and returns its name.
func (f fsT) modeName(prefix string, mode uint32, suffix string) string {
	f.Helper()
	name := fmt.Sprintf("%s%04o", prefix, mode)
	f.mk(name+suffix, mode, 1000, 1000)
	return name
}

// permissionMatrix has every caller read, write, execute and search
// names as its class allows.
func (f fsT) permissionMatrix(names ...string) {
	f.Helper()
	for _, c := range allCallers {
		var steps []step
		for _, name := range names {
			st := f.stat(name)
			may := func(mask uint32) bool { return f.mayPath(c, name, mask) }
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				steps = append(steps,
					allow("list "+name, opReaddir(name), may(unix.R_OK), unix.EACCES),
					expect("look up in "+name, opStat(name+"/missing"), either(may(unix.X_OK), unix.ENOENT, unix.EACCES)),
					allow("create in "+name, undone(opMkdir(name+"/new", 0o755), opRmdir(name+"/new")), may(unix.W_OK|unix.X_OK), unix.EACCES),
					fails("open "+name+" for writing", opOpen(name, unix.O_WRONLY, 0), either(may(0), unix.EISDIR, unix.EACCES)))
				continue
			}
			steps = append(steps,
				allow("read "+name, opOpen(name, unix.O_RDONLY, 0), may(unix.R_OK), unix.EACCES),
				allow("write "+name, opOpen(name, unix.O_WRONLY, 0), may(unix.W_OK), unix.EACCES),
				allow("read and write "+name, opOpen(name, unix.O_RDWR, 0), may(unix.R_OK|unix.W_OK), unix.EACCES),
				allow("access X_OK "+name, opAccess(name, unix.X_OK), may(unix.X_OK), unix.EACCES),
				allow("access R_OK|W_OK "+name, opAccess(name, unix.R_OK|unix.W_OK), may(unix.R_OK|unix.W_OK), unix.EACCES),
				allow("truncate to its size "+name, opTruncate(name, st.Size), may(unix.W_OK), unix.EACCES))
		}
		f.as(c, steps...)
	}
}

// ownerOnlyCall has every caller make call, which only the owner (or
// CAP_FOWNER) may, on a new file and on a template file of the owner's.
func (f fsT) ownerOnlyCall(call func(p string) func() error) {
	f.Helper()
	f.ok(os.Mkdir(f.p("tmp/o"), 0o755))
	for _, c := range allCallers {
		name := "tmp/o/" + c.name
		f.mk(name, 0o666, 1000, 1000)
		f.as(c,
			expect("on a new file", call(name), f.ownerOnly(c, name)),
			expect("on a template file", call("home/user/notes"), f.ownerOnly(c, "home/user/notes")),
			expect("on a template file of root's", call("etc/passwd"), f.ownerOnly(c, "etc/passwd")))
	}
	f.ok(os.RemoveAll(f.p("tmp/o")))
}

// setidOps are the calls that change a file's data, which clear its
// set-user-ID and set-group-ID bits for a caller without CAP_FSETID.
var setidOps = map[string]func(p string) func() error{
	"write":      opWrite,
	"truncate":   func(p string) func() error { return opTruncate(p, 1) },
	"open-trunc": func(p string) func() error { return opOpen(p, unix.O_WRONLY|unix.O_TRUNC, 0) },
	"ftruncate": func(p string) func() error {
		return opOnFd(p, unix.O_WRONLY, func(fd int) error { return unix.Ftruncate(fd, 1) })
	},
	"posix_fallocate": func(p string) func() error {
		return opOnFd(p, unix.O_WRONLY, func(fd int) error { return unix.Fallocate(fd, 0, 0, 8192) })
	},
}

// setidKept is the mode a change of its data leaves a file of mode and
// group gid when c makes it (setattr_should_drop_suidgid): without
// CAP_FSETID, set-user-ID goes, and set-group-ID when the group may
// execute or c is not in the group.
func setidKept(c caller, mode, gid uint32) uint32 {
	if c.has(unix.CAP_FSETID) {
		return mode
	}
	mode &^= unix.S_ISUID
	if mode&unix.S_IXGRP != 0 || !c.inGroup(gid) {
		mode &^= unix.S_ISGID
	}
	return mode
}

// posixSetidCases are pjdfstest's chmod/12 and chown/00 set-id tests,
// for every caller and every call that changes data, and for chown and
// chmod.
func posixSetidCases() map[string]func(f fsT) {
	m := map[string]func(f fsT){
		"posix/chown/clears-setid": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/s"), 0o755))
			for i, r := range chownSetid {
				name := fmt.Sprintf("tmp/s/%d", i)
				if r.dir {
					name += "/"
				}
				f.mk(name, r.mode, 1000, 1000)
				f.as(r.by, ok(fmt.Sprintf("chown %s %d:%d", name, r.uid, r.gid), opChown(name, r.uid, r.gid)))
				f.wantMode(name, r.want)
			}
			f.ok(os.RemoveAll(f.p("tmp/s")))
		},
		"posix/chmod/setgid-needs-group": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/s"), 0o755))
			for i, r := range chmodSetgid {
				name := fmt.Sprintf("tmp/s/%d", i)
				if r.dir {
					name += "/"
				}
				f.mk(name, 0o644, 1000, r.gid)
				f.as(r.by, ok(fmt.Sprintf("chmod %s %04o", name, r.mode), opChmod(name, r.mode)))
				f.wantMode(name, r.want)
			}
			f.ok(os.RemoveAll(f.p("tmp/s")))
		},
	}
	for name, call := range setidOps {
		m["posix/"+name+"/clears-setid"] = func(f fsT) { f.setidCleared(call) }
	}
	for name, call := range fdSetidOps {
		m["posix/"+name+"/clears-setid-set-after-open"] = func(f fsT) { f.setidSetAfterOpen(call) }
	}
	return m
}

// fdSetidOps are the calls on a descriptor that change a file's data.
var fdSetidOps = map[string]func(fd int) error{
	"write": func(fd int) error {
		_, err := unix.Write(fd, []byte("w"))
		return err
	},
	"ftruncate":       func(fd int) error { return unix.Ftruncate(fd, 1) },
	"posix_fallocate": func(fd int) error { return unix.Fallocate(fd, 0, 0, 8192) },
}

// setidSetAfterOpen has every caller open files for writing, root give
// them set-id bits, and the caller then change them through the
// descriptor: the bits must go as if they had been there at the open.
func (f fsT) setidSetAfterOpen(call func(fd int) error) {
	f.ok(os.Mkdir(f.p("tmp/s"), 0o755))
	for _, c := range allCallers {
		for _, mode := range []uint32{0o4777, 0o2777, 0o2767} {
			name := fmt.Sprintf("tmp/s/%s-%04o", c.name, mode)
			f.mk(name, 0o777, 1000, 1000)
			chmod := func() error { return elsewhere(func() error { return unix.Chmod(f.p(name), mode) }) }
			f.as(c, ok("change "+name, opOnFd(name, unix.O_WRONLY, func(fd int) error {
				if err := chmod(); err != nil {
					return err
				}
				return call(fd)
			})))
			f.wantMode(name, setidKept(c, mode, 1000))
		}
	}
	f.ok(os.RemoveAll(f.p("tmp/s")))
}

// elsewhere runs call on another thread, as the test's own root.
func elsewhere(call func() error) error {
	ch := make(chan error)
	go func() { ch <- call() }()
	return <-ch
}

// setidCleared has every caller change files of every set-id mode with
// call, and root with and without CAP_FSETID template files.
func (f fsT) setidCleared(call func(p string) func() error) {
	f.ok(os.Mkdir(f.p("tmp/s"), 0o755))
	for _, c := range allCallers {
		for _, mode := range []uint32{0o4777, 0o2777, 0o6777, 0o2767, 0o6767} {
			name := f.modeName("tmp/s/"+c.name+"-", mode, "")
			f.as(c, ok("change "+name, call(name)))
			f.wantMode(name, setidKept(c, mode, 1000))
		}
	}
	f.ok(os.RemoveAll(f.p("tmp/s")))
	for _, c := range []caller{byRoot, byRootNoFsetid} {
		f.as(c, ok("change bin/tool", call("bin/tool")), ok("change bin/sg", call("bin/sg")))
	}
	f.wantMode("bin/tool", 0o755)
	f.wantMode("bin/sg", 0o755)
}

// chownSetid are chowns and the modes they leave: chown clears
// set-user-ID even for root, set-group-ID when the group may execute, and
// a set-group-ID without group execute only for a caller outside the
// group without CAP_FSETID; directories keep both.
var chownSetid = []struct {
	by       caller
	mode     uint32
	uid, gid int
	want     uint32
	dir      bool
}{
	{byOwner, 0o6755, -1, 1000, 0o0755, false},
	{byOwner, 0o2745, -1, 1000, 0o2745, false},
	{byOwner, 0o4755, -1, -1, 0o0755, false},
	{byRoot, 0o4755, 1002, 1002, 0o0755, false},
	{byRoot, 0o2755, 1002, 1002, 0o0755, false},
	{byRoot, 0o2745, 1002, 1002, 0o2745, false},
	{byRoot, 0o6755, -1, -1, 0o0755, false},
	{byRootNoFsetid, 0o2745, 1002, 1002, 0o0745, false},
	{byRootNoFsetid, 0o4745, 1002, -1, 0o0745, false},
	{byRoot, 0o6755, 1002, 1002, 0o6755, true},
	{byOwner, 0o3775, -1, 1000, 0o3775, true},
}

// chmodSetgid are chmods that ask for set-group-ID on a file or
// directory of group gid, and the mode they leave: the bit is dropped for
// a caller outside the group without CAP_FSETID.
var chmodSetgid = []struct {
	by   caller
	gid  int
	mode uint32
	want uint32
	dir  bool
}{
	{byOwner, 50, 0o2755, 0o0755, false},
	{byOwner, 1000, 0o2755, 0o2755, false},
	{byOwner, 50, 0o2755, 0o0755, true},
	{byOwner, 50, 0o4755, 0o4755, false},
	{byOwner, 50, 0o1644, 0o1644, false},
	{byRoot, 50, 0o2755, 0o2755, false},
	{byRootNoFsetid, 50, 0o2755, 0o0755, false},
	{byRootNoFsetid, 50, 0o6755, 0o4755, false},
}

// times says whether an operation changes mtime and ctime.
type times struct{ m, c bool }

// The times an operation changes; the zero times changes none.
var (
	ctimeOnly = times{c: true}
	both      = times{true, true}
)

// timeRule is an operation on a file in a directory (and another
// directory, dest) and which times of each it changes, after POSIX and
// pjdfstest's time checks.
type timeRule struct {
	prep            func(file, dir, dest string) []step
	call            func(file, dir, dest string) func() error
	moved           func(file, dir, dest string) string
	file, dir, dest times
}

var timeRules = map[string]timeRule{
	"write":      {call: func(file, _, _ string) func() error { return opWrite(file) }, file: both},
	"read":       {call: func(file, _, _ string) func() error { return opOnFd(file, unix.O_RDONLY, readAll) }},
	"chmod":      {call: func(file, _, _ string) func() error { return opChmod(file, 0o600) }, file: ctimeOnly},
	"chown":      {call: func(file, _, _ string) func() error { return opChown(file, 7, 8) }, file: ctimeOnly},
	"utimensat":  {call: func(file, _, _ string) func() error { return opUtimes(file, nil, 0) }, file: both},
	"truncate":   {call: func(file, _, _ string) func() error { return opTruncate(file, 1) }, file: both},
	"ftruncate":  {call: func(file, _, _ string) func() error { return setidOps["ftruncate"](file) }, file: both},
	"open-trunc": {call: func(file, _, _ string) func() error { return setidOps["open-trunc"](file) }, file: both},
	// Read-only: on kernel overlayfs with metacopy=on an open for
	// writing copies up the data of a file whose metadata alone was
	// copied up (as age's utimensat does), and that copy sets the mtime
	// to now; ext4 leaves it. That is the copy-up's, not O_CREAT's.
	"open-creat-existing": {call: func(file, _, _ string) func() error {
		return opOpen(file, unix.O_CREAT|unix.O_RDONLY, 0o644)
	}},
	"posix_fallocate": {call: func(file, _, _ string) func() error { return setidOps["posix_fallocate"](file) }, file: both},
	"setxattr":        {call: func(file, _, _ string) func() error { return opSetxattr(file, "user.t") }, file: ctimeOnly},
	"fchmod":          {call: onFd(unix.O_RDONLY, func(fd int) error { return unix.Fchmod(fd, 0o600) }), file: ctimeOnly},
	"fchown":          {call: onFd(unix.O_RDONLY, func(fd int) error { return unix.Fchown(fd, 7, 8) }), file: ctimeOnly},
	"futimens":        {call: onFd(unix.O_RDONLY, func(fd int) error { return unix.UtimesNanoAt(fd, "", nil, unix.AT_EMPTY_PATH) }), file: both},
	"fsetxattr":       {call: onFd(unix.O_RDONLY, func(fd int) error { return unix.Fsetxattr(fd, "user.t", []byte("v"), 0) }), file: ctimeOnly},
	"pwrite":          {call: onFd(unix.O_WRONLY, func(fd int) error { _, err := unix.Pwrite(fd, []byte("p"), 2); return err }), file: both},
	"mmap-write":      {call: onFd(unix.O_RDWR, mmapWrite), file: both},
	"link": {call: func(file, _, dest string) func() error { return opLink(file, dest+"/l") },
		file: ctimeOnly, dest: both},
	"unlink": {prep: func(file, _, dest string) []step { return []step{ok("link", opLink(file, dest+"/keep"))} },
		call:  func(file, _, _ string) func() error { return opUnlink(file) },
		moved: func(_, _, dest string) string { return dest + "/keep" }, file: ctimeOnly, dir: both},
	"rename": {call: func(file, _, dest string) func() error { return opRename(file, dest+"/moved") },
		moved: func(_, _, dest string) string { return dest + "/moved" }, file: ctimeOnly, dir: both, dest: both},
	"rename-same-dir": {call: func(file, dir, _ string) func() error { return opRename(file, dir+"/moved") },
		moved: func(_, dir, _ string) string { return dir + "/moved" }, file: ctimeOnly, dir: both},
	"rename-over": {prep: func(_, _, dest string) []step {
		return []step{ok("victim", opMknod(dest+"/victim", unix.S_IFREG|0o644, 0))}
	},
		call:  func(file, _, dest string) func() error { return opRename(file, dest+"/victim") },
		moved: func(_, _, dest string) string { return dest + "/victim" }, file: ctimeOnly, dir: both, dest: both},
	"mkdir":   {call: func(_, dir, _ string) func() error { return opMkdir(dir+"/new", 0o755) }, dir: both},
	"creat":   {call: func(_, dir, _ string) func() error { return opOpen(dir+"/new", unix.O_CREAT|unix.O_WRONLY, 0o644) }, dir: both},
	"mkfifo":  {call: func(_, dir, _ string) func() error { return opMknod(dir+"/new", unix.S_IFIFO|0o644, 0) }, dir: both},
	"symlink": {call: func(_, dir, _ string) func() error { return opSymlink("t", dir+"/new") }, dir: both},
	"rmdir": {prep: func(_, dir, _ string) []step { return []step{ok("mkdir", opMkdir(dir+"/gone", 0o755))} },
		call: func(_, dir, _ string) func() error { return opRmdir(dir + "/gone") }, dir: both},
	"readdir":   {call: func(_, dir, _ string) func() error { return opReaddir(dir) }},
	"chmod-dir": {call: func(_, dir, _ string) func() error { return opChmod(dir, 0o700) }, dir: ctimeOnly},
	"rename-dir": {prep: func(_, dir, _ string) []step { return []step{ok("mkdir", opMkdir(dir+"/d", 0o755))} },
		call: func(_, dir, dest string) func() error { return opRename(dir+"/d", dest+"/d") }, dir: both, dest: both},
}

// onFd is a time rule's call on a descriptor of the file.
func onFd(flags int, call func(fd int) error) func(file, _, _ string) func() error {
	return func(file, _, _ string) func() error { return opOnFd(file, flags, call) }
}

// mmapWrite changes the first byte of fd's file through a shared mapping.
func mmapWrite(fd int) error {
	m, err := unix.Mmap(fd, 0, 1, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	m[0] = 'M'
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return err
	}
	return unix.Munmap(m)
}

func readAll(fd int) error {
	_, err := unix.Read(fd, make([]byte, 64))
	return err
}

// posixTimeCases check, for every operation, which of mtime and ctime it
// changes on the file, its directory and the other directory it names,
// on new entries and on template entries.
func posixTimeCases() map[string]func(f fsT) {
	m := map[string]func(f fsT){}
	for name, r := range timeRules {
		m["posix/times/"+name+"-new"] = func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/t"), 0o755))
			f.ok(os.Mkdir(f.p("tmp/u"), 0o755))
			f.write("tmp/t/f", "ffff")
			f.timeRule(r, "tmp/t/f", "tmp/t", "tmp/u")
		}
		m["posix/times/"+name+"-template"] = func(f fsT) { f.timeRule(r, "tree/sub/y", "tree/sub", "tree") }
	}
	return m
}

func (f fsT) timeRule(r timeRule, file, dir, dest string) {
	if r.prep != nil {
		f.as(byRoot, r.prep(file, dir, dest)...)
	}
	before := f.age(file, dir, dest)
	f.as(byRoot, ok("the operation", r.call(file, dir, dest)))
	if r.moved != nil {
		file = r.moved(file, dir, dest)
	}
	f.wantTimes(file, before[0], r.file.m, r.file.c)
	f.wantTimes(dir, before[1], r.dir.m, r.dir.c)
	f.wantTimes(dest, before[2], r.dest.m, r.dest.c)
}

// posixFileCases are pjdfstest's tests of calls on files beyond paths and
// permissions: link counts, what creation makes, open's flags, sizes.
func posixFileCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"posix/link/counts-and-identity": func(f fsT) {
			f.write("tmp/a", "a")
			f.ok(os.Mkdir(f.p("tmp/d"), 0o755))
			f.as(byRoot, ok("link a new file", opLink("tmp/a", "tmp/b")), ok("link it again", opLink("tmp/b", "tmp/d/c")),
				ok("link a template file", opLink("etc/passwd", "tmp/pw")),
				ok("link a symbolic link, not its target", opLink("dangling", "tmp/dl")),
				fails("link a directory", opLink("tree", "tmp/tree"), unix.EPERM),
				fails("link a new directory", opLink("tmp/d", "tmp/d2"), unix.EPERM),
				fails("link over an entry", opLink("tmp/a", "etc/passwd"), unix.EEXIST))
			f.wantLinks("tmp/a", 3)
			f.wantLinks("etc/passwd", 2)
			f.wantLinks("dangling", 2)
			if a, c, l := f.stat("tmp/a"), f.stat("tmp/d/c"), f.stat("tmp/dl"); a.Ino != c.Ino || l.Mode&unix.S_IFMT != unix.S_IFLNK {
				f.Errorf("links: ino %d and %d, link mode %o", a.Ino, c.Ino, l.Mode)
			}
			f.as(byRoot, ok("unlink one", opUnlink("tmp/b")), ok("unlink the symlink's link", opUnlink("tmp/dl")))
			f.wantLinks("tmp/d/c", 2)
			f.wantLinks("dangling", 1)
			f.wantContent("tmp/d/c", "a")
			f.ok(os.RemoveAll(f.p("tmp/d")))
			f.ok(os.Remove(f.p("tmp/a")))
			f.ok(os.Remove(f.p("tmp/pw")))
		},
		"posix/link/protected-hardlinks": func(f fsT) {
			b, err := os.ReadFile("/proc/sys/fs/protected_hardlinks")
			f.ok(err)
			protected := strings.TrimSpace(string(b)) == "1"
			f.mk("tmp/h/", 0o777, 0, 0)
			f.mk("tmp/h/roots", 0o600, 0, 0)
			f.mk("tmp/h/setuid", 0o4777, 1000, 1000)
			f.mk("tmp/h/own", 0o600, byOther.uid, byOther.gid)
			f.as(byOther, allow("link a file one may not read or write", opLink("tmp/h/roots", "tmp/h/o1"), !protected, unix.EPERM),
				allow("link a set-user-ID file of another", opLink("tmp/h/setuid", "tmp/h/o2"), !protected, unix.EPERM),
				ok("link one's own file", undone(opLink("tmp/h/own", "tmp/h/x"), opUnlink("tmp/h/x"))))
			f.as(byOwner, ok("link one's own set-user-ID file", opLink("tmp/h/setuid", "tmp/h/w1")))
			f.as(byRootNoFowner, allow("link a set-user-ID file of another", opLink("tmp/h/setuid", "tmp/h/r1"), !protected, unix.EPERM))
			f.as(byRoot, ok("link a set-user-ID file of another", opLink("tmp/h/setuid", "tmp/h/r2")))
			f.ok(os.RemoveAll(f.p("tmp/h")))
		},
		"posix/unlink/open-file-and-types": func(f fsT) {
			f.write("tmp/a", "still here")
			f.ok(os.Mkdir(f.p("tmp/d"), 0o755))
			fd, err := os.Open(f.p("tmp/a"))
			f.ok(err)
			defer fd.Close()
			f.as(byRoot, ok("unlink an open file", opUnlink("tmp/a")),
				fails("unlink a template directory", opUnlink("tree"), unix.EISDIR),
				fails("unlink a new directory", opUnlink("tmp/d"), unix.EISDIR),
				ok("unlink a symbolic link, not its target", opUnlink("abs-link")),
				ok("unlink a device", opUnlink("dev/null")), ok("unlink a fifo", opUnlink("dev/fifo")))
			f.wantContent("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
			f.ok(os.Remove(f.p("tmp/d")))
			var st unix.Stat_t
			f.ok(unix.Fstat(int(fd.Fd()), &st))
			b := make([]byte, 20)
			n, _ := fd.ReadAt(b, 0)
			if st.Nlink != 0 || string(b[:n]) != "still here" {
				f.Errorf("unlinked open file: nlink %d, reads %q", st.Nlink, b[:n])
			}
		},
		"posix/open/create-mode-and-owner": func(f fsT) {
			f.mk("tmp/c/", 0o777, 0, 0)
			f.mk("tmp/c/existing", 0o600, 0, 0)
			f.ok(os.Symlink("target", f.p("tmp/c/dangling")))
			owner := byOwner
			owner.umask = 0o027
			f.as(owner, ok("create", opOpen("tmp/c/new", unix.O_CREAT|unix.O_WRONLY, 0o777)),
				ok("create set-id and sticky", opOpen("tmp/c/setid", unix.O_CREAT|unix.O_WRONLY, 0o7777)),
				fails("O_CREAT on an existing file one may not write", opOpen("tmp/c/existing", unix.O_CREAT|unix.O_WRONLY, 0o777), unix.EACCES),
				ok("O_CREAT through a dangling symbolic link", opOpen("tmp/c/dangling", unix.O_CREAT|unix.O_WRONLY, 0o640)),
				fails("O_CREAT on a directory", opOpen("tmp/c", unix.O_CREAT|unix.O_WRONLY, 0o640), unix.EISDIR),
				fails("O_CREAT with a trailing slash", opOpen("tmp/c/slash/", unix.O_CREAT|unix.O_WRONLY, 0o640), unix.EISDIR))
			f.wantMode("tmp/c/new", 0o750)
			f.wantOwner("tmp/c/new", 1000, 1000)
			f.wantMode("tmp/c/setid", 0o7750)
			f.wantMode("tmp/c/existing", 0o600)
			f.wantMode("tmp/c/target", 0o640)
			f.wantOwner("tmp/c/target", 1000, 1000)
			f.ok(os.RemoveAll(f.p("tmp/c")))
		},
		"posix/open/flags": func(f fsT) {
			f.ok(os.Symlink("../etc/passwd", f.p("tmp/l")))
			f.as(byRoot, fails("O_DIRECTORY on a file", opOpen("etc/passwd", unix.O_RDONLY|unix.O_DIRECTORY, 0), unix.ENOTDIR),
				fails("trailing slash on a file", opOpen("etc/passwd/", unix.O_RDONLY, 0), unix.ENOTDIR),
				fails("O_NOFOLLOW on a symbolic link", opOpen("tmp/l", unix.O_RDONLY|unix.O_NOFOLLOW, 0), unix.ELOOP),
				fails("O_NOFOLLOW on a template symbolic link", opOpen("abs-link", unix.O_RDONLY|unix.O_NOFOLLOW, 0), unix.ELOOP),
				ok("O_NOFOLLOW|O_PATH on a symbolic link", opOpen("tmp/l", unix.O_PATH|unix.O_NOFOLLOW, 0)),
				ok("O_DIRECTORY on a directory", opOpen("tree", unix.O_RDONLY|unix.O_DIRECTORY, 0)),
				fails("O_WRONLY on a directory", opOpen("tree", unix.O_WRONLY, 0), unix.EISDIR),
				fails("O_RDWR on a directory", opOpen("tmp", unix.O_RDWR, 0), unix.EISDIR),
				fails("O_TMPFILE on a file", opOpen("etc/passwd", unix.O_TMPFILE|unix.O_RDWR, 0o600), unix.ENOTDIR),
				fails("O_CREAT|O_DIRECTORY", opOpen("tmp/new", unix.O_CREAT|unix.O_DIRECTORY|unix.O_RDONLY, 0o600), unix.EINVAL),
				fails("O_WRONLY|O_NONBLOCK on a template fifo without reader", opOpen("dev/fifo", unix.O_WRONLY, 0), unix.ENXIO),
				ok("O_RDONLY|O_NONBLOCK on a template fifo", opOpen("dev/fifo", unix.O_RDONLY, 0)),
				ok("mkfifo", opMknod("tmp/fifo", unix.S_IFIFO|0o644, 0)),
				fails("O_WRONLY|O_NONBLOCK on a new fifo without reader", opOpen("tmp/fifo", unix.O_WRONLY, 0), unix.ENXIO))
			f.ok(os.Remove(f.p("tmp/l")))
			f.ok(os.Remove(f.p("tmp/fifo")))
		},
		"posix/truncate/sizes": func(f fsT) {
			f.write("tmp/t", "0123456789")
			f.as(byRoot, ok("grow", opTruncate("tmp/t", 20)), ok("shrink a template file", opTruncate("etc/passwd", 4)),
				fails("negative length", opTruncate("tmp/t", -1), unix.EINVAL),
				fails("a template directory", opTruncate("tree", 0), unix.EISDIR),
				fails("a fifo", opTruncate("dev/fifo", 0), unix.EINVAL),
				fails("beyond the largest file", opTruncate("tmp/t", 1<<62), unix.EFBIG),
				fails("write beyond the largest file", opOnFd("tmp/t", unix.O_WRONLY, func(fd int) error {
					_, err := unix.Pwrite(fd, []byte("x"), 1<<62)
					return err
				}), unix.EFBIG),
				ok("shrink", opTruncate("tmp/t", 5)), ok("grow again", opTruncate("tmp/t", 8)))
			f.wantContent("tmp/t", "01234\x00\x00\x00")
			f.wantContent("etc/passwd", "root")
		},
		"posix/ftruncate/descriptors": func(f fsT) {
			f.write("tmp/t", "0123456789")
			owner := byOwner
			owner.umask = 0
			f.mk("tmp/o/", 0o777, 0, 0)
			f.mk("tmp/o/own", 0o644, 1000, 1000)
			f.as(owner,
				fails("read-only descriptor", opOnFd("tmp/t", unix.O_RDONLY, func(fd int) error { return unix.Ftruncate(fd, 1) }), unix.EINVAL, unix.EBADF),
				fails("directory", opOnFd("tree", unix.O_RDONLY, func(fd int) error { return unix.Ftruncate(fd, 1) }), unix.EINVAL, unix.EBADF),
				ok("a file created with mode 0", func() error {
					fd, err := unix.Open("tmp/o/zero", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0)
					if err != nil {
						return err
					}
					defer unix.Close(fd)
					return unix.Ftruncate(fd, 3)
				}),
				ok("a file whose mode went to 0 after the open", opOnFd("tmp/o/later", unix.O_CREAT|unix.O_WRONLY, func(fd int) error {
					if err := unix.Fchmod(fd, 0); err != nil {
						return err
					}
					return unix.Ftruncate(fd, 5)
				})),
				fails("negative length", opOnFd("tmp/o/own", unix.O_WRONLY, func(fd int) error { return unix.Ftruncate(fd, -1) }), unix.EINVAL))
			for name, size := range map[string]int64{"tmp/o/zero": 3, "tmp/o/later": 5} {
				if st := f.stat(name); st.Size != size || st.Mode&0o7777 != 0 {
					f.Errorf("%s: size %d mode %o, want %d and 0", name, st.Size, st.Mode, size)
				}
			}
			f.ok(os.RemoveAll(f.p("tmp/o")))
		},
		"posix/posix_fallocate/sizes-and-errors": func(f fsT) {
			f.write("tmp/a", "abc")
			alloc := func(p string, flags, mode int, off, n int64) func() error {
				return opOnFd(p, flags, func(fd int) error { return unix.Fallocate(fd, uint32(mode), off, n) })
			}
			f.as(byRoot, ok("extend", alloc("tmp/a", unix.O_WRONLY, 0, 0, 10000)),
				ok("keep size", alloc("tmp/a", unix.O_WRONLY, unix.FALLOC_FL_KEEP_SIZE, 0, 100000)),
				ok("extend a template file", alloc("etc/passwd", unix.O_RDWR, 0, 100, 100)),
				fails("read-only descriptor", alloc("tmp/a", unix.O_RDONLY, 0, 0, 1), unix.EBADF),
				fails("zero length", alloc("tmp/a", unix.O_WRONLY, 0, 0, 0), unix.EINVAL),
				fails("negative offset", alloc("tmp/a", unix.O_WRONLY, 0, -1, 1), unix.EINVAL),
				fails("a fifo", alloc("dev/fifo", unix.O_RDWR|unix.O_NONBLOCK, 0, 0, 1), unix.ESPIPE))
			if a, p := f.stat("tmp/a"), f.stat("etc/passwd"); a.Size != 10000 || p.Size != 200 {
				f.Errorf("sizes after fallocate: %d and %d", a.Size, p.Size)
			}
			if b := f.read("tmp/a"); string(b[:3]) != "abc" || b[9999] != 0 {
				f.Error("fallocate changed the data")
			}
		},
		"posix/mknod/types-and-privilege": func(f fsT) {
			f.mk("tmp/n/", 0o777, 0, 0)
			dev := int(unix.Mkdev(1, 3))
			for _, c := range []caller{byOwner, byRoot, byRootNoMknod} {
				p := "tmp/n/" + c.name
				f.as(c, ok("fifo", opMknod(p+"-fifo", unix.S_IFIFO|0o640, 0)),
					ok("regular file", opMknod(p+"-reg", unix.S_IFREG|0o640, 0)),
					ok("socket", opMknod(p+"-sock", unix.S_IFSOCK|0o640, 0)),
					allow("character device", opMknod(p+"-chr", unix.S_IFCHR|0o640, dev), c.has(unix.CAP_MKNOD), unix.EPERM),
					allow("block device", opMknod(p+"-blk", unix.S_IFBLK|0o640, int(unix.Mkdev(8, 1))), c.has(unix.CAP_MKNOD), unix.EPERM),
					fails("directory", opMknod(p+"-dir", unix.S_IFDIR|0o755, 0), unix.EPERM),
					fails("no such type", opMknod(p+"-bad", 0o170000|0o644, 0), unix.EINVAL))
				for suffix, typ := range map[string]uint32{"-fifo": unix.S_IFIFO, "-reg": unix.S_IFREG, "-sock": unix.S_IFSOCK} {
					if st := f.stat(p + suffix); st.Mode != typ|0o640 || st.Uid != uint32(c.uid) {
						f.Errorf("%s%s: mode %o uid %d", p, suffix, st.Mode, st.Uid)
					}
				}
			}
			if st := f.stat("tmp/n/root-chr"); st.Rdev != uint64(dev) || st.Mode != unix.S_IFCHR|0o640 {
				f.Errorf("device: mode %o rdev %x", st.Mode, st.Rdev)
			}
			f.ok(os.RemoveAll(f.p("tmp/n")))
		},
		"posix/symlink/targets": func(f fsT) {
			f.mk("tmp/s/", 0o777, 0, 0)
			long := strings.Repeat("t/", (unix.PathMax-1)/2) + "t"
			f.as(byOwner, ok("symlink", opSymlink("../some/target", "tmp/s/l")),
				ok("target of PATH_MAX-1 bytes", opSymlink(long, "tmp/s/long")),
				fails("target of PATH_MAX bytes", opSymlink(long+"t", "tmp/s/toolong"), unix.ENAMETOOLONG),
				fails("empty target", opSymlink("", "tmp/s/empty"), unix.ENOENT))
			st := f.stat("tmp/s/l")
			if st.Mode != unix.S_IFLNK|0o777 || st.Uid != 1000 || st.Size != int64(len("../some/target")) {
				f.Errorf("symlink: mode %o uid %d size %d", st.Mode, st.Uid, st.Size)
			}
			if t, err := os.Readlink(f.p("tmp/s/long")); err != nil || t != long {
				f.Errorf("long target: %d bytes, %v", len(t), err)
			}
			f.ok(os.RemoveAll(f.p("tmp/s")))
		},
	}
}

// posixDirCases are pjdfstest's tests of mkdir, rmdir and rename beyond
// paths: modes, owners and link counts of what they make, set-group-ID
// directories, the errors of each type of entry, and who may move what.
func posixDirCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"posix/mkdir/mode-owner-links": func(f fsT) {
			f.mk("tmp/d/", 0o777, 0, 0)
			f.mk("tmp/e/", 0o777, 0, 0)
			owner, masked := byOwner, byOwner
			owner.umask, masked.umask = 0, 0o027
			f.as(owner, ok("mkdir 07777", opMkdir("tmp/d/a", 0o7777)))
			f.as(masked, ok("mkdir 0777 under umask 027", opMkdir("tmp/d/b", 0o777)))
			f.wantMode("tmp/d/a", 0o1777)
			f.wantMode("tmp/d/b", 0o750)
			f.wantOwner("tmp/d/a", 1000, 1000)
			f.wantLinks("tmp/d/a", 2)
			f.wantLinks("tmp/d", 4)
			f.as(byRoot, ok("rmdir", opRmdir("tmp/d/a")), ok("rename to another directory", opRename("tmp/d/b", "tmp/e/b")),
				ok("rename in the directory", opRename("tmp/e/b", "tmp/e/c")))
			f.wantLinks("tmp/d", 2)
			f.wantLinks("tmp/e", 3)
			f.ok(os.RemoveAll(f.p("tmp/d")))
			f.ok(os.RemoveAll(f.p("tmp/e")))
		},
		"posix/mkdir/setgid-directory": func(f fsT) {
			f.mk("tmp/g/", 0o2777, 0, 50)
			other, member := byOther, byMember
			other.umask, member.umask = 0, 0
			f.as(other, ok("mkdir", opMkdir("tmp/g/d", 0o755)),
				ok("create set-group-ID, group-executable", opOpen("tmp/g/f", unix.O_CREAT|unix.O_WRONLY, 0o2755)),
				ok("create set-group-ID, not group-executable", opOpen("tmp/g/f2", unix.O_CREAT|unix.O_WRONLY, 0o2745)),
				ok("mkfifo", opMknod("tmp/g/p", unix.S_IFIFO|0o644, 0)),
				ok("symlink", opSymlink("t", "tmp/g/l")))
			f.as(member, ok("create set-group-ID as a member", opOpen("tmp/g/m", unix.O_CREAT|unix.O_WRONLY, 0o2755)))
			for name, mode := range map[string]uint32{"d": 0o2755, "f": 0o755, "f2": 0o2745, "p": 0o644, "m": 0o2755} {
				f.wantMode("tmp/g/"+name, mode)
			}
			for _, name := range []string{"d", "f", "f2", "p", "l", "m"} {
				if st := f.stat("tmp/g/" + name); st.Gid != 50 {
					f.Errorf("tmp/g/%s: group %d, want the directory's 50", name, st.Gid)
				}
			}
			f.ok(os.RemoveAll(f.p("tmp/g")))
		},
		"posix/rmdir/errors": func(f fsT) {
			f.ok(os.MkdirAll(f.p("tmp/d/e"), 0o755))
			f.ok(os.Symlink("d", f.p("tmp/dl")))
			f.as(byRoot, fails("template directory with entries", opRmdir("tree"), unix.ENOTEMPTY, unix.EEXIST),
				fails("new directory with entries", opRmdir("tmp/d"), unix.ENOTEMPTY, unix.EEXIST),
				ok("unlink all but one entry of a template directory", opUnlink("tree/x")),
				fails("template directory with one template entry left", opRmdir("tree"), unix.ENOTEMPTY, unix.EEXIST),
				fails(". at the end", opRmdir("tmp/d/e/."), unix.EINVAL),
				fails(".. at the end", opRmdir("tmp/d/e/.."), unix.ENOTEMPTY),
				fails("the mount's root", opRmdir("."), unix.EINVAL, unix.EBUSY),
				fails("a template file", opRmdir("etc/passwd"), unix.ENOTDIR),
				fails("a symbolic link to a directory", opRmdir("tmp/dl"), unix.ENOTDIR),
				fails("a template symbolic link", opRmdir("bin/sh"), unix.ENOTDIR),
				ok("an empty new directory", opRmdir("tmp/d/e")),
				ok("an empty template directory", opRmdir("empty-dir")))
			f.ok(os.RemoveAll(f.p("tmp/d")))
			f.ok(os.Remove(f.p("tmp/dl")))
		},
		"posix/rename/errors-by-type": func(f fsT) {
			f.ok(os.MkdirAll(f.p("tmp/d/sub"), 0o755))
			f.ok(os.MkdirAll(f.p("tmp/full/x"), 0o755))
			f.ok(os.Mkdir(f.p("tmp/empty"), 0o755))
			f.write("tmp/f", "f")
			f.as(byRoot, fails("file over a directory", opRename("tmp/f", "tmp/empty"), unix.EISDIR),
				fails("file over a template directory", opRename("tmp/f", "empty-dir"), unix.EISDIR),
				fails("directory over a file", opRename("tmp/empty", "tmp/f"), unix.ENOTDIR),
				fails("directory over a template file", opRename("tmp/empty", "etc/passwd"), unix.ENOTDIR),
				fails("directory over a directory with entries", opRename("tmp/empty", "tmp/full"), unix.ENOTEMPTY, unix.EEXIST),
				fails("directory over a template directory with entries", opRename("tmp/empty", "tree"), unix.ENOTEMPTY, unix.EEXIST),
				fails("directory into itself", opRename("tmp/d", "tmp/d/sub/d"), unix.EINVAL),
				fails("template directory into itself", opRename("tree", "tree/sub/tree"), unix.EINVAL),
				fails(". as source", opRename("tmp/d/.", "tmp/x"), unix.EBUSY, unix.EINVAL),
				fails(".. as target", opRename("tmp/f", "tmp/d/.."), unix.EBUSY, unix.EINVAL, unix.ENOTEMPTY),
				fails("file with a trailing slash", opRename("tmp/f/", "tmp/g"), unix.ENOTDIR),
				ok("file onto itself", opRename("tmp/f", "tmp/f")),
				ok("directory with a trailing slash", opRename("tmp/d/", "tmp/d2/")),
				ok("directory over an empty directory", opRename("tmp/d2", "tmp/empty")),
				ok("symbolic link, not its target", opRename("abs-link", "tmp/moved-link")))
			f.wantContent("tmp/f", "f")
			f.wantNames("tmp/empty", "sub")
			f.wantContent("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
			for _, p := range []string{"tmp/d", "tmp/full", "tmp/empty", "tmp/f", "tmp/moved-link"} {
				f.ok(os.RemoveAll(f.p(p)))
			}
		},
		"posix/rename/same-inode-and-open-target": func(f fsT) {
			f.write("tmp/a", "a")
			f.ok(os.Link(f.p("tmp/a"), f.p("tmp/b")))
			f.write("tmp/victim", "victim")
			fd, err := os.Open(f.p("tmp/victim"))
			f.ok(err)
			defer fd.Close()
			ino := f.stat("tmp/a").Ino
			f.as(byRoot, ok("rename onto another link of the file", opRename("tmp/a", "tmp/b")),
				ok("rename over an open file", opRename("tmp/b", "tmp/victim")),
				ok("rename a template file over another", opRename("bin/ping", "bin/sg")))
			f.wantLinks("tmp/a", 2)
			if st := f.stat("tmp/victim"); st.Ino != ino {
				f.Errorf("renamed file: ino %d, want %d", st.Ino, ino)
			}
			var st unix.Stat_t
			f.ok(unix.Fstat(int(fd.Fd()), &st))
			b := make([]byte, 10)
			n, _ := fd.ReadAt(b, 0)
			if st.Nlink != 0 || string(b[:n]) != "victim" {
				f.Errorf("replaced open file: nlink %d, reads %q", st.Nlink, b[:n])
			}
			f.wantContent("bin/sg", "ping binary")
			f.gone("bin/ping")
			f.ok(os.Remove(f.p("tmp/a")))
			f.ok(os.Remove(f.p("tmp/victim")))
		},
		"posix/rename/directory-needs-write-on-itself": func(f fsT) {
			f.mk("tmp/r/", 0o777, 0, 0)
			f.mk("tmp/r2/", 0o777, 0, 0)
			for _, c := range allCallers {
				d := "tmp/r/" + c.name
				f.mk(d+"/", 0o555, 1000, 1000)
				may := c.may(f.stat(d), unix.W_OK)
				f.as(c, ok("in its directory", opRename(d, d+"-renamed")),
					allow("to another directory", opRename(d+"-renamed", "tmp/r2/"+c.name), may, unix.EACCES))
			}
			f.ok(os.RemoveAll(f.p("tmp/r")))
			f.ok(os.RemoveAll(f.p("tmp/r2")))
		},
		"posix/rename/permission": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/p"), 0o755))
			f.mk("tmp/p/open/", 0o777, 0, 0)
			modes := []uint32{0o755, 0o775, 0o777, 0o555, 0o733, 0o300}
			for _, mode := range modes {
				f.modeName("tmp/p/", mode, "/")
			}
			for _, c := range allCallers {
				var steps []step
				for _, mode := range modes {
					dir := fmt.Sprintf("tmp/p/%04o", mode)
					f.ok(unix.Chmod(f.p(dir), 0o777))
					from, to := dir+"/"+c.name, "tmp/p/open/"+c.name+"-"+dir[6:]
					f.mk(from, 0o644, 1000, 1000)
					f.mk(to, 0o644, 1000, 1000)
					f.ok(unix.Chmod(f.p(dir), mode))
					dst := f.stat(dir)
					steps = append(steps,
						expect("move out of "+dir, opRename(from, to+"-out"), c.mayDelete(dst, f.stat(from))),
						allow("move into "+dir, opRename(to, from+"-in"), c.may(dst, unix.W_OK|unix.X_OK), unix.EACCES))
				}
				f.as(c, steps...)
			}
			f.ok(os.RemoveAll(f.p("tmp/p")))
		},
	}
}

// stickyDirs are a template sticky directory (root's /tmp), a new one of
// another owner, a new one that is not sticky, one only its owner may
// write, and a template one only its owner may search.
var stickyDirs = []string{"tmp", "tmp/sticky", "tmp/plain", "tmp/closed", "home/user"}

// posixStickyCases are pjdfstest's sticky-directory tests (unlink 11,
// rmdir 11, rename 09): who may remove or rename away an entry, or
// rename over one, in a sticky directory and in one that is not.
func posixStickyCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"posix/unlink/sticky": func(f fsT) { f.sticky(false, func(p string) func() error { return opUnlink(p) }) },
		"posix/rmdir/sticky":  func(f fsT) { f.sticky(true, func(p string) func() error { return opRmdir(p) }) },
		"posix/rename/sticky-source": func(f fsT) {
			f.sticky(false, func(p string) func() error { return opRename(p, p+"-renamed") })
		},
		"posix/rename/sticky-target": func(f fsT) {
			f.sticky(false, func(p string) func() error {
				return opRename("tmp/src/"+strings.ReplaceAll(p, "/", "-"), p)
			})
		},
	}
}

// sticky has every caller call on an entry (a directory when dirs) of
// each owner in each of stickyDirs, as mayDelete allows. Each caller
// owns tmp/src/<entry with dashes>, for rename-over.
func (f fsT) sticky(dirs bool, call func(p string) func() error) {
	f.mk("tmp/sticky/", 0o1777, 1000, 1000)
	f.mk("tmp/plain/", 0o777, 1000, 1000)
	f.mk("tmp/closed/", 0o755, 1000, 1000)
	f.mk("tmp/src/", 0o777, 0, 0)
	suffix := ""
	if dirs {
		suffix = "/"
	}
	for _, c := range allCallers {
		var steps []step
		for _, dir := range stickyDirs {
			for _, owner := range []int{0, 1000, 1001, 1002} {
				p := fmt.Sprintf("%s/%s-%d", dir, c.name, owner)
				f.mk(p+suffix, 0o644, owner, owner)
				f.mk("tmp/src/"+strings.ReplaceAll(p, "/", "-"), 0o644, c.uid, c.gid)
				steps = append(steps, expect(p, call(p), c.mayDelete(f.stat(dir), f.stat(p))))
			}
		}
		f.as(c, steps...)
	}
	for _, p := range []string{"tmp/sticky", "tmp/plain", "tmp/closed", "tmp/src"} {
		f.ok(os.RemoveAll(f.p(p)))
	}
	for _, c := range allCallers {
		for _, owner := range []int{0, 1000, 1001, 1002} {
			for _, dir := range []string{"tmp", "home/user"} {
				f.ok(os.RemoveAll(f.p(fmt.Sprintf("%s/%s-%d", dir, c.name, owner))))
				f.ok(os.RemoveAll(f.p(fmt.Sprintf("%s/%s-%d-renamed", dir, c.name, owner))))
			}
		}
	}
}

// posixMiscCases are pjdfstest's utimensat value tests and the calls on
// types they do not apply to.
func posixMiscCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"posix/utimensat/values": func(f fsT) {
			f.write("tmp/u", "u")
			for _, ts := range [][2]unix.Timespec{
				{{Sec: 100, Nsec: 1}, {Sec: 200, Nsec: 999_999_999}},
				{{Sec: -1000, Nsec: 5}, {Sec: -86400 * 365, Nsec: 7}},
				{{Sec: 1 << 33}, {Sec: 1<<33 + 1, Nsec: 3}},
				{{Nsec: unix.UTIME_OMIT}, {Sec: 12345, Nsec: 6789}},
			} {
				for _, name := range []string{"tmp/u", "bin/ping", "empty-dir"} {
					before := f.stat(name)
					f.as(byRoot, ok(fmt.Sprintf("utimensat %s %v", name, ts), opUtimes(name, ts[:], 0)))
					st := f.stat(name)
					wantA := ts[0]
					if ts[0].Nsec == unix.UTIME_OMIT {
						wantA = before.Atim
					}
					if st.Atim != wantA || st.Mtim != ts[1] {
						f.Errorf("%s: atime %v mtime %v, want %v %v", name, st.Atim, st.Mtim, wantA, ts[1])
					}
				}
			}
			f.as(byRoot, fails("nanoseconds out of range", opUtimes("tmp/u", []unix.Timespec{{Nsec: 1e9}, {}}, 0), unix.EINVAL),
				fails("bad flags", opUtimes("tmp/u", nil, 0x4000), unix.EINVAL))
		},
		"posix/chmod/by-descriptor": func(f fsT) {
			fchmod := func(fd int) error { return unix.Fchmod(fd, 0o600) }
			fchown := func(fd int) error { return unix.Fchown(fd, -1, 1002) }
			for _, c := range allCallers {
				name := "tmp/" + c.name
				f.mk(name, 0o644, 1000, 1000)
				onFd := func(flags int, call func(fd int) error) func() error { return opOnFd(name, flags, call) }
				f.as(c, fails("fchmod on an O_PATH descriptor", onFd(unix.O_PATH, fchmod), unix.EBADF),
					allow("fchown", onFd(unix.O_RDONLY, fchown), c.has(unix.CAP_CHOWN), unix.EPERM),
					allow("fchmod", onFd(unix.O_RDONLY, fchmod), c.owns(f.stat(name)), unix.EPERM))
				gid, mode := 1000, uint32(0o644)
				if c.has(unix.CAP_CHOWN) {
					gid = 1002
				}
				if c.owns(f.stat(name)) {
					mode = 0o600
				}
				f.wantOwner(name, 1000, gid)
				f.wantMode(name, mode)
				f.ok(os.Remove(f.p(name)))
			}
		},
		"posix/creat/owner-of-new-entries": func(f fsT) {
			for _, c := range allCallers {
				p := "tmp/" + c.name
				f.as(c, ok("creat", opOpen(p+"-f", unix.O_CREAT|unix.O_WRONLY, 0o644)),
					ok("mkdir", opMkdir(p+"-d", 0o755)), ok("mkfifo", opMknod(p+"-p", unix.S_IFIFO|0o644, 0)),
					ok("symlink", opSymlink("t", p+"-l")), ok("link", opLink(p+"-f", p+"-h")))
				for _, suffix := range []string{"-f", "-d", "-p", "-l", "-h"} {
					f.wantOwner(p+suffix, c.uid, c.gid)
					f.ok(os.Remove(f.p(p + suffix)))
				}
			}
		},
		"posix/chown/large-ids": func(f fsT) {
			f.write("tmp/big", "b")
			for _, id := range []int{65535, 65536, 1 << 31, 4_294_967_294} {
				f.as(byRoot, ok(fmt.Sprint("chown to ", id), opChown("tmp/big", id, id)))
				f.wantOwner("tmp/big", id, id)
			}
			f.as(byRoot, ok("lchown a template symbolic link", opChown("bin/sh", 1<<31, 3_000_000_000)))
			f.wantOwner("bin/sh", 1<<31, 3_000_000_000)
			f.as(byRoot, ok("chown through a template symbolic link", func() error { return unix.Chown("bin/sh", 5, 6) }))
			f.wantOwner("bin/tool", 5, 6)
			f.wantMode("bin/tool", 0o755)
			f.ok(os.Remove(f.p("tmp/big")))
		},
		"posix/chmod/types": func(f fsT) {
			f.ok(os.Symlink("../etc/passwd", f.p("tmp/l")))
			nofollow := func(p string) func() error {
				return func() error { return unix.Fchmodat(unix.AT_FDCWD, p, 0o600, unix.AT_SYMLINK_NOFOLLOW) }
			}
			f.as(byRoot, fails("fchmodat2 AT_SYMLINK_NOFOLLOW on a symbolic link", nofollow("tmp/l"), unix.EOPNOTSUPP),
				fails("fchmodat2 AT_SYMLINK_NOFOLLOW on a template symbolic link", nofollow("abs-link"), unix.EOPNOTSUPP),
				ok("fchmodat2 AT_SYMLINK_NOFOLLOW on a file", nofollow("bin/ping")),
				ok("chmod through a symbolic link", opChmod("tmp/l", 0o640)),
				ok("chmod through a template symbolic link", opChmod("bin/sh", 0o4750)),
				ok("chmod a fifo", opChmod("dev/fifo", 0o640)), ok("chmod a device", opChmod("dev/sda", 0o600)),
				fails("readlink a file", func() error { _, err := unix.Readlink("etc/passwd", make([]byte, 64)); return err }, unix.EINVAL))
			f.wantMode("bin/ping", 0o600)
			f.wantMode("etc/passwd", 0o640)
			f.wantMode("bin/tool", 0o4750)
			f.wantMode("dev/fifo", 0o640)
			f.wantMode("dev/sda", 0o600)
			f.wantMode("tmp/l", 0o777)
			f.ok(os.Remove(f.p("tmp/l")))
		},
	}
}
