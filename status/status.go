// Package status serves a herd node's status over HTTP, from an
// inspect.Inspector:
//
//	GET /status/cluster/nodes  the view in Apache SkyWalking's shape: {"nodes":[{"host","port","self"}]}
//	GET /status/herd           the whole inspect.Report as JSON
//	GET /status/               a page for people: members, self, each peer's health, last change
//
// (GET /status redirects to the page.) The page is rendered on the server
// and needs no external asset (no script, font or stylesheet from
// elsewhere), so it works on a closed network. Mount the handler with
// mux.Handle("/status/", status.Handler(in)), or at the root; under another
// prefix, use http.StripPrefix. It never writes to the backend.
package status

import (
	"embed"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/herd-go/herd/inspect"
)

//go:embed page.html
var pageFS embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Millisecond).String() + " ago"
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"keys": func(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) },
}).ParseFS(pageFS, "page.html"))

// Handler returns the status handler over in.
func Handler(in *inspect.Inspector) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status/cluster/nodes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, skywalkingNodes(in.Report()))
	})
	mux.HandleFunc("GET /status/herd", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, in.Report())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "status/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /status/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// Nothing on the page loads from anywhere: say so to the browser.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if err := page.Execute(w, in.Report()); err != nil {
			http.Error(w, "status: rendering the page: "+err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}

// swNode is one node in SkyWalking's /status/cluster/nodes answer.
type swNode struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	Self bool   `json:"self"`
}

func skywalkingNodes(r inspect.Report) map[string][]swNode {
	nodes := make([]swNode, 0, len(r.View.Members))
	for _, m := range r.View.Members {
		nodes = append(nodes, swNode{Host: m.Host, Port: m.Port, Self: m.Self})
	}
	return map[string][]swNode{"nodes": nodes}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to tell it
}
