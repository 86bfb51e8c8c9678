package nacos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSDKDirectoriesDefaultToTheUserCache(t *testing.T) {
	base, err := os.UserCacheDir()
	if err != nil {
		t.Skip("no user cache directory here:", err)
	}
	logDir, cacheDir := DefaultConfig().dirs()
	for _, d := range []string{logDir, cacheDir} {
		if !strings.HasPrefix(d, filepath.Join(base, "herd", "nacos")) {
			t.Errorf("SDK directory %s is not under %s", d, base)
		}
	}
	cfg := DefaultConfig()
	cfg.LogDir, cfg.CacheDir = "/var/log/x", "/var/cache/x"
	if l, c := cfg.dirs(); l != "/var/log/x" || c != "/var/cache/x" {
		t.Errorf("configured directories not used: %s %s", l, c)
	}
}
