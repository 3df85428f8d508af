package container

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"regexp"
	"strings"

	"github.com/berth/berth/internal/errdefs"
)

// validName is Docker's rule for container names: a letter or digit, then
// letters, digits, '_', '.' or '-'; at least two characters.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName checks a user-given name and returns it without the leading
// slash Docker allows.
func ValidateName(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", errdefs.Invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return strings.TrimPrefix(name, "/"), nil
}

// NewID returns a new container ID: 32 random bytes as 64 hex digits,
// never all digits (so a short ID is never mistaken for a number), as
// Docker's.
func NewID() string {
	b := make([]byte, 32)
	for {
		rand.Read(b)
		id := hex.EncodeToString(b)
		if strings.ContainsAny(id[:12], "abcdef") {
			return id
		}
	}
}

// ShortID is the 12-digit form `docker ps` shows.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Harbour words, for names like "steady_bollard": berth's own lists.
var (
	adjectives = []string{
		"agile", "amber", "ample", "ardent", "azure", "balmy", "bold", "brave", "breezy", "bright",
		"brisk", "calm", "candid", "cheerful", "clever", "coastal", "cosy", "crisp", "daring", "deft",
		"eager", "earnest", "easy", "fair", "fleet", "fond", "gallant", "gentle", "glad", "golden",
		"hardy", "hearty", "jolly", "keen", "kind", "lively", "loyal", "lucid", "merry", "mellow",
		"nimble", "noble", "plucky", "polite", "proud", "quiet", "quick", "radiant", "ready", "robust",
		"salty", "serene", "sharp", "shiny", "snug", "sprightly", "steady", "stout", "sturdy", "sunny",
		"swift", "tidal", "tidy", "trusty", "upbeat", "valiant", "vivid", "warm", "wise", "zesty",
	}
	nouns = []string{
		"anchor", "bay", "beacon", "bollard", "breakwater", "buoy", "cabin", "capstan", "cargo", "channel",
		"compass", "coral", "cove", "crane", "current", "davit", "deck", "dinghy", "dock", "dory",
		"ferry", "fjord", "galley", "gangway", "harbour", "hawser", "helm", "hull", "inlet", "island",
		"jetty", "keel", "kelp", "lagoon", "lantern", "lighthouse", "marina", "mast", "mooring", "narrows",
		"oar", "pier", "pilot", "port", "quay", "reef", "rudder", "sail", "schooner", "seawall",
		"shoal", "skiff", "slipway", "sloop", "sound", "spar", "starboard", "strait", "tide", "tiller",
		"trawler", "tugboat", "wake", "wharf", "winch", "yacht", "yard", "yawl",
	}
)

func pick(list []string) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	return list[n.Int64()]
}

// GenerateName returns a random "adjective_noun" name for which taken
// reports false, adding a digit after a few collisions, as Docker does.
func GenerateName(taken func(string) bool) string {
	for i := 0; ; i++ {
		name := pick(adjectives) + "_" + pick(nouns)
		if i > 5 {
			n, _ := rand.Int(rand.Reader, big.NewInt(10))
			name += n.String()
		}
		if !taken(name) {
			return name
		}
	}
}
