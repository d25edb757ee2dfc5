package fuse

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// setattrAt applies in to the node's upper file a, in the order chown,
// chmod (so that chown's clearing of set-id bits does not undo an explicit
// mode), truncate, utimes (so that truncate does not clobber an explicit
// mtime), and fills out with the file's attributes after them.
func (n *node) setattrAt(ctx context.Context, a beneath.At, in *fuse.SetAttrIn, out *fuse.Attr) syscall.Errno {
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
	if errno := setTimes(a, in); errno != 0 {
		return errno
	}
	if errno := n.attrAt(a, out); errno != 0 {
		return errno
	}
	return n.killSetIDAt(ctx, a, in, out)
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

// killSetIDAt clears the set-id bits of the node's upper file a, whose
// attributes after the rest of the request are out, when the kernel asks
// (FATTR_KILL_SUIDGID, with CAP_HANDLE_KILLPRIV_V2: a truncate by a caller
// without CAP_FSETID, any chown) and the same request sets no mode: the
// server works as root, which keeps them. It comes last: a chmod changes
// no time but the change time, which out then has anew. Going by out
// saves a stat on every chown, the usual case having no set-id bit.
func (n *node) killSetIDAt(ctx context.Context, a beneath.At, in *fuse.SetAttrIn, out *fuse.Attr) syscall.Errno {
	if !killsSetID(in) || out.Mode&(unix.S_ISUID|unix.S_ISGID) == 0 {
		return 0 // no need to ask who the caller is
	}
	st := unix.Stat_t{Mode: out.Mode, Gid: out.Gid}
	mode, drop := callerOf(ctx).withoutSetID(&st, true)
	if !drop {
		return 0
	}
	if err := a.Chmod(mode); err != nil {
		return fs.ToErrno(err)
	}
	return n.attrAt(a, out)
}

// killsSetID reports whether the request must clear set-id bits: the
// kernel says so, or the request changes nothing, which is what
// chown(f, -1, -1) sends: Linux clears the bits for it too, but the
// kernel's FUSE client sends the kill flag only with an owner or group.
func killsSetID(in *fuse.SetAttrIn) bool {
	if in.Valid&fuse.FATTR_MODE != 0 {
		return false
	}
	return in.Valid&fuse.FATTR_KILL_SUIDGID != 0 || in.Valid&^(fuse.FATTR_LOCKOWNER|fuse.FATTR_CTIME) == 0
}

// caller is what decides whether a write by the process making a request
// clears set-id bits.
type caller struct {
	fsetid bool     // CAP_FSETID in the effective set
	groups []uint32 // primary and supplementary groups
}

// withoutSetID returns the permission bits of the regular file with stat
// st after a change by c, and whether that drops any, as Linux (6.2+)
// decides. A write by a caller with CAP_FSETID keeps them; otherwise, or
// when the kernel has decided already (killed: FATTR_KILL_SUIDGID), the
// set-user-ID bit goes, and the set-group-ID bit when the file is
// group-executable or c neither is in the file's group nor has
// CAP_FSETID.
func (c caller) withoutSetID(st *unix.Stat_t, killed bool) (uint32, bool) {
	m := st.Mode & 07777
	if st.Mode&unix.S_IFMT != unix.S_IFREG || (c.fsetid && !killed) {
		return m, false
	}
	m &^= unix.S_ISUID
	if m&unix.S_IXGRP != 0 || !(c.fsetid || slices.Contains(c.groups, st.Gid)) {
		m &^= unix.S_ISGID
	}
	return m, m != st.Mode&07777
}

// dropSetID clears the set-id bits of the open upper file f as a write by
// the caller would, and makes the kernel fetch the node's attributes
// again.
func (n *node) dropSetID(ctx context.Context, f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) == 0 {
		return nil
	}
	mode, drop := callerOf(ctx).withoutSetID(&st, false)
	if !drop {
		return nil
	}
	if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
		return err
	}
	n.u.notifyAttr(n)
	return nil
}

// readProcStatus reads /proc/PID/status with plain system calls (os.File
// would register the descriptor with the runtime's poller first).
func readProcStatus(pid uint32) ([]byte, error) {
	if pid == 0 {
		return nil, unix.ESRCH
	}
	fd, err := unix.Open("/proc/"+strconv.FormatUint(uint64(pid), 10)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// capFsetid is CAP_FSETID's bit in a capability set.
const capFsetid = 1 << unix.CAP_FSETID

// callerOf reads the credentials of the process making the request from
// /proc/PID/status (the kernel gives its pid as this server sees it); the
// request itself carries only its uid and gid. When the process is gone,
// root is taken to have CAP_FSETID and others not.
func callerOf(ctx context.Context) caller {
	h, ok := fuse.FromContext(ctx)
	if !ok {
		return caller{fsetid: true}
	}
	c := caller{fsetid: h.Uid == 0, groups: []uint32{h.Gid}}
	status, err := readProcStatus(h.Pid)
	if err != nil {
		return c
	}
	for line := range bytes.Lines(status) {
		key, value, _ := bytes.Cut(line, []byte(":"))
		switch string(key) {
		case "CapEff":
			caps, err := strconv.ParseUint(string(bytes.TrimSpace(value)), 16, 64)
			c.fsetid = err == nil && caps&capFsetid != 0
		case "Groups":
			for _, g := range bytes.Fields(value) {
				if id, err := strconv.ParseUint(string(g), 10, 32); err == nil {
					c.groups = append(c.groups, uint32(id))
				}
			}
		}
	}
	return c
}
