// Package builtin makes berth's built-in "hello" image (docker.io/library/hello:latest)
// from the hello program embedded in the binary, so every data root has a
// runnable image with no registry and no network.
//
// The program is internal/hello, built once by `go generate` (see
// payload_test.go) into hello.gz, which is committed and embedded. The
// image's layer tar, config and manifest are made from it deterministically
// at run time (fixed times, owner 0, uncompressed layer), so the image ID is
// the same on every host and across restarts.
package builtin

//go:generate go test -run TestPayloadMatchesSource -update .
