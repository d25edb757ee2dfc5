package fuse

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// setattrAt applies in to the upper file a, in the order chown, chmod (so
// that chown's clearing of set-id bits does not undo an explicit mode),
// truncate, utimes (so that truncate does not clobber an explicit mtime).
func setattrAt(a beneath.At, in *fuse.SetAttrIn) syscall.Errno {
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		suid, sgid := -1, -1
		if uok {
			suid = int(uid)
		}
		if gok {
			sgid = int(gid)
		}
		if err := a.Chown(suid, sgid); err != nil {
			return fs.ToErrno(err)
		}
	}
	if m, ok := in.GetMode(); ok {
		if err := a.Chmod(m & 07777); err != nil {
			return fs.ToErrno(err)
		}
	}
	if sz, ok := in.GetSize(); ok {
		if err := a.Truncate(int64(sz)); err != nil {
			return fs.ToErrno(err)
		}
	}
	if errno := killSetIDAt(a, in); errno != 0 {
		return errno
	}
	return setTimes(a, in)
}

func setTimes(a beneath.At, in *fuse.SetAttrIn) syscall.Errno {
	mtime, mok := in.GetMTime()
	atime, aok := in.GetATime()
	if !mok && !aok {
		return 0
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	if aok {
		ts[0] = unix.NsecToTimespec(atime.UnixNano())
	}
	if mok {
		ts[1] = unix.NsecToTimespec(mtime.UnixNano())
	}
	return fs.ToErrno(a.Utimes(ts))
}

// killSetIDAt clears the set-id bits of a when the kernel asks (a truncate
// by a caller without CAP_FSETID: FATTR_KILL_SUIDGID, with
// CAP_HANDLE_KILLPRIV_V2) and the same request sets no mode: the server
// truncates as root, which keeps them.
func killSetIDAt(a beneath.At, in *fuse.SetAttrIn) syscall.Errno {
	if in.Valid&fuse.FATTR_KILL_SUIDGID == 0 || in.Valid&fuse.FATTR_MODE != 0 {
		return 0
	}
	var st unix.Stat_t
	if err := a.Lstat(&st); err != nil {
		return fs.ToErrno(err)
	}
	if mode, drop := withoutSetID(st.Mode); drop {
		return fs.ToErrno(a.Chmod(mode))
	}
	return 0
}

// withoutSetID returns the permission bits of mode without the set-user-ID
// bit and, for a group-executable file, the set-group-ID bit (without
// group execute it marks mandatory locking and stays), and whether that
// drops any.
func withoutSetID(mode uint32) (uint32, bool) {
	if mode&unix.S_IFMT != unix.S_IFREG {
		return mode & 07777, false
	}
	m := mode & 07777 &^ unix.S_ISUID
	if m&unix.S_IXGRP != 0 {
		m &^= unix.S_ISGID
	}
	return m, m != mode&07777
}

// dropSetID clears the set-id bits of the open upper file f unless the
// caller has CAP_FSETID, and makes the kernel fetch the node's attributes
// again.
func (n *node) dropSetID(ctx context.Context, f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	mode, drop := withoutSetID(st.Mode)
	if !drop || callerHasFsetid(ctx) {
		return nil
	}
	if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
		return err
	}
	n.NotifyContent(-1, 0) // attributes only
	return nil
}

// capFsetid is CAP_FSETID's bit in a capability set.
const capFsetid = 1 << unix.CAP_FSETID

// callerHasFsetid reports whether the process making the request has
// CAP_FSETID in its effective set, read from /proc/PID/status (the kernel
// gives the caller's pid as this server sees it). When that cannot be read
// (the caller is gone), root is taken to have it and others not.
func callerHasFsetid(ctx context.Context) bool {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return true
	}
	status, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(c.Pid), 10) + "/status")
	if err != nil || c.Pid == 0 {
		return c.Uid == 0
	}
	for line := range bytes.Lines(status) {
		if hex, ok := bytes.CutPrefix(line, []byte("CapEff:")); ok {
			caps, err := strconv.ParseUint(string(bytes.TrimSpace(hex)), 16, 64)
			return err == nil && caps&capFsetid != 0
		}
	}
	return c.Uid == 0
}
