// The Go builder's hooks, one wasip1 program that acts on the name it is run under
// (/usr/libexec/s2i/assemble, .../save-artifacts, .../usage, .../run).
package main

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Where the builder image keeps things; the Containerfile puts them there.
const (
	goLib     = "/usr/lib/go"
	appBinary = "/opt/app-root/app"      // the result; io.openshift.s2i.assemble-input-files names it
	cacheDir  = "/opt/app-root/go-cache" // compiled packages kept for the next incremental build
	cacheName = "go-cache"               // its name in save-artifacts' tar and under $DESTINATION/artifacts
)

func main() {
	name := "assemble"
	if len(os.Args) > 0 {
		name = strings.TrimSuffix(path.Base(os.Args[0]), ".wasm")
	}
	var err error
	switch name {
	case "assemble":
		err = assemble()
	case "save-artifacts":
		err = saveArtifacts()
	case "usage":
		fmt.Print(usageText)
	case "run":
		fmt.Fprint(os.Stderr, runText)
		os.Exit(1)
	default:
		err = fmt.Errorf("unknown hook name %q (expected assemble, save-artifacts, usage or run)", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "---> "+format+"\n", a...)
}

const runText = `This image holds a Linux executable built by the ws2i Go builder at ` + appBinary + `.
WebAssembly cannot run it, so this builder stage is not meant to run. Build the slim runtime
image instead and run that with a container engine:

  ws2i build SOURCE ws2i/go:latest myapp --runtime-image scratch
  ws2i copy myapp oci-archive:myapp.tar && podman run oci-archive:myapp.tar
`

const usageText = `ws2i Go builder: compiles a Go module (CGO_ENABLED=0) into a static Linux executable,
with Go's own compiler and linker running as WebAssembly inside the ws2i sandbox.

Build a slim image holding only the executable at /app (Entrypoint ["/app"]):

  ws2i build SOURCE ws2i/go:latest myapp --runtime-image scratch

Environment (ws2i build -e KEY=VALUE):
  GOARCH        amd64 (default) or arm64; the runtime image gets that platform
  TARGETARCH    set by ws2i build --platform (one image per platform, an index of them);
                wins over GOARCH, as TARGETOS over GOOS (TARGETVARIANT v7 gives GOARM=7)
  GOOS          linux (the only one the image has a standard library for)
  GO_MAIN       the main package's directory in the module (default ".")
  GO_BUILD_TAGS comma-separated build tags
  GO_LDFLAGS    linker flags (default "-s -w")

The source needs a go.mod. There is no network: a module with dependencies must vendor them
("go mod vendor", commit vendor/). Incremental builds (--incremental, without --runtime-image)
reuse the compiled packages of the previous image and recompile only what changed.
`
