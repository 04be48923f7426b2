package main

// The ws2i host imports (docs/hooks.md, "Host imports"), called without any SDK: this file is
// the contract exercised from a second language.

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"
)

//go:wasmimport ws2i spawn
func ws2iSpawn(prog unsafe.Pointer, progLen uint32, argv unsafe.Pointer, argvLen uint32,
	env unsafe.Pointer, envLen uint32, cwd unsafe.Pointer, cwdLen uint32,
	out unsafe.Pointer, outLen uint32, exitCode unsafe.Pointer) uint32

//go:wasmimport ws2i chmod
func ws2iChmod(path unsafe.Pointer, pathLen uint32, mode uint32) uint32

func ptr(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

// list encodes strings as the ABI's NUL-terminated concatenation.
func list(items []string) (string, error) {
	var b strings.Builder
	for _, s := range items {
		if strings.IndexByte(s, 0) >= 0 {
			return "", fmt.Errorf("argument %q contains a NUL byte", s)
		}
		b.WriteString(s)
		b.WriteByte(0)
	}
	return b.String(), nil
}

// spawn runs another WASI module of the rootfs and returns its exit code. Its stderr (and
// stdout) go to the build log.
func spawn(prog string, argv, env []string, cwd string) (int32, error) {
	a, err := list(argv)
	if err != nil {
		return 0, err
	}
	e, err := list(env)
	if err != nil {
		return 0, err
	}
	var code int32
	pp, pl := ptr(prog)
	ap, al := ptr(a)
	ep, el := ptr(e)
	cp, cl := ptr(cwd)
	if errno := ws2iSpawn(pp, pl, ap, al, ep, el, cp, cl, nil, 0, unsafe.Pointer(&code)); errno != 0 {
		return 0, fmt.Errorf("spawning %s: %w", prog, syscall.Errno(errno))
	}
	return code, nil
}

func chmod(path string, mode uint32) error {
	p, l := ptr(path)
	if errno := ws2iChmod(p, l, mode); errno != 0 {
		return fmt.Errorf("chmod %s: %w", path, syscall.Errno(errno))
	}
	return nil
}
