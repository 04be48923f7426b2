package main

// save-artifacts hands the compiled packages of this image to the next incremental build:
// a tar of go-cache/<input hash>.a on stdout (and nothing else there; the log is stderr).

import (
	"archive/tar"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

func saveArtifacts() error {
	entries, err := os.ReadDir(cacheDir)
	if os.IsNotExist(err) {
		return tar.NewWriter(os.Stdout).Close()
	} else if err != nil {
		return err
	}
	tw := tar.NewWriter(os.Stdout)
	names := []string{}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".a") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if err := tw.WriteHeader(&tar.Header{Name: cacheName + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	for _, n := range names {
		f, err := os.Open(path.Join(cacheDir, n))
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: cacheName + "/" + n, Typeflag: tar.TypeReg, Mode: 0o644, Size: st.Size()})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	step("Saved %d compiled package(s)", len(names))
	return tw.Close()
}
