package suggest

import "testing"

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"ttll", "ttl", 1}, {"etc", "etcd", 1}, {"selecter", "selector", 1}, {"flaw", "lawn", 2}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestNearest(t *testing.T) {
	known := []string{"endpoints", "namespace", "user", "password", "ttl", "dialTimeout"}
	for key, want := range map[string]string{
		"endpoint":   "endpoints",
		"TTL":        "ttl",  // case is ignored
		"usl":        "user", // as near to user as to ttl: the first in order wins
		"zzzzzzzzzz": "",     // too far from everything to be a misspelling
		"pasword":    "password",
		"dialtimeot": "dialTimeout",
	} {
		if got := Nearest(key, known); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", key, got, want)
		}
	}
}
