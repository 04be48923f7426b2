package main

// assemble plays the go command's part: it reads go.mod, walks the main package's imports with
// go/build (user and vendored packages only; the standard library is precompiled in the image),
// orders them, compiles each with compile.wasm (plus asm.wasm and pack.wasm for assembly) and
// links with link.wasm, all through ws2i's spawn import.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
)

type target struct {
	goos, goarch string
	goarm        string // GOARM for linux/arm (5, 6 or 7), from TARGETVARIANT; "" elsewhere
	version      string // go1.27.3, of the tools and the std archives alike
	stdCfg       string // importcfg lines of the precompiled standard library
	std          map[string]bool
}

type module struct {
	root    string // the module's directory (the source)
	path    string // its module path
	lang    string // -lang, from the go directive
	require []string
	vendor  map[string]vendored // by module path, from vendor/modules.txt
}

type vendored struct {
	version, lang string
}

type pkg struct {
	importPath string
	isMain     bool
	dir        string
	bp         *build.Package
	deps       []*pkg // user and vendored imports (std ones need nothing)
	key        string // hash of everything its archive depends on
	archive    string
}

type builder struct {
	t        target
	mod      module
	ctxt     build.Context
	work     string
	pkgs     map[string]*pkg
	order    []*pkg
	reuse    string // $DESTINATION/artifacts/go-cache, when present
	ldflags  []string
	compiled int
	reused   int
}

