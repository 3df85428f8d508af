// Command pid1 is berth's tiny init: what `--init` runs as a container's
// pid 1 (at /sbin/docker-init, where Docker puts tini), with the container's
// command after "--". It starts the command, forwards the signals it gets to
// it, reaps every orphan that the kernel reparents to pid 1, and exits with
// the command's status (128+n when a signal n killed it), as tini does.
//
// It is a static program (package payload embeds it), so it runs in any
// image, with nothing but the standard library and the syscall package.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unsafe"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "docker-init: usage: docker-init -- command [args...]")
		os.Exit(2)
	}
	os.Exit(run(args))
}

// run starts the command and supervises it; it returns the exit code.
func run(args []string) int {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)

	path := args[0]
	if lp, err := lookPath(path); err == nil {
		path = lp
	}
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}}
	// With a terminal, the command gets its own process group in the
	// foreground, so ^C and job control reach it as they would without us.
	var tty bool
	if _, err := ioctlGetPgrp(0); err == nil {
		tty = true
		attr.Sys = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	}
	pid, err := syscall.ForkExec(path, args, attr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: exec %s: %v\n", args[0], err)
		if err == syscall.ENOENT {
			return 127
		}
		return 126
	}
	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case syscall.SIGCHLD:
			if code, done := reap(pid); done {
				return code
			}
		case syscall.SIGURG: // the Go runtime's own preemption signal
		default:
			target := pid
			if tty {
				target = -pid // its process group
			}
			syscall.Kill(target, s)
		}
	}
	return 0
}

// reap collects every exited child; it reports the command's exit code
// once the command itself is among them.
func reap(cmd int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == cmd {
			done = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// lookPath finds a command without a slash in PATH, as a shell does.
func lookPath(file string) (string, error) {
	for _, c := range file {
		if c == '/' {
			return file, nil
		}
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == ':' {
			dir := path[start:i]
			if dir == "" {
				dir = "."
			}
			p := dir + "/" + file
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p, nil
			}
			start = i + 1
		}
	}
	return "", syscall.ENOENT
}

// ioctlGetPgrp reports the foreground process group of the terminal on fd,
// failing when fd is not a terminal.
func ioctlGetPgrp(fd int) (int, error) {
	var pgrp int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
	if errno != 0 {
		return 0, errno
	}
	return int(pgrp), nil
}
