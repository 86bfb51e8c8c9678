package selector

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestPackageDocNamesEverySelector keeps the package doc current: every type
// with a Select method is named in it.
func TestPackageDocNamesEverySelector(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	var selectors []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil {
			doc += f.Doc.Text()
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Name.Name != "Select" {
				continue
			}
			typ := fn.Recv.List[0].Type
			if star, ok := typ.(*ast.StarExpr); ok {
				typ = star.X
			}
			selectors = append(selectors, typ.(*ast.Ident).Name)
		}
	}
	if doc == "" || len(selectors) < 5 {
		t.Fatalf("found doc %q and selectors %v: is this the selector package?", doc, selectors)
	}
	for _, name := range selectors {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(doc) {
			t.Errorf("the package doc does not name the selector %s; say what it is for there", name)
		}
	}
}
