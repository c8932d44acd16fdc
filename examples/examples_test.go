// Package examples holds the SDK's example programs, one per directory.
// They are written to be copied: each builds on its own in a studio's
// module, so none imports anything under internal/. The test here proves
// it by building each one as a fresh module.
package examples

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const sdkModule = "github.com/bodybroker/sdk"

// TestCopiedExamplesBuild copies every example directory into a fresh
// module of its own, which requires the SDK (replaced by this checkout)
// with the SDK's go.sum, and builds and vets it (vet type-checks its
// tests too). An example that imports an internal package, or anything
// else a studio's module could not import, fails here.
//
// It needs no network when the module cache already holds the SDK's
// dependencies (after "go mod download"), and skips under -short. The go
// command caches its result without knowing that it depends on every
// package of the SDK, so .ci/run runs it again with -count=1.
func TestCopiedExamplesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every example as its own module; skipped under -short")
	}
	// go test puts its own GOROOT/bin first on PATH.
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") || e.Name() == "testdata" {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), e.Name())
			if err := os.CopyFS(dir, os.DirFS(e.Name())); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(),
				"GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"),
				"GOWORK=off",
			)
			run := func(args ...string) {
				t.Helper()
				cmd := exec.Command(gocmd, args...)
				cmd.Dir, cmd.Env = dir, env
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out.Bytes())
				}
			}
			run("mod", "init", "example.com/"+e.Name())
			run("mod", "edit", "-require="+sdkModule+"@v0.0.0", "-replace="+sdkModule+"="+root)
			run("build", "-o", filepath.Join(t.TempDir(), "bin")+string(filepath.Separator), "./...")
			run("vet", "./...") // type-checks the example's tests too
		})
	}
	if n == 0 {
		t.Fatal("no example directories found")
	}
}
