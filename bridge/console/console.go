// Package console is the operator's web console: static pages, built into
// the binary, that the admin server serves under /ui/ and that read and act
// through the admin JSON API from the browser. Nothing is fetched from
// elsewhere: no CDN, no build step.
//
// Pages: index.html (saga instances with filters and counts per status),
// saga.html?id=… (one instance's timeline, input, outcome and controls),
// dlq.html (dead letters: browse, show, replay, purge), migration.html
// (the migration report), login.html (the admin token, off loopback).
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed files
var files embed.FS

// Handler serves the console's files, rooted at "/" ("/" is index.html).
func Handler() http.Handler {
	sub, err := fs.Sub(files, "files")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	return http.FileServerFS(sub)
}
