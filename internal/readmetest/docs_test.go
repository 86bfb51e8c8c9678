package readmetest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var (
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpanRE = regexp.MustCompile("`[^`]*`")
	goLineRE   = regexp.MustCompile(`(?m)^go (\S+)$`)
	// headingLinkRE is a link in a heading, whose anchor keeps its text.
	headingLinkRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// goDirective is go.mod's go line, the minimum Go herd builds with.
func goDirective(t *testing.T, root string) string {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := goLineRE.FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// prose returns the lines outside fenced code blocks, with code spans blanked
// out, keeping line numbers (1-based index = line).
func prose(text string) []string {
	lines := strings.Split(text, "\n")
	fence := false
	out := make([]string, len(lines))
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fence = !fence
			continue
		}
		if !fence {
			out[i] = codeSpanRE.ReplaceAllString(l, "``")
		}
	}
	return out
}

// anchors are the ids GitHub gives a file's headings: lower case, spaces to
// hyphens, punctuation other than - and _ dropped, repeats numbered.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range prose(text) {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(l, "#"))
		title = headingLinkRE.ReplaceAllString(title, "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			out[id+"-"+strconv.Itoa(n)] = true
		} else {
			out[id] = true
		}
		seen[id]++
	}
	return out
}

// TestLinks: every relative link in the docs names a file or directory of
// the repository, and every anchor a heading of its target.
func TestLinks(t *testing.T) {
	root := repoRoot(t)
	checked := 0
	for _, file := range docFiles(t, root) {
		text, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range prose(string(text)) {
			for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				path, anchor, _ := strings.Cut(target, "#")
				resolved := filepath.Join(root, file)
				if path != "" {
					resolved = filepath.Join(filepath.Dir(resolved), path)
				}
				if rel, err := filepath.Rel(root, resolved); err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("%s:%d: %s leads outside the repository", file, i+1, target)
					continue
				}
				if _, err := os.Stat(resolved); err != nil {
					t.Errorf("%s:%d: %s: no such file or directory", file, i+1, target)
					continue
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(resolved, ".md") {
					t.Errorf("%s:%d: %s: an anchor into a file that is not Markdown", file, i+1, target)
					continue
				}
				dest, err := os.ReadFile(resolved)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(dest))[anchor] {
					t.Errorf("%s:%d: %s: no heading with the anchor #%s there", file, i+1, target, anchor)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked only %d relative links: is the link pattern right?", checked)
	}
}

// TestNoWallOfText: no line of the docs is 1,000 characters or more, a
// paragraph (or a table row) nobody reads on one line.
func TestNoWallOfText(t *testing.T) {
	root := repoRoot(t)
	for _, file := range docFiles(t, root) {
		text, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(text), "\n") {
			if n := len([]rune(l)); n >= 1000 {
				t.Errorf("%s:%d: a line of %d characters: break it up (a list, or a section per row)", file, i+1, n)
			}
		}
	}
}

// TestReadmeIsShort: the README is read in five minutes; the rest is in docs/.
func TestReadmeIsShort(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(text), "\n"); n > 300 {
		t.Errorf("README.md has %d lines; keep it within 300 and move detail into docs/", n)
	}
}

// TestMinimumGoStated: the README states the minimum Go exactly as go.mod's
// go line does.
func TestMinimumGoStated(t *testing.T) {
	root := repoRoot(t)
	want := goDirective(t, root)
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, phrase := range []string{"Go " + want + " or later", "`go " + want + "`"} {
		if !strings.Contains(string(text), phrase) {
			t.Errorf("README.md does not say %q, as go.mod's go line (go %s) requires", phrase, want)
		}
	}
	if m := regexp.MustCompile(`Go (1\.\d+(?:\.\d+)?) or later`).FindAllStringSubmatch(string(text), -1); len(m) > 0 {
		for _, v := range m {
			if v[1] != want {
				t.Errorf("README.md says Go %s or later; go.mod says go %s", v[1], want)
			}
		}
	}
}
