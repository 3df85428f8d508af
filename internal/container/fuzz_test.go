package container

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

// FuzzApplyChanges feeds `commit --change` instructions (API query values,
// untrusted) to the parser: it must answer or refuse, never panic.
func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{`CMD ["a","b"]`, "ENV A=1 B=\"x y\"", "ENV A b", "LABEL 'a b'=c", "EXPOSE 80/tcp 53/udp", `VOLUME ["/v"]`, "WORKDIR rel", "STOPSIGNAL 9", `SHELL ["/bin/bash","-c"]`, "ENV \\", "LABEL a=\"", "ONBUILD RUN x", "\tCMD\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, change string) {
		var cfg container.Config
		_ = ApplyChanges(&cfg, []string{change})
	})
}

// FuzzParsePS feeds ps output to the top parser.
func FuzzParsePS(f *testing.F) {
	f.Add("UID PID CMD\nroot 1 sleep 1\n")
	f.Add("PID\n1\n")
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = parsePS(out, []int{1})
	})
}