func assemble() error {
	dest := os.Getenv("DESTINATION")
	if dest == "" {
		dest = "/tmp"
	}
	t, err := loadTarget()
	if err != nil {
		return err
	}
	mod, err := readGoMod(path.Join(dest, "src"))
	if err != nil {
		return err
	}
	b := &builder{t: t, mod: mod, pkgs: map[string]*pkg{}}
	b.ctxt = build.Context{
		GOOS: t.goos, GOARCH: t.goarch, Compiler: "gc", CgoEnabled: false,
		GOROOT:      goLib + "/no-sources", // std comes precompiled; it is never walked
		ReleaseTags: build.Default.ReleaseTags,
		ToolTags:    toolTags(t.goarch),
	}
	if tags := os.Getenv("GO_BUILD_TAGS"); tags != "" {
		b.ctxt.BuildTags = strings.FieldsFunc(tags, func(r rune) bool { return r == ',' || r == ' ' })
	}
	b.ldflags = strings.Fields("-s -w")
	if v, ok := os.LookupEnv("GO_LDFLAGS"); ok {
		b.ldflags = strings.Fields(v)
	}
	if st, err := os.Stat(path.Join(dest, "artifacts", cacheName)); err == nil && st.IsDir() {
		b.reuse = path.Join(dest, "artifacts", cacheName)
	}

	step("Building %s for %s/%s with %s", mod.path, t.goos, t.goarch, t.version)
	mainDir := path.Join(mod.root, path.Clean("/" + os.Getenv("GO_MAIN"))[1:])
	if _, err := b.load(mod.path+strings.TrimPrefix(mainDir, mod.root), mainDir, nil); err != nil {
		return err
	}
	mainPkg := b.order[len(b.order)-1]
	if mainPkg.bp.Name != "main" {
		return fmt.Errorf("%s is package %s, not a main package; set GO_MAIN to the main package's directory", mainDir, mainPkg.bp.Name)
	}
	mainPkg.isMain = true

	b.work, err = os.MkdirTemp("/tmp", "ws2i-go-")
	if err != nil {
		return fmt.Errorf("creating a work dir: %w", err)
	}
	defer os.RemoveAll(b.work)
	if err := os.RemoveAll(cacheDir); err != nil {
		return err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	for _, p := range b.order {
		if err := b.compile(p); err != nil {
			return err
		}
	}
	if b.reused > 0 {
		step("Reused %d compiled package(s) from the previous build, compiled %d", b.reused, b.compiled)
	}
	if err := b.link(mainPkg); err != nil {
		return err
	}
	return writeMetadata(t)
}

func loadTarget() (target, error) {
	// A multi-platform build (`ws2i build --platform`) names the target with BuildKit's
	// TARGETOS/TARGETARCH/TARGETVARIANT, which win over GOOS/GOARCH: one build, one env, every
	// platform. CGO stays off, so no C toolchain for the target is ever needed.
	t := target{goos: envOr("GOOS", "linux"), goarch: envOr("GOARCH", "amd64"), std: map[string]bool{}}
	if v := os.Getenv("TARGETOS"); v != "" {
		t.goos = v
	}
	if v := os.Getenv("TARGETARCH"); v != "" {
		t.goarch = v
	}
	if t.goarch == "arm" {
		t.goarm = strings.TrimPrefix(envOr("TARGETVARIANT", envOr("GOARM", "v7")), "v")
	}
	v, err := os.ReadFile(goLib + "/VERSION")
	if err != nil {
		return t, fmt.Errorf("reading the builder's Go version: %w", err)
	}
	t.version = strings.TrimSpace(string(v))
	cfg := fmt.Sprintf("%s/pkg/%s_%s/importcfg", goLib, t.goos, t.goarch)
	data, err := os.ReadFile(cfg)
	if errors.Is(err, os.ErrNotExist) {
		have, _ := filepath.Glob(goLib + "/pkg/*_*")
		for i := range have {
			have[i] = strings.Replace(path.Base(have[i]), "_", "/", 1)
		}
		return t, fmt.Errorf("no standard library for %s/%s in this builder (it has %s); set GOOS/GOARCH to one of those",
			t.goos, t.goarch, strings.Join(have, ", "))
	} else if err != nil {
		return t, err
	}
	t.stdCfg = string(data)
	for _, line := range strings.Split(t.stdCfg, "\n") {
		if rest, ok := strings.CutPrefix(line, "packagefile "); ok {
			if p, _, ok := strings.Cut(rest, "="); ok {
				t.std[p] = true
			}
		}
	}
	return t, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// toolTags are the architecture feature tags the go command sets at the default level.
func toolTags(goarch string) []string {
	switch goarch {
	case "amd64":
		return []string{"amd64.v1"}
	case "arm64":
		return []string{"arm64.v8.0"}
	}
	return nil
}

// readGoMod takes what assemble needs from go.mod: module path, go directive, requirements.
func readGoMod(root string) (module, error) {
	m := module{root: root}
	f, err := os.Open(path.Join(root, "go.mod"))
	if err != nil {
		return m, fmt.Errorf("the source has no go.mod (%v); the Go builder builds modules (go mod init NAME)", err)
	}
	defer f.Close()
	inRequire := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case inRequire:
			if fields[0] == ")" {
				inRequire = false
			} else {
				m.require = append(m.require, fields[0])
			}
		case fields[0] == "module" && len(fields) > 1:
			m.path = strings.Trim(fields[1], `"`)
		case fields[0] == "go" && len(fields) > 1:
			m.lang = langOf(fields[1])
		case fields[0] == "require" && len(fields) > 1:
			if fields[1] == "(" {
				inRequire = true
			} else {
				m.require = append(m.require, strings.Trim(fields[1], `"`))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if m.path == "" {
		return m, errors.New("go.mod has no module line")
	}
	m.vendor = readVendor(root)
	return m, nil
}

// load walks a package and its imports depth first; b.order ends up dependencies first.
func (b *builder) load(importPath, dir string, stack []string) (*pkg, error) {
	if p, ok := b.pkgs[importPath]; ok {
		if p == nil {
			return nil, fmt.Errorf("import cycle: %s -> %s", strings.Join(stack, " -> "), importPath)
		}
		return p, nil
	}
	b.pkgs[importPath] = nil
	bp, err := b.ctxt.ImportDir(dir, 0)
	if err != nil {
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil, fmt.Errorf("package %s: no Go files for %s/%s in %s", importPath, b.t.goos, b.t.goarch, b.rel(dir))
		}
		return nil, fmt.Errorf("package %s: %v", importPath, err)
	}
	if len(bp.CgoFiles) > 0 {
		return nil, fmt.Errorf("package %s uses cgo (%s); the Go builder builds with CGO_ENABLED=0", importPath, bp.CgoFiles[0])
	}
	if len(bp.EmbedPatterns) > 0 {
		return nil, fmt.Errorf("package %s uses //go:embed, which the Go builder does not support yet", importPath)
	}
	p := &pkg{importPath: importPath, dir: dir, bp: bp}
	stack = append(stack, importPath)
	for _, imp := range bp.Imports {
		if imp == "unsafe" || b.t.std[imp] {
			continue
		}
		if imp == "C" {
			return nil, fmt.Errorf("package %s imports \"C\"; the Go builder builds with CGO_ENABLED=0", importPath)
		}
		depDir, err := b.locate(importPath, imp)
		if err != nil {
			return nil, err
		}
		dep, err := b.load(imp, depDir, stack)
		if err != nil {
			return nil, err
		}
		p.deps = append(p.deps, dep)
	}
	b.pkgs[importPath] = p
	b.order = append(b.order, p)
	return p, nil
}

// locate finds an import in the main module or its vendor/ directory; nothing is downloaded.
func (b *builder) locate(from, imp string) (string, error) {
	if imp == b.mod.path || strings.HasPrefix(imp, b.mod.path+"/") {
		dir := path.Join(b.mod.root, strings.TrimPrefix(imp, b.mod.path))
		if isDir(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("package %s imports %s, which is not in the module (no directory %s)", from, imp, b.rel(dir))
	}
	if dir := path.Join(b.mod.root, "vendor", imp); isDir(dir) {
		return dir, nil
	}
	for _, m := range b.mod.require {
		if imp == m || strings.HasPrefix(imp, m+"/") {
			return "", fmt.Errorf("package %s imports %s from module %s, which go.mod requires but vendor/ does not hold; it would need a network download; ws2i builds offline: vendor your dependencies (run `go mod vendor` and commit vendor/)", from, imp, m)
		}
	}
	if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
		return "", fmt.Errorf("package %s imports %s, which would need a network download; ws2i builds offline: vendor your dependencies (run `go mod vendor` and commit vendor/)", from, imp)
	}
	return "", fmt.Errorf("package %s imports %s, which is not in the standard library of %s for %s/%s nor in the module", from, imp, b.t.version, b.t.goos, b.t.goarch)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func (b *builder) rel(p string) string {
	if r, err := filepath.Rel(b.mod.root, p); err == nil {
		return "./" + r
	}
	return p
}

// lang is the -lang flag: the main module's go directive, or a vendored module's own (from
// vendor/modules.txt), as the go command passes them.
func (b *builder) lang(p *pkg) string {
	lang := b.mod.lang
	if strings.HasPrefix(p.dir, path.Join(b.mod.root, "vendor")+"/") {
		if m := b.vendorModule(p); m != "" && b.mod.vendor[m].lang != "" {
			lang = b.mod.vendor[m].lang
		}
	}
	if lang == "" {
		return ""
	}
	return "-lang=" + lang
}

// vendorModule is the vendored module providing p ("" for the main module's packages).
func (b *builder) vendorModule(p *pkg) string {
	if !strings.HasPrefix(p.dir, path.Join(b.mod.root, "vendor")+"/") {
		return ""
	}
	best := ""
	for m := range b.mod.vendor {
		if (p.importPath == m || strings.HasPrefix(p.importPath, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	return best
}

// readVendor reads vendor/modules.txt: "# MODULE VERSION", then "## explicit; go 1.N".
func readVendor(root string) map[string]vendored {
	out := map[string]vendored{}
	data, err := os.ReadFile(path.Join(root, "vendor", "modules.txt"))
	if err != nil {
		return out
	}
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			for _, part := range strings.Split(line[3:], ";") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(part), "go "); ok && cur != "" {
					m := out[cur]
					m.lang = langOf(v)
					out[cur] = m
				}
			}
		case strings.HasPrefix(line, "# "):
			if f := strings.Fields(line[2:]); len(f) > 0 {
				cur = f[0]
				m := out[cur]
				if len(f) > 1 {
					m.version = f[1]
				}
				out[cur] = m
			}
		}
	}
	return out
}

func langOf(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return "go" + parts[0] + "." + parts[1]
}

// importcfg lists the standard library plus the packages compiled so far.
func (b *builder) importcfg(name string, extra ...string) (string, error) {
	var sb strings.Builder
	sb.WriteString(b.t.stdCfg)
	for _, p := range b.order {
		if p.archive != "" && !p.isMain {
			fmt.Fprintf(&sb, "packagefile %s=%s\n", p.importPath, p.archive)
		}
	}
	for _, e := range extra {
		sb.WriteString(e + "\n")
	}
	f := path.Join(b.work, name)
	return f, os.WriteFile(f, []byte(sb.String()), 0o644)
}

func (b *builder) compileArgs(p *pkg, out, cfg string) []string {
	args := []string{"compile", "-o", out, "-trimpath", p.dir + "=>" + b.recordedPath(p), "-p", p.pflag()}
	if l := b.lang(p); l != "" {
		args = append(args, l)
	}
	if len(p.bp.SFiles) == 0 {
		args = append(args, "-complete")
	}
	args = append(args, "-goversion", b.t.version, "-nolocalimports", "-importcfg", cfg, "-pack")
	return args
}

// inputKey hashes what the archive depends on: toolchain and target, flags, sources, and the
// keys of the user packages it imports.
func (b *builder) inputKey(p *pkg) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s %s %s %s\n", b.t.version, b.t.goos, b.t.goarch, p.pflag(), b.lang(p), strings.Join(b.ctxt.BuildTags, ","))
	files := append(append(append([]string{}, p.bp.GoFiles...), p.bp.SFiles...), p.bp.HFiles...)
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(path.Join(p.dir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %s %d\n", f, len(data))
		h.Write(data)
	}
	for _, d := range p.deps {
		fmt.Fprintf(h, "dep %s %s\n", d.importPath, d.key)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *builder) compile(p *pkg) error {
	key, err := b.inputKey(p)
	if err != nil {
		return err
	}
	p.key = key
	kept := path.Join(cacheDir, key+".a")
	if b.reuse != "" {
		if err := copyFile(path.Join(b.reuse, key+".a"), kept); err == nil {
			p.archive = kept
			b.reused++
			return nil
		}
	}
	step("Compiling %s", p.importPath)
	pdir := path.Join(b.work, fmt.Sprintf("p%03d", b.compiled))
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	b.compiled++
	cfg, err := b.importcfg(path.Base(pdir) + ".importcfg")
	if err != nil {
		return err
	}
	out := path.Join(pdir, "_pkg_.a")
	args := b.compileArgs(p, out, cfg)
	var objs []string
	if len(p.bp.SFiles) > 0 {
		if objs, err = b.assembly(p, pdir, &args); err != nil {
			return err
		}
	}
	for _, f := range p.bp.GoFiles {
		args = append(args, "./"+f)
	}
	if err := b.tool("compile", args, p.dir); err != nil {
		return fmt.Errorf("compiling %s failed", p.importPath)
	}
	if len(objs) > 0 {
		for _, s := range p.bp.SFiles {
			o := path.Join(pdir, strings.TrimSuffix(s, ".s")+".o")
			if err := b.tool("asm", append(b.asmArgs(p, pdir), "-o", o, "./"+s), p.dir); err != nil {
				return fmt.Errorf("assembling %s/%s failed", p.importPath, s)
			}
		}
		if err := b.tool("pack", append([]string{"pack", "r", out}, objs...), p.dir); err != nil {
			return fmt.Errorf("packing %s failed", p.importPath)
		}
	}
	if err := copyFile(out, kept); err != nil {
		return err
	}
	p.archive = kept
	return nil
}

// assembly prepares a package with .s files as the go command does: symbol ABIs first, then the
// compile writes go_asm.h for the assembler.
func (b *builder) assembly(p *pkg, pdir string, args *[]string) ([]string, error) {
	if err := os.WriteFile(path.Join(pdir, "go_asm.h"), nil, 0o644); err != nil {
		return nil, err
	}
	symabis := path.Join(pdir, "symabis")
	gen := append(b.asmArgs(p, pdir), "-gensymabis", "-o", symabis)
	for _, s := range p.bp.SFiles {
		gen = append(gen, "./"+s)
	}
	if err := b.tool("asm", gen, p.dir); err != nil {
		return nil, fmt.Errorf("assembling %s (symbol ABIs) failed", p.importPath)
	}
	*args = append(*args, "-symabis", symabis, "-asmhdr", path.Join(pdir, "go_asm.h"))
	var objs []string
	for _, s := range p.bp.SFiles {
		objs = append(objs, path.Join(pdir, strings.TrimSuffix(s, ".s")+".o"))
	}
	return objs, nil
}

func (b *builder) asmArgs(p *pkg, pdir string) []string {
	args := []string{"asm", "-p", p.pflag(), "-trimpath", p.dir + "=>" + b.recordedPath(p),
		"-I", pdir, "-I", goLib + "/include", "-D", "GOOS_" + b.t.goos, "-D", "GOARCH_" + b.t.goarch}
	switch b.t.goarch {
	case "amd64":
		args = append(args, "-D", "GOAMD64_v1")
	case "arm64":
		args = append(args, "-D", "GOARM64_v8.0")
	}
	return args
}

func (b *builder) link(mainPkg *pkg) error {
	step("Linking %s", appBinary)
	godebug := b.defaultGODEBUG()
	cfg, err := b.importcfg("importcfg.link", "packagefile main="+mainPkg.archive,
		"modinfo "+strconv.Quote(modInfoStart+b.buildInfo(mainPkg, godebug)+modInfoEnd))
	if err != nil {
		return err
	}
	tmp := path.Join(b.work, "app")
	args := []string{"link", "-o", tmp, "-importcfg", cfg}
	if godebug != "" {
		args = append(args, "-X=runtime.godebugDefault="+godebug)
	}
	args = append(append(args, "-buildmode=exe"), b.ldflags...)
	args = append(args, mainPkg.archive)
	if err := b.tool("link", args, b.work); err != nil {
		return errors.New("linking failed")
	}
	if err := os.MkdirAll(path.Dir(appBinary), 0o755); err != nil {
		return err
	}
	if err := copyFile(tmp, appBinary); err != nil {
		return err
	}
	// WASI preview 1 has no chmod: ws2i's import sets the bit the image layer records.
	return chmod(appBinary, 0o755)
}

// recordedPath is the name go build -trimpath gives a package's directory in the binary: the
// import path, with the module's version for a dependency (MODULE@VERSION/sub/dir).
func (b *builder) recordedPath(p *pkg) string {
	m := b.vendorModule(p)
	if m == "" || b.mod.vendor[m].version == "" {
		return p.importPath
	}
	return m + "@" + b.mod.vendor[m].version + strings.TrimPrefix(p.importPath, m)
}

// The markers around the build info the go command hands the linker (cmd/go/internal/modload).
const (
	modInfoStart = "\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6"
	modInfoEnd   = "\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2"
)

// defaultGODEBUG is what `go build` passes for the main module's go version, so an old module
// keeps the runtime behaviour it was written for.
func (b *builder) defaultGODEBUG() string {
	lang := b.mod.lang
	if lang == "" {
		lang = "go1.16" // go.mod without a go line
	}
	data, err := os.ReadFile(path.Join(goLib, "godebug", lang))
	if errors.Is(err, os.ErrNotExist) {
		data, _ = os.ReadFile(path.Join(goLib, "godebug", "go1.17")) // the oldest the image keeps
	}
	return strings.TrimSpace(string(data))
}

// buildInfo is what `go build -trimpath` embeds (go version -m shows it): module, vendored
// dependencies and build settings.
func (b *builder) buildInfo(mainPkg *pkg, godebug string) string {
	bi := debug.BuildInfo{
		Path: mainPkg.importPath,
		Main: debug.Module{Path: b.mod.path, Version: "(devel)"},
	}
	seen := map[string]bool{}
	for _, p := range b.order {
		if m := b.vendorModule(p); m != "" && !seen[m] {
			seen[m] = true
			bi.Deps = append(bi.Deps, &debug.Module{Path: m, Version: b.mod.vendor[m].version})
		}
	}
	sort.Slice(bi.Deps, func(i, j int) bool { return bi.Deps[i].Path < bi.Deps[j].Path })
	set := func(k, v string) { bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v}) }
	set("-buildmode", "exe")
	set("-compiler", "gc")
	if len(b.ctxt.BuildTags) > 0 {
		set("-tags", strings.Join(b.ctxt.BuildTags, ","))
	}
	set("-trimpath", "true")
	if godebug != "" {
		set("DefaultGODEBUG", godebug)
	}
	set("CGO_ENABLED", "0")
	set("GOARCH", b.t.goarch)
	set("GOOS", b.t.goos)
	switch b.t.goarch {
	case "amd64":
		set("GOAMD64", "v1")
	case "arm64":
		set("GOARM64", "v8.0")
	case "arm":
		set("GOARM", b.t.goarm)
	}
	return bi.String()
}

func (b *builder) tool(name string, argv []string, cwd string) error {
	env := []string{"GOOS=" + b.t.goos, "GOARCH=" + b.t.goarch, "PWD=" + cwd}
	if b.t.goarm != "" {
		env = append(env, "GOARM="+b.t.goarm)
	}
	code, err := spawn(goLib+"/tools/"+name+".wasm", argv, env, cwd)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited with %d", name, code)
	}
	return nil
}

// pflag is the package path the compiler records (-p): "main" for the main package.
func (p *pkg) pflag() string {
	if p.isMain {
		return "main"
	}
	return p.importPath
}

func copyFile(from, to string) error {
	r, err := os.Open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	tmp := to + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// writeMetadata tells ws2i the target platform: a scratch runtime image gets it.
func writeMetadata(t target) error {
	const file = "/tmp/.s2i/image_metadata.json"
	meta := map[string]any{}
	if data, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(data, &meta)
	}
	labels, _ := meta["labels"].([]any)
	labels = append(labels, map[string]string{"io.ws2i.platform": t.goos + "/" + t.goarch})
	meta["labels"] = labels
	data, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(path.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}
