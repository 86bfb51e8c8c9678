package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoRegistryHostNames: the repository says "the Go module proxy", "the
// Rust crate registry", "Maven Central", never a registry's host name.
func TestNoRegistryHostNames(t *testing.T) {
	root, _ := filepath.Abs("../..")
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	// Split so that this file does not name them either.
	hosts := []string{"crates" + ".io", "proxy" + ".golang.org", "registry" + ".npmjs.org", "npmjs" + ".com", "pypi" + ".org",
		"repo1" + ".maven.org", "repo" + ".maven.apache.org", "deb" + ".debian.org", "static" + ".rust-lang.org"}
	for _, f := range strings.Fields(string(out)) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the working tree
		}
		for _, h := range hosts {
			if strings.Contains(string(data), h) {
				t.Errorf("%s names %s; name the registry instead (the Rust crate registry, the Go module proxy, …)", f, h)
			}
		}
	}
}
