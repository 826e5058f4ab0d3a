// Package testdata holds real GitHub webhook payloads (see README.md). The files are
// also compiled in, so that POST /api/webhooks/test can send realistic deliveries from
// a binary that has no checkout beside it.
package testdata

import "embed"

// Payloads are the *.json files of this directory, by file name.
//
//go:embed *.json
var Payloads embed.FS
