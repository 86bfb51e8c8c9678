package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasExamples: every public package (not internal, not a
// command) that exports a function has a godoc Example, and its entry point,
// a function named New, has ExampleNew; go test compiles them and, with an
// Output comment, runs them.
func TestEveryPackageHasExamples(t *testing.T) {
	list := exec.Command("go", "list", "-json=ImportPath,Name,Dir,GoFiles,TestGoFiles,XTestGoFiles", "./...")
	list.Dir = "../.."
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath, Name, Dir              string
			GoFiles, TestGoFiles, XTestGoFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Name == "main" || strings.Contains(p.ImportPath, "/internal") {
			continue
		}
		exported, hasNew := exportedFuncs(t, p.Dir, p.GoFiles)
		if exported == 0 {
			continue // cluster/all: imported for its side effect only
		}
		checked++
		examples := exampleNames(t, p.Dir, append(p.TestGoFiles, p.XTestGoFiles...))
		if len(examples) == 0 {
			t.Errorf("%s has no godoc example: add an Example function to an example_test.go (with an // Output: comment if it runs without a server)", p.ImportPath)
		}
		if hasNew && !examples["ExampleNew"] && !hasPrefix(examples, "ExampleNew_") {
			t.Errorf("%s.New, its entry point, has no ExampleNew", p.ImportPath)
		}
	}
	if checked < 15 {
		t.Fatalf("checked %d packages: is go list reading this module?", checked)
	}
}

// exportedFuncs counts the package's exported functions (not methods) and
// says whether one is New.
func exportedFuncs(t *testing.T, dir string, files []string) (n int, hasNew bool) {
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.IsExported() {
				n++
				hasNew = hasNew || fn.Name.Name == "New"
			}
		}
	}
	return n, hasNew
}

// exampleNames are the Example functions in the package's test files.
func exampleNames(t *testing.T, dir string, files []string) map[string]bool {
	fset := token.NewFileSet()
	out := map[string]bool{}
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
				out[fn.Name.Name] = true
			}
		}
	}
	return out
}

func hasPrefix(names map[string]bool, prefix string) bool {
	for name := range names {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
