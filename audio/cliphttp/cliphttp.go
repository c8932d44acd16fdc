// Package cliphttp serves an [audio.ClipStore] over HTTP: GET (and HEAD)
// /{id} answers with the clip through http.ServeContent, so range
// requests, If-None-Match and If-Modified-Since work as clients and
// engines expect. Clips are content-addressed and immutable: each answer
// has a strong ETag (the ID) and a year-long immutable Cache-Control.
package cliphttp

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bodybroker/sdk/audio"
)

// Handler serves clips by ID from the last path segment. Mount it under a
// prefix with http.StripPrefix. It is safe for concurrent use.
type Handler struct {
	Store audio.ClipStore
	// Modified is the Last-Modified time sent; zero sends none.
	Modified time.Time
}

// ServeHTTP implements http.Handler.
func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if id == "" || len(id) > 128 {
		http.NotFound(w, r)
		return
	}
	clip, err := h.Store.Get(r.Context(), id)
	switch {
	case errors.Is(err, audio.ErrClipNotFound):
		http.NotFound(w, r)
		return
	case err != nil:
		http.Error(w, "clip store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", clip.ContentType)
	w.Header().Set("ETag", `"`+clip.ID+`"`)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", h.Modified, bytes.NewReader(clip.Data))
}
