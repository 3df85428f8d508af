package dockerapi

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/berth/berth/internal/errdefs"
)

// Filters is a decoded `filters` query parameter: key → values.
type Filters map[string][]string

// parseFilters decodes the `filters` query parameter. Docker clients send
// {"key":{"value":true}} (API ≥ 1.22) or, older ones, {"key":["value"]};
// both are accepted. Keys outside allowed are refused, naming the key, as
// Docker does ("invalid filter 'foo'").
func parseFilters(r *http.Request, allowed ...string) (Filters, error) {
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return Filters{}, nil
	}
	var modern map[string]map[string]bool
	f := Filters{}
	if err := json.Unmarshal([]byte(raw), &modern); err == nil {
		for k, set := range modern {
			for v, on := range set {
				if on {
					f[k] = append(f[k], v)
				}
			}
			sort.Strings(f[k])
		}
	} else {
		var legacy map[string][]string
		if err := json.Unmarshal([]byte(raw), &legacy); err != nil {
			return nil, errdefs.Invalidf("invalid filters %q: %v", raw, err)
		}
		for k, vs := range legacy {
			f[k] = append(f[k], vs...)
		}
	}
	for k := range f {
		if !contains(allowed, k) {
			return nil, errdefs.Invalidf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
