package filestore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/bodybroker/sdk/settings"
	"github.com/bodybroker/sdk/settings/filestore"
)

// Settings saved to one file per player survive the process.
func Example() {
	dir, _ := os.MkdirTemp("", "settings")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, _ := filestore.New(filestore.Options{Dir: dir})
	m, _ := settings.New(settings.Options{Store: store})
	_, _ = m.Set(ctx, "player-1", []settings.Change{{Key: "controls.invert_y", Value: true}})
	_ = m.Close()

	// A new process, the same directory.
	store, _ = filestore.New(filestore.Options{Dir: dir})
	m, _ = settings.New(settings.Options{Store: store})
	defer m.Close()
	r, _ := m.Get(ctx, "player-1", settings.Target{})
	v, _ := r.Value("controls.invert_y")
	name, _ := filestore.FileName("player-1")
	fmt.Println("invert_y:", v, "in", name)
	// Output:
	// invert_y: true in obwgc6lfoiwtc.json
}
