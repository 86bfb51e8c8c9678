// Package suggest finds the word a user most likely meant: a
// configuration key, an environment variable, a backend, a command.
package suggest

import "strings"

// Nearest returns the word of known closest to word by edit distance,
// ignoring case, if it is close enough to be a likely misspelling; else "".
// Of two as close, the first in known wins.
func Nearest(word string, known []string) string {
	best, bestD := "", len(word)/2+2
	for _, k := range known {
		if d := editDistance(strings.ToLower(word), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
