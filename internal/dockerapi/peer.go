package dockerapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

type peerKey struct{}

// ConnContext is the API server's http.Server.ConnContext: for a
// connection on a unix socket it remembers the peer's credentials, which
// the kernel gives (SO_PEERCRED), for the calls that act on the client's
// own files.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, cred)
}

// openClientDir opens the directory p of the client at the other end of
// r's connection, in the client's own root (its mount namespace): only
// for a root client on the unix socket, which could bind-mount the same
// directory into a container anyway. The caller closes it.
func openClientDir(r *http.Request, field, p string) (*os.Root, error) {
	cred, _ := r.Context().Value(peerKey{}).(*unix.Ucred)
	if cred == nil {
		return nil, errdefs.Invalidf("%s: a client directory can only be read over the daemon's unix socket", field)
	}
	if cred.Uid != 0 {
		return nil, errdefs.Forbidden(fmt.Errorf("%s: only a root client may have its directory read (uid %d): send the context as a tarball", field, cred.Uid))
	}
	if !filepath.IsAbs(p) {
		return nil, errdefs.Invalidf("%s: %q is not an absolute path", field, p)
	}
	root, err := os.OpenRoot(fmt.Sprintf("/proc/%d/root", cred.Pid))
	if err != nil {
		return nil, fmt.Errorf("%s: the client's root: %w", field, err)
	}
	defer root.Close()
	rel := strings.TrimPrefix(filepath.Clean(p), "/")
	if rel == "" {
		rel = "."
	}
	dir, err := root.OpenRoot(rel)
	if err != nil {
		return nil, errdefs.Invalidf("%s: %v", field, err)
	}
	return dir, nil
}
