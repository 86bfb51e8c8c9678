// Package readmetest keeps the documentation true: every Go block in
// README.md, CHANGELOG.md, ARCHITECTURE.md and docs/ is either a complete program, built and
// run here from a fresh module outside the repository (as a newcomer who
// copies it would), or an excerpt of a godoc Example named in the comment
// above it, which go test compiles and runs with the rest of the package;
// every relative link and anchor leads somewhere; the README stays short;
// and the minimum Go it states is go.mod's.
package readmetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// block is one fenced Go block of the README.
type block struct {
	line   int    // where its fence opens
	code   string // its text
	source string // "path Function" from a <!-- excerpt: … --> comment above it
}

var excerptRE = regexp.MustCompile(`<!--\s*excerpt:\s*(\S+)\s+(\S+)\s*-->`)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func goBlocks(t *testing.T, readme string) []block {
	t.Helper()
	var out []block
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		b := block{line: i + 1}
		for j := i - 1; j >= 0 && j >= i-3; j-- { // the comment sits just above the fence
			if m := excerptRE.FindStringSubmatch(lines[j]); m != nil {
				b.source = m[1] + " " + m[2]
				break
			}
		}
		var code []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			code = append(code, lines[i])
		}
		b.code = strings.Join(code, "\n") + "\n"
		out = append(out, b)
	}
	return out
}

// docFiles are the Markdown files this package checks, relative to root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md", "CHANGELOG.md", "ARCHITECTURE.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %v: is docs/ there?", files)
	}
	return files
}

func TestDocGoBlocks(t *testing.T) {
	root := repoRoot(t)
	programs := 0
	for _, file := range docFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range goBlocks(t, string(data)) {
			t.Run(fmt.Sprintf("%s:%d", file, b.line), func(t *testing.T) {
				switch {
				case strings.HasPrefix(b.code, "package main") || strings.HasPrefix(b.code, "// Command"):
					programs++
					runProgram(t, root, file, b)
				case b.source != "":
					checkExcerpt(t, root, file, b)
				default:
					t.Errorf("%s:%d: a Go block must be a complete program (package main) or carry <!-- excerpt: path/to/example_test.go ExampleName --> above it", file, b.line)
				}
			})
		}
	}
	if programs < 2 {
		t.Errorf("found %d complete programs: the quickstart and examples/operate must be two", programs)
	}
}

// checkExcerpt checks that every line of the block appears, in order, in the
// named Example function, which go test compiles and runs.
func checkExcerpt(t *testing.T, root, file string, b block) {
	path, fn, _ := strings.Cut(b.source, " ")
	src, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("%s:%d: excerpt source: %v", file, b.line, err)
	}
	start := strings.Index(string(src), "\nfunc "+fn+"()")
	if !strings.HasPrefix(fn, "Example") || start < 0 {
		t.Fatalf("%s:%d: %s has no function %s(); excerpts must come from a godoc Example", file, b.line, path, fn)
	}
	body := string(src[start:])
	if end := strings.Index(body, "\n}\n"); end >= 0 {
		body = body[:end]
	}
	rest := body
	for _, line := range strings.Split(b.code, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		i := strings.Index(rest, line)
		if i < 0 {
			t.Fatalf("%s:%d: the line %q is not in %s %s (in this order): update one to match the other", file, b.line, line, path, fn)
		}
		rest = rest[i+len(line):]
	}
}

// runProgram builds the block in a new module that requires herd through a
// replace directive, as the README's quickstart says (go.mod, then go mod
// tidy), and runs it.
func runProgram(t *testing.T, root, file string, b block) {
	if testing.Short() {
		t.Skip("builds a program in a fresh module")
	}
	dir := t.TempDir()
	gomod := fmt.Sprintf("module example.com/readme\n\ngo %s\n\nrequire github.com/herd-go/herd v0.0.0-00010101000000-000000000000\n\nreplace github.com/herd-go/herd => %s\n", goDirective(t, root), root)
	// herd's go.sum seeds the checksums, as the checksum database would
	// give them to go get, so that the test asks no server for them.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(b.code)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	env := []string{"GOWORK=off"}
	for _, kv := range os.Environ() { // the program's backend comes from the defaults, not this shell
		if !strings.HasPrefix(kv, "SW_") && !strings.HasPrefix(kv, "GOFLAGS=") {
			env = append(env, kv)
		}
	}
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "prog", "."}} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s:%d: go %s fails in a fresh module: %v\n%s", file, b.line, strings.Join(args, " "), err, out)
		}
	}
	run := exec.CommandContext(ctx, filepath.Join(dir, "prog"))
	run.Dir, run.Env = dir, env
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("%s:%d: the program fails: %v\nstdout:\n%s\nstderr:\n%s", file, b.line, err, stdout.String(), stderr.String())
	}
	t.Logf("%s:%d printed: %s", file, b.line, strings.TrimSpace(stdout.String()))
	if stderr.Len() > 0 {
		t.Errorf("%s:%d: a healthy run wrote to stderr (a warning a newcomer would see):\n%s", file, b.line, stderr.String())
	}
}

// TestProgramsAreInTheDocs keeps one copy of each program the docs show in
// full, word for word: examples/quickstart in the README and
// examples/operate in docs/operating.md.
func TestProgramsAreInTheDocs(t *testing.T) {
	root := repoRoot(t)
	for path, doc := range map[string]string{"examples/quickstart/main.go": "README.md", "examples/operate/main.go": "docs/operating.md"} {
		text, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		prog, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(goBlocks(t, string(text)), func(b block) bool { return b.code == string(prog) }) {
			t.Errorf("%s does not show %s as one of its Go blocks, word for word", doc, path)
		}
	}
}
