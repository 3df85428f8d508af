package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
)

// templateFuncs are the functions docker's --format templates know.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":     strings.Join,
	"split":    strings.Split,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"println":  fmt.Sprintln,
	"truncate": func(s string, n int) string { return s[:min(n, len(s))] },
	"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
}

// template executes a --format template on v, with a newline after.
func (c *CLI) template(format string, v any) error {
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	if err := t.Execute(c.out, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	_, err = fmt.Fprintln(c.out)
	return err
}
