package ociruntime

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupConsole opens a pty in the container's devpts, sends the master over
// the console socket (SCM_RIGHTS, runc's protocol) and makes the slave the
// process's stdio and controlling terminal.
func setupConsole(sockFD int, p *specs.Process) error {
	if sockFD < 0 {
		return fmt.Errorf("no console socket")
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlockpt: %w", err)
	}
	// TIOCGPTPEER's argument is the open flags of the slave: 0 would make
	// it read-only and the process's output would go nowhere.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	slave, err := int(r), error(nil)
	if errno != 0 {
		err = errno
	}
	if err != nil {
		n, err2 := unix.IoctlGetInt(master, unix.TIOCGPTN)
		if err2 != nil {
			return fmt.Errorf("pty peer: %w", err)
		}
		slave, err = unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
	}
	defer unix.Close(slave)
	if p.ConsoleSize != nil {
		unix.IoctlSetWinsize(slave, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)})
	}
	unix.Fchown(slave, int(p.User.UID), -1)
	n, _ := unix.IoctlGetInt(master, unix.TIOCGPTN)
	name := fmt.Sprintf("/dev/pts/%d", n)
	if err := unix.Sendmsg(sockFD, []byte(name), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send the pty master: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return err
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set the controlling terminal: %w", err)
	}
	os.Stdin, os.Stdout, os.Stderr = os.NewFile(0, "stdin"), os.NewFile(1, "stdout"), os.NewFile(2, "stderr")
	return nil
}
