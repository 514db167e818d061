package middleware_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEProgramsCompile builds every complete Go program in README.md
// (every ```go block: each must start with "package main") as a package
// of this module, through go build's -overlay: README's snippets compile
// as written, against the code as it is. A program that imports the
// OpenTelemetry adapter, a module of its own, is built in the example
// app's module, which requires it.
func TestREADMEProgramsCompile(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	require.NotEmpty(t, blocks, "README has no complete program")
	for i, b := range blocks {
		require.True(t, bytes.HasPrefix(b[1], []byte("package main\n")), "README's Go block %d is not a complete program:\n%s", i+1, b[1])
		root, err := filepath.Abs("..")
		require.NoError(t, err)
		if bytes.Contains(b[1], []byte(`"github.com/sessiongate/sessiongate/otelsessiongate"`)) {
			root = filepath.Join(root, "examples", "chi-app")
		}
		dir := t.TempDir()
		src := filepath.Join(dir, "main.go")
		require.NoError(t, os.WriteFile(src, b[1], 0o600))
		virtual := filepath.Join(root, "internal", "readmeprogram", "main.go") // exists only in the overlay
		overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{virtual: src}})
		require.NoError(t, err)
		overlayFile := filepath.Join(dir, "overlay.json")
		require.NoError(t, os.WriteFile(overlayFile, overlay, 0o600))
		cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", os.DevNull, "./internal/readmeprogram")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "README program %d does not build:\n%s\n%s", i+1, out, b[1])
	}
}
