// Package builtin makes berth's built-in "hello" image (docker.io/library/hello:latest)
// from the hello program embedded in the binary, so every data root has a
// runnable image with no registry and no network.
package builtin
