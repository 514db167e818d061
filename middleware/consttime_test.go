package middleware_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secretName matches names of values an attacker must not learn byte by
// byte from response times.
var secretName = regexp.MustCompile(`(?i)^(.*(secret|validator|verifier|apikey|password).*|.*(mac|signature|sig|sealed))$`)

// TestSecretsAreComparedInConstantTime reads the library's source: no
// secret-named value is compared with == or != (which stops at the first
// differing byte). Comparisons with nil, "" or a length are fine;
// everything else must go through crypto/subtle or hmac.Equal.
func TestSecretsAreComparedInConstantTime(t *testing.T) {
	t.Parallel()
	var checked int
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			strings.Contains(path, "examples") || strings.Contains(path, "providertest") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			b, ok := n.(*ast.BinaryExpr)
			if !ok || (b.Op != token.EQL && b.Op != token.NEQ) || trivial(b.X) || trivial(b.Y) {
				return true
			}
			if name := secretOperand(b.X) + secretOperand(b.Y); name != "" {
				assert.Fail(t, "a secret compared with "+b.Op.String(), "%s: %s", path, name)
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, checked, 20, "the walk found the source")
}

// trivial is an operand whose comparison leaks nothing: nil, a literal
// (an empty string, a length), a length.
func trivial(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "nil"
	case *ast.BasicLit:
		return true
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && (id.Name == "len" || id.Name == "cap") {
			return true
		}
	}
	return false
}

// secretOperand returns the name of e when it names a secret.
func secretOperand(e ast.Expr) string {
	var name string
	switch e := e.(type) {
	case *ast.Ident:
		name = e.Name
	case *ast.SelectorExpr:
		name = e.Sel.Name
	case *ast.CallExpr:
		return secretOperand(e.Fun)
	case *ast.IndexExpr:
		return secretOperand(e.X)
	case *ast.SliceExpr:
		return secretOperand(e.X)
	}
	if secretName.MatchString(name) {
		return name
	}
	return ""
}
