package cli

import (
	"strings"

	"github.com/spf13/pflag"
)

// stringArray is a repeatable string flag: each use appends its value as
// given, commas and all, as pflag's StringArray does. pflag's own type
// renders its default through an encoding/csv writer when the flag is
// defined, a fresh 4 KiB buffer each time; the CLI defines dozens of them
// at every start, and those buffers were a fifth of its page faults
// before main ran a line.
type stringArray struct {
	p       *[]string
	changed bool
}

func (a *stringArray) Set(v string) error {
	if !a.changed {
		*a.p, a.changed = nil, true
	}
	*a.p = append(*a.p, v)
	return nil
}

func (a *stringArray) Type() string { return "stringArray" }

// String is the value as pflag shows it: "[a,b]", and "[]" (which pflag
// counts as no default) when empty.
func (a *stringArray) String() string { return "[" + strings.Join(*a.p, ",") + "]" }

// Append, Replace and GetSlice make it a pflag.SliceValue.
func (a *stringArray) Append(v string) error { *a.p = append(*a.p, v); return nil }

func (a *stringArray) Replace(vs []string) error {
	*a.p = append([]string(nil), vs...)
	return nil
}

func (a *stringArray) GetSlice() []string { return *a.p }

// stringArrayVar defines a stringArray flag on f, as f.StringArrayVar.
func stringArrayVar(f *pflag.FlagSet, p *[]string, name string, value []string, usage string) {
	stringArrayVarP(f, p, name, "", value, usage)
}

// stringArrayVarP is stringArrayVar with a shorthand, as f.StringArrayVarP.
func stringArrayVarP(f *pflag.FlagSet, p *[]string, name, shorthand string, value []string, usage string) {
	*p = value
	f.VarP(&stringArray{p: p}, name, shorthand, usage)
}
