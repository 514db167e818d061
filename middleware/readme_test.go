package middleware_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEProgramsCompile builds every complete Go program in README.md
// (a ```go block that starts with "package main") as a package of this
// module, through go build's -overlay: README's snippets compile as
// written, against the code as it is.
func TestREADMEProgramsCompile(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```go\n(package main\n.*?)```").FindAllSubmatch(readme, -1)
	require.NotEmpty(t, blocks, "README has no complete program")
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	for i, b := range blocks {
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
