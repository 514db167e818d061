package main

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// No Docker engine runs where the tests run, so the container files are
// checked statically: the process tests run a binary built by the very
// command of the Dockerfile, and the compose file is parsed and held to
// DESIGN.md's contract.

const (
	dockerfile  = "Dockerfile"
	composeFile = "../../docker-compose.yml"
)

// dockerBuild returns the environment and arguments of the Dockerfile's
// `RUN ... go build ...` line, the path it writes the binary to, and the
// directory it runs in, relative to the repository root (the build
// context, copied by `COPY . DEST`).
func dockerBuild() (env, args []string, out, dir string, err error) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		return nil, nil, "", "", err
	}
	workdir, root := "/", ""
	for line := range strings.Lines(string(b)) {
		words := shellWords(strings.TrimSpace(line))
		switch {
		case len(words) == 2 && words[0] == "WORKDIR":
			workdir = resolve(workdir, words[1])
		case len(words) == 3 && words[0] == "COPY" && words[1] == ".":
			root = resolve(workdir, words[2])
		}
		if len(words) < 3 || words[0] != "RUN" {
			continue
		}
		words = words[1:]
		for len(words) > 0 && regexp.MustCompile(`^[A-Z_]+=`).MatchString(words[0]) {
			env, words = append(env, words[0]), words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			continue
		}
		if root == "" {
			return nil, nil, "", "", fmt.Errorf("%s builds before it copies the repository (COPY . DEST)", dockerfile)
		}
		if dir, err = filepath.Rel(root, workdir); err != nil || !filepath.IsLocal(dir) && dir != "." {
			return nil, nil, "", "", fmt.Errorf("%s builds in %s, outside the repository it copied to %s", dockerfile, workdir, root)
		}
		if i := slices.Index(words, "-o"); i > 0 && i+1 < len(words) {
			out = words[i+1]
		}
		return env, words[1:], out, dir, nil
	}
	return nil, nil, "", "", fmt.Errorf("%s has no RUN go build line", dockerfile)
}

// buildAsDocker builds the app into dir exactly as the Dockerfile does
// (in the same directory of the repository), and returns the binary's
// path.
func buildAsDocker(dir string) (string, error) {
	env, args, out, workdir, err := dockerBuild()
	if err != nil {
		return "", err
	}
	binary := filepath.Join(dir, filepath.Base(out))
	args[slices.Index(args, out)] = binary
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join("../..", workdir)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return binary, nil
}

// resolve is p in the image, from the working directory dir.
func resolve(dir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(dir, p)
}

