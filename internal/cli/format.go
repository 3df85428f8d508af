package cli

import (
	"bufio"
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

// template executes a --format template on v, with a newline after. A
// list runs it once per item: it is parsed once.
func (c *CLI) template(format string, v any) error {
	t := c.templates[format]
	if t == nil {
		var err error
		if t, err = template.New("format").Funcs(templateFuncs).Parse(format); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		if c.templates == nil {
			c.templates = map[string]*template.Template{}
		}
		c.templates[format] = t
	}
	if err := t.Execute(c.out, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	_, err := fmt.Fprintln(c.out)
	return err
}

// templateEach executes a --format template on every item, in order.
func templateEach[T any](c *CLI, format string, items []T) error {
	for _, v := range items {
		if err := c.template(format, v); err != nil {
			return err
		}
	}
	return nil
}

// buffered runs fn, which prints a whole listing, with c.out buffered and
// flushed at the end: a table of 1000 rows is one write instead of
// thousands (a tabwriter writes each cell and its padding on its own).
// Never for what streams (logs -f, events, attach).
func (c *CLI) buffered(fn func() error) error {
	saved := c.out
	w := bufio.NewWriterSize(saved, 64<<10)
	c.out = w
	defer func() { c.out = saved }()
	err := fn()
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}
