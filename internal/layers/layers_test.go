// Package layers keeps the imports of this module one-way. The ranks of
// its packages are written in docs/architecture.md (the "rank N" lines of
// its package table); this test reads them from there, so the document
// and the code cannot disagree.
package layers

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/falco-phantom/kubectl-falco-phantom"

// ranks reads the "rank N  pkg pkg/..." lines of the document.
func ranks(t *testing.T, doc string) map[string]int {
	t.Helper()
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		words := strings.Fields(sc.Text())
		if len(words) < 3 || words[0] != "rank" {
			continue
		}
		n, err := strconv.Atoi(words[1])
		if err != nil {
			t.Fatalf("%s: %q: the rank is not a number", doc, sc.Text())
		}
		for _, p := range words[2:] {
			if old, dup := out[p]; dup {
				t.Fatalf("%s: %s has ranks %d and %d", doc, p, old, n)
			}
			out[p] = n
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rank lines", doc)
	}
	return out
}

// rankOf finds the rank of a package path (relative to the module): its
// own line, or the nearest "folder/..." pattern above it.
func rankOf(ranks map[string]int, pkg string) (int, bool) {
	if n, ok := ranks[pkg]; ok {
		return n, true
	}
	for dir := pkg; dir != "." && dir != "/"; dir = filepath.Dir(dir) {
		if n, ok := ranks[dir+"/..."]; ok {
			return n, true
		}
	}
	return 0, false
}

type pkgInfo struct {
	ImportPath string
	Imports    []string
}

// packages lists the module's packages with their non-test imports.
func packages(t *testing.T, root string) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", "e2e", "-json=ImportPath,Imports", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var list []pkgInfo
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return list
		} else if err != nil {
			t.Fatal(err)
		}
		list = append(list, p)
	}
}

func TestImportsGoDownTheRanks(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	r := ranks(t, filepath.Join(root, "docs", "architecture.md"))
	for _, p := range packages(t, root) {
		from := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		fromRank, ok := rankOf(r, from)
		if !ok {
			t.Errorf("package %s has no rank: add it to the package table of docs/architecture.md", from)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := strings.TrimPrefix(imp, module+"/")
			toRank, ok := rankOf(r, to)
			if !ok {
				continue // reported as a package of its own
			}
			if toRank >= fromRank {
				t.Errorf("%s (rank %d) imports %s (rank %d): imports must go to a lower rank", from, fromRank, to, toRank)
			}
		}
	}
}

// The rank reader itself: a pattern covers the folders below it.
func TestRankOf(t *testing.T) {
	t.Parallel()
	r := map[string]int{"pkg/falco": 1, "cmd/...": 9}
	for pkg, want := range map[string]string{"pkg/falco": "1", "cmd/kubectl-falco_phantom": "9", "pkg/other": "none"} {
		n, ok := rankOf(r, pkg)
		got := fmt.Sprint(n)
		if !ok {
			got = "none"
		}
		if got != want {
			t.Errorf("rankOf(%s) = %s, want %s", pkg, got, want)
		}
	}
}
