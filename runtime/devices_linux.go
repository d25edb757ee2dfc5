package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deviceRule lets a container open character device major:minor (minor -1:
// any) for reading and writing.
type deviceRule struct {
	major, minor int64
}

// allowedDevices are the only devices a container's processes may open,
// whatever nodes its file systems hold: those of its minimal /dev (null,
// zero, full, random, urandom, tty), /dev/console, /dev/ptmx and the
// pseudo-terminal slaves (Unix98 majors 136-143), as runc allows. A device
// node shipped in a template, or made by the host in the container's /dev,
// fails to open with EPERM (and, on a nodev root, EACCES first).
var allowedDevices = []deviceRule{
	{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2},
	{136, -1}, {137, -1}, {138, -1}, {139, -1}, {140, -1}, {141, -1}, {142, -1}, {143, -1},
}

// deviceRulesV1 returns allowedDevices as lines of a v1 devices.list.
func deviceRulesV1() []string {
	var out []string
	for _, d := range allowedDevices {
		minor := "*"
		if d.minor >= 0 {
			minor = strconv.FormatInt(d.minor, 10)
		}
		out = append(out, fmt.Sprintf("c %d:%s rwm", d.major, minor))
	}
	return out
}

// limitDevicesV1 makes the v1 devices cgroup dir allow allowedDevices
// only. A new cgroup starts with its parent's list, so this costs one read
// once prepareDevicesParentV1 has set up the parent.
func limitDevicesV1(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "devices.list"))
	if err == nil {
		got, want := strings.Split(strings.TrimSpace(string(data)), "\n"), deviceRulesV1()
		slices.Sort(got)
		slices.Sort(want)
		if slices.Equal(got, want) {
			return nil
		}
	}
	return writeDeviceRulesV1(dir)
}

// prepareDevicesParentV1 sets up the parent of cgroup name (below the
// devices hierarchy base) when it makes it, so that the containers' cgroups
// made below it start with the list. Best effort: the kernel refuses "a" in
// a cgroup that already has children, and limitDevicesV1 then writes each
// container's own list.
func prepareDevicesParentV1(base, name string) {
	rel := filepath.Dir(filepath.Clean(name))
	if rel == "." {
		return
	}
	parent := filepath.Join(base, rel)
	if _, err := os.Stat(parent); err == nil {
		return
	}
	if os.MkdirAll(parent, 0o755) == nil {
		writeDeviceRulesV1(parent)
	}
}

// writeDeviceRulesV1 denies every device to a v1 devices cgroup and allows
// allowedDevices back.
func writeDeviceRulesV1(dir string) error {
	if err := writeCgroupFile(dir, "devices.deny", "a"); err != nil {
		return err
	}
	for _, r := range deviceRulesV1() {
		if err := writeCgroupFile(dir, "devices.allow", r); err != nil {
			return err
		}
	}
	return nil
}

// bpfInsn is one eBPF instruction (struct bpf_insn).
type bpfInsn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high one
	off  int16
	imm  int32
}

// deviceProgram returns a BPF_PROG_TYPE_CGROUP_DEVICE program that allows
// allowedDevices and denies every other device, as runc's is on cgroup v2.
// Its context is struct bpf_cgroup_dev_ctx { u32 access_type (device type
// in the low 16 bits); u32 major; u32 minor; }.
func deviceProgram() []bpfInsn {
	const (
		ldxW  = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W
		andK  = unix.BPF_ALU64 | unix.BPF_AND | unix.BPF_K
		movK  = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K
		jneK  = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K
		exit  = unix.BPF_JMP | unix.BPF_EXIT
		ctx   = 1 // r1 holds the context
		typ   = 2
		major = 3
		minor = 4
	)
	ret := func(v int32) []bpfInsn { return []bpfInsn{{code: movK, imm: v}, {code: exit}} }
	// The deny at the end is len(prog)-2; jumps are relative to the next
	// instruction, and are patched once its place is known.
	prog := []bpfInsn{
		{code: ldxW, regs: typ | ctx<<4, off: 0},
		{code: andK, regs: typ, imm: 0xffff},
		{code: ldxW, regs: major | ctx<<4, off: 4},
		{code: ldxW, regs: minor | ctx<<4, off: 8},
		{code: jneK, regs: typ, imm: unix.BPF_DEVCG_DEV_CHAR},
	}
	toDeny := []int{len(prog) - 1}
	for _, d := range allowedDevices {
		var next []int
		prog = append(prog, bpfInsn{code: jneK, regs: major, imm: int32(d.major)})
		next = append(next, len(prog)-1)
		if d.minor >= 0 {
			prog = append(prog, bpfInsn{code: jneK, regs: minor, imm: int32(d.minor)})
			next = append(next, len(prog)-1)
		}
		prog = append(prog, ret(1)...)
		for _, i := range next {
			prog[i].off = int16(len(prog) - i - 1)
		}
	}
	for _, i := range toDeny {
		prog[i].off = int16(len(prog) - i - 1)
	}
	return append(prog, ret(0)...)
}

// limitDevicesV2 attaches deviceProgram to the cgroup v2 directory dir. It
// stays attached, and the devices limited, until the cgroup is removed.
func limitDevicesV2(dir string) error {
	prog := deviceProgram()
	license := []byte("Apache-2.0\x00")
	load := struct {
		progType, insnCnt uint32
		insns, license    uint64
	}{unix.BPF_PROG_TYPE_CGROUP_DEVICE, uint32(len(prog)),
		uint64(uintptr(unsafe.Pointer(&prog[0]))), uint64(uintptr(unsafe.Pointer(&license[0])))}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&load)), unsafe.Sizeof(load))
	goruntime.KeepAlive(prog)
	goruntime.KeepAlive(license)
	if errno != 0 {
		return fmt.Errorf("failed to load the device BPF program: %w", errno)
	}
	defer unix.Close(int(fd))
	cgfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open cgroup %s: %w", dir, err)
	}
	defer unix.Close(cgfd)
	attach := struct{ target, prog, attachType, flags uint32 }{
		uint32(cgfd), uint32(fd), unix.BPF_CGROUP_DEVICE, unix.BPF_F_ALLOW_MULTI}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&attach)), unsafe.Sizeof(attach)); errno != 0 {
		return fmt.Errorf("failed to attach the device BPF program to %s: %w", dir, errno)
	}
	return nil
}
