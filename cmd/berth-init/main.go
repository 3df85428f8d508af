// Command berth-init is the container init alone: `berth init` without the
// rest of berth. It is built static and small, and embedded in berth
// (internal/ociruntime/initbin), because the init is exec'd once per
// container and a smaller program starts faster: docs/decisions/0090.
package main

import "github.com/berth/berth/internal/ociruntime"

func main() { ociruntime.InitMain() }
