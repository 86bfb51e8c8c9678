// Package readmetest keeps the README's Go code working: every Go block in
// README.md is either a complete program, built and run here from a fresh
// module outside the repository (as a newcomer who copies it would), or an
// excerpt of a godoc Example named in the comment above it, which go test
// compiles and runs with the rest of the package.
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

func TestReadmeGoBlocks(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, string(data))
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go blocks: is this the right file?")
	}
	programs := 0
	for _, b := range blocks {
		t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) {
			switch {
			case strings.HasPrefix(b.code, "package main") || strings.HasPrefix(b.code, "// Command"):
				programs++
				runProgram(t, root, b)
			case b.source != "":
				checkExcerpt(t, root, b)
			default:
				t.Errorf("README.md:%d: a Go block must be a complete program (package main) or carry <!-- excerpt: path/to/example_test.go ExampleName --> above it", b.line)
			}
		})
	}
	if programs == 0 {
		t.Error("README.md has no complete program: the quickstart must be one")
	}
}

// checkExcerpt checks that every line of the block appears, in order, in the
// named Example function, which go test compiles and runs.
func checkExcerpt(t *testing.T, root string, b block) {
	path, fn, _ := strings.Cut(b.source, " ")
	src, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("README.md:%d: excerpt source: %v", b.line, err)
	}
	start := strings.Index(string(src), "\nfunc "+fn+"()")
	if !strings.HasPrefix(fn, "Example") || start < 0 {
		t.Fatalf("README.md:%d: %s has no function %s(); excerpts must come from a godoc Example", b.line, path, fn)
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
			t.Fatalf("README.md:%d: the line %q is not in %s %s (in this order): update one to match the other", b.line, line, path, fn)
		}
		rest = rest[i+len(line):]
	}
}

// runProgram builds the block in a new module that requires herd through a
// replace directive, and runs it.
func runProgram(t *testing.T, root string, b block) {
	if testing.Short() {
		t.Skip("builds a program in a fresh module")
	}
	dir := t.TempDir()
	gomod := fmt.Sprintf("module example.com/readme\n\ngo 1.26\n\nrequire github.com/herd-go/herd v0.0.0-00010101000000-000000000000\n\nreplace github.com/herd-go/herd => %s\n", root)
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
	env := []string{"GOFLAGS=-mod=mod", "GOWORK=off"}
	for _, kv := range os.Environ() { // the program's backend comes from the defaults, not this shell
		if !strings.HasPrefix(kv, "SW_") && !strings.HasPrefix(kv, "GOFLAGS=") {
			env = append(env, kv)
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", "prog", ".")
	build.Dir, build.Env = dir, env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("README.md:%d: the program does not build in a fresh module: %v\n%s", b.line, err, out)
	}
	run := exec.CommandContext(ctx, filepath.Join(dir, "prog"))
	run.Dir, run.Env = dir, env
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("README.md:%d: the program fails: %v\nstdout:\n%s\nstderr:\n%s", b.line, err, stdout.String(), stderr.String())
	}
	t.Logf("README.md:%d printed: %s", b.line, strings.TrimSpace(stdout.String()))
	if stderr.Len() > 0 {
		t.Errorf("README.md:%d: a healthy run wrote to stderr (a warning a newcomer would see):\n%s", b.line, stderr.String())
	}
}

// TestProgramsAreInTheReadme keeps one copy of each program the README
// shows in full: examples/quickstart and examples/operate, word for word.
func TestProgramsAreInTheReadme(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, string(readme))
	for _, path := range []string{"examples/quickstart/main.go", "examples/operate/main.go"} {
		prog, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(blocks, func(b block) bool { return b.code == string(prog) }) {
			t.Errorf("README.md does not show %s as one of its Go blocks, word for word", path)
		}
	}
}
