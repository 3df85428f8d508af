// Command hello is the program of berth's built-in `hello` image: a static
// binary that prints a greeting and exits 0, so `berth run --rm hello` shows
// an installation works with no registry and no network.
//
// It uses only package os to stay small; the images service builds it into
// the image that every fresh data root has.
package main

import "os"

const greeting = `
Hello from berth!
This message shows that your installation appears to be working correctly.

To generate this message, berth took the following steps:
 1. The berth client contacted the berth daemon.
 2. The daemon created a container from the built-in "hello" image,
    which every fresh install has: no registry was needed.
 3. berth's own runtime started the container, which ran this program.
 4. The daemon streamed this output to the berth client, which sent it
    to your terminal.

The docker CLI works too: DOCKER_HOST=unix:///run/berth/berth.sock docker ps
`

func main() {
	if _, err := os.Stdout.WriteString(greeting); err != nil {
		os.Exit(1)
	}
}