// shellWords splits a Dockerfile line into words, keeping double-quoted
// parts together (the Dockerfile's lines need no more than that).
func shellWords(line string) []string {
	var words []string
	var w strings.Builder
	quoted, in := false, false
	for _, c := range line {
		switch {
		case c == '"':
			quoted, in = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if in {
				words, in = append(words, w.String()), false
				w.Reset()
			}
		default:
			w.WriteRune(c)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(dockerfile)
	require.NoError(t, err)
	text := string(b)
	from := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(text, -1)
	require.Len(t, from, 2, "multi-stage: a build stage and a runtime stage")
	assert.Contains(t, from[0][1], "golang:1.26", "built with the project's Go")
	assert.Contains(t, from[1][1], "distroless/static", "a small final image with no shell")
	assert.Regexp(t, `(?m)^USER nonroot`, text, "runs as non-root")
	env, args, out, dir, err := dockerBuild()
	require.NoError(t, err)
	assert.Contains(t, env, "CGO_ENABLED=0", "static binary for distroless/static")
	assert.Equal(t, "examples/chi-app", filepath.ToSlash(dir), "built in the example's own module")
	assert.Contains(t, args, ".")
	assert.Contains(t, text, "COPY examples/chi-app/go.mod examples/chi-app/go.sum", "the example's dependencies are downloaded in a layer of their own")
	assert.Contains(t, text, "COPY --from=build "+out+" /chi-app")
	assert.Contains(t, text, `ENTRYPOINT ["/chi-app"]`)
	assert.Contains(t, text, "ENV ADDR=0.0.0.0:8080", "listens beyond the container's loopback")
}

// compose is the part of docker-compose.yml the contract is about.
type compose struct {
	Services map[string]struct {
		Image       string
		Command     []string
		Volumes     []string
		Ports       []string
		Build       struct{ Context, Dockerfile string }
		DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
		Healthcheck struct{ Test []string }
		Environment map[string]string
	}
	Volumes map[string]any
}

func TestComposeFile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(composeFile)
	require.NoError(t, err)
	var c compose
	require.NoError(t, yaml.Unmarshal(b, &c))

	redis, app := c.Services["redis"], c.Services["app"]
	assert.Regexp(t, `^redis:7`, redis.Image)
	assert.Equal(t, []string{"redis-server", "--appendonly", "yes"}, redis.Command, "append-only persistence")
	require.Len(t, redis.Volumes, 1)
	volume, path, _ := strings.Cut(redis.Volumes[0], ":")
	assert.Equal(t, "/data", path, "on a volume at Redis's data directory")
	assert.Contains(t, c.Volumes, volume, "a named volume")
	assert.NotEmpty(t, redis.Healthcheck.Test)

	assert.Equal(t, ".", app.Build.Context)
	assert.FileExists(t, filepath.Join("../..", app.Build.Dockerfile))
	assert.Equal(t, "service_healthy", app.DependsOn["redis"].Condition)
	assert.Equal(t, []string{"CMD", "/chi-app", "-healthcheck"}, app.Healthcheck.Test)
	assert.Equal(t, []string{"127.0.0.1:8080:8080"}, app.Ports)

	env := app.Environment
	assert.Equal(t, "redis", env["SESSION_STORE"])
	assert.Equal(t, "redis://redis:6379/0", env["REDIS_URL"])
	assert.Equal(t, "${PROVIDER:-dev}", env["PROVIDER"], "the dev provider by default")
	assert.Equal(t, "${SESSION_SECRET:-}", env["SESSION_SECRET"], "no secret baked into the file")
	for _, k := range []string{"PLURALITY_API_URL", "PLURALITY_CLIENT_ID", "PLURALITY_CLIENT_SECRET", "PARA_API_URL",
		"PARA_SECRET_API_KEY", "PARA_JWT_AUDIENCE", "COOKIE_SECURE", "SESSION_LIFETIME", "SESSION_IDLE_TIMEOUT"} {
		assert.Regexp(t, `^\$\{`+k+`:-`, env[k], "%s is passed through", k)
	}
	for k := range env {
		assert.Contains(t, knownVariables, k, "%s is a variable of the contract", k)
	}
}

// knownVariables are the environment variables of DESIGN.md's contract.
var knownVariables = []string{"ADDR", "SESSION_STORE", "REDIS_URL", "PROVIDER", "PLURALITY_API_URL", "PLURALITY_CLIENT_ID",
	"PLURALITY_CLIENT_SECRET", "PARA_API_URL", "PARA_SECRET_API_KEY", "PARA_JWT_AUDIENCE", "COOKIE_SECURE",
	"SESSION_LIFETIME", "SESSION_IDLE_TIMEOUT", "SESSION_SECRET"}

func TestHealthcheckMode(t *testing.T) {
	t.Parallel()
	p := startApp(t, map[string]string{})
	check := func(addr string) error {
		cmd := exec.Command(binary, "-healthcheck")
		cmd.Env = []string{"ADDR=" + addr}
		return cmd.Run()
	}
	assert.NoError(t, check(strings.TrimPrefix(p.URL, "http://")), "a healthy app")
	port := p.URL[strings.LastIndex(p.URL, ":")+1:]
	assert.NoError(t, check("0.0.0.0:"+port), "ADDR as the container sets it")
	p.stop()
	assert.Error(t, check(strings.TrimPrefix(p.URL, "http://")), "nothing listening")
}
