// Package scripts holds the project's data files and helper scripts.
//
// Suites is the suite table (suites.ini): which distribution a suite belongs
// to, its keyring, components and merged-/usr policy. It is data, not code, so
// that adding a suite is an edit of that file.
package scripts

import _ "embed"

// Suites is the content of suites.ini.
//
//go:embed suites.ini
var Suites []byte
